"""JSON responses rendered with orjson, and version-specific shapes for money and pages.

API v1 and v2 differ in exactly two ways, and both live here so every context shapes them alike:
money (v1 ``"price": "19.99", "currency": "EUR"``; v2 ``{"amount": 1999, "currency": "EUR"}``)
and list pages (v1 ``{items, total, limit, offset}``; v2 ``{data, next_cursor}`` plus a
``Link: rel="next"`` that keeps the query's filters and sort).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from fastapi import Query, Request
from starlette.responses import Response

from archway.kernel.clock import rfc3339
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.money import format_minor_units
from archway.kernel.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
)


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, the one timestamp form of every API version."""
    return rfc3339(value)


def money(version: ApiVersion, field: str, amount: int, currency: str) -> dict[str, Any]:
    """The fields that show an amount named ``field`` in the version's money form."""
    if version is ApiVersion.V1:
        return {field: _decimal(amount, currency), "currency": currency}
    return {field: {"amount": amount, "currency": currency}}


# A page shows the same few prices over and over: formatting each once saves most of a v1 page's
# rendering. Bounded, and keyed by exact values (amounts are ints), so it cannot go stale.
_decimal = lru_cache(maxsize=8192)(format_minor_units)


def page_request_dependency(
    version: ApiVersion, cursor_arity: int
) -> Callable[..., Awaitable[PageRequest]]:
    """A FastAPI dependency reading the version's paging parameters into a PageRequest."""
    if version is ApiVersion.V1:

        async def v1_page(
            limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size."),
            offset: int = Query(0, ge=0, le=1_000_000, description="Rows to skip."),
        ) -> PageRequest:
            return PageRequest(limit=limit, offset=offset)

        return v1_page

    async def v2_page(
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size."),
        cursor: str | None = Query(
            None, max_length=512, description="`next_cursor` of the previous page."
        ),
    ) -> PageRequest:
        after = decode_cursor(cursor, cursor_arity) if cursor else None
        return PageRequest(limit=limit, after=after)

    return v2_page


def page_response(
    version: ApiVersion,
    request: Request,
    page: Page[Any],
    page_request: PageRequest,
    items: Sequence[Any],
) -> JsonResponse:
    if version is ApiVersion.V1:
        return JsonResponse({
            "items": list(items), "total": page.total, "limit": page_request.limit,
            "offset": page_request.offset or 0,
        })
    cursor = encode_cursor(page.next_after) if page.next_after is not None else None
    headers = {}
    if cursor is not None:
        url = request.url.include_query_params(cursor=cursor)
        path = request.scope.get("archway.original_path") or url.path
        headers["link"] = f'<{path}?{url.query}>; rel="next"'
    return JsonResponse({"data": list(items), "next_cursor": cursor}, headers=headers)

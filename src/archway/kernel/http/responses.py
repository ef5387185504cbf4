"""JSON responses rendered with orjson, and version-specific shapes for money and pages.

API v1 and v2 differ in exactly two ways, and both live here so every context shapes them alike:
money (v1 ``"price": "19.99", "currency": "EUR"``; v2 ``{"amount": 1999, "currency": "EUR"}``)
and list pages (v1 ``{items, total, limit, offset}``; v2 ``{data, next_cursor}`` plus a
``Link: rel="next"`` that keeps the query's filters and sort).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Generic, TypeVar

import orjson
from fastapi import Query, Request
from starlette.responses import Response

from archway.kernel.clock import rfc3339
from archway.kernel.http.fast_lane import plain_int, plain_query
from archway.kernel.http.uri import uri_reference
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.money import format_minor_units
from archway.kernel.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    MAX_OFFSET,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
)

T = TypeVar("T")


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class RenderedStates(Generic[T]):
    """The JSON of each state of an entity, rendered once.

    ``state_of`` names a state, typically ``(id, version)``: what was rendered for it never
    goes stale, since a change makes a new version. The hot reads (a product, a page of
    products or orders) mostly show states they showed before, and rendering them was most of
    their cost; a rendered state goes into a response as an ``orjson.Fragment``. Bounded:
    least recently used first out.
    """

    def __init__(
        self,
        render: Callable[[T], Any],
        state_of: Callable[[T], Hashable],
        *,
        max_entries: int = 20_000,
    ) -> None:
        self._render = render
        self._state_of = state_of
        self._max_entries = max_entries
        self._rendered: OrderedDict[Hashable, orjson.Fragment] = OrderedDict()

    def __call__(self, item: T) -> orjson.Fragment:
        key = self._state_of(item)
        rendered = self._rendered.get(key)
        if rendered is not None:
            self._rendered.move_to_end(key)
            return rendered
        rendered = orjson.Fragment(orjson.dumps(self._render(item)))
        self._rendered[key] = rendered
        if len(self._rendered) > self._max_entries:
            self._rendered.popitem(last=False)
        return rendered


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
            offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Rows to skip."),
        ) -> PageRequest:
            return PageRequest(limit=limit, offset=offset)

        return v1_page

    async def v2_page(
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size."),
        cursor: str | None = Query(
            None, max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."
        ),
    ) -> PageRequest:
        # An empty cursor is not one this API returned: refused, not read as the first page.
        after = decode_cursor(cursor, cursor_arity) if cursor is not None else None
        return PageRequest(limit=limit, after=after)

    return v2_page


def plain_page(version: ApiVersion, request: Request, cursor_arity: int) -> PageRequest | None:
    """A fast handler's paging (see :mod:`archway.kernel.http.fast_lane`): the version's
    ``limit`` and ``offset`` or ``cursor`` when the query holds nothing else, each in its plain
    valid form; ``None`` for anything else, which the route's own parameters then judge. A
    cursor in the plain form is decoded by the route's own decoder, which refuses a forged one
    with the same error (the lane answers it)."""
    second = "offset" if version is ApiVersion.V1 else "cursor"
    query = plain_query(request, ("limit", second))
    if query is None:
        return None
    limit = plain_int(query.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    if limit is None:
        return None
    if version is ApiVersion.V1:
        offset = plain_int(query.get("offset"), 0, 0, MAX_OFFSET)
        return None if offset is None else PageRequest(limit=limit, offset=offset)
    cursor = query.get("cursor")
    if cursor is None:
        return PageRequest(limit=limit)
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        return None
    return PageRequest(limit=limit, after=decode_cursor(cursor, cursor_arity))


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
        # The query is re-encoded by include_query_params; the path is the decoded one.
        url = request.url.include_query_params(cursor=cursor)
        path = request.scope.get("archway.original_path") or request.scope["path"]
        headers["link"] = f'<{uri_reference(path, url.query.encode())}>; rel="next"'
    return JsonResponse({"data": list(items), "next_cursor": cursor}, headers=headers)

"""The neutral shapes every protocol's answers are turned into, so a scenario is written once.

Data: plain dicts with REST v2's keys (snake_case; money as ``{"amount", "currency"}``,
statuses in lower case, timestamps as aware ``datetime``s). Refusals: a :class:`Refusal`, with
the neutral kind of the refusal, the fields it names as protocol-neutral paths
(``("lines", 0, "quantity")``; request parameters by REST's names, ``("limit",)``) and the
detail a client is shown.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Json = dict[str, Any]
FieldPath = tuple[str | int, ...]

KINDS = frozenset({
    "unauthenticated", "forbidden", "not_found", "invalid", "conflict", "precondition_failed",
    "rate_limited",
})
FINAL = frozenset({"rejected", "cancelled"})
"""An order's statuses after which it never changes (a watch ends)."""

PRODUCT_KEYS = frozenset({"id", "sku", "name", "description", "category", "price", "active",
                          "available", "created_at", "updated_at"})
STOCK_KEYS = frozenset({"product_id", "on_hand", "reserved", "available"})
USER_KEYS = frozenset({"id", "email", "name", "roles", "created_at", "updated_at"})
ORDER_KEYS = frozenset({"id", "customer_id", "status", "lines", "total", "rejection_reason",
                        "placed_at", "updated_at"})
LINE_KEYS = frozenset({"product_id", "sku", "name", "quantity", "unit_price", "line_total"})


@dataclass(frozen=True)
class Refusal:
    """A refusal in neutral terms. ``kinds`` holds one kind, except where a protocol answers
    two with one code (gRPC's ``FAILED_PRECONDITION`` is both a state that refuses the call and
    a stale ``expected_version``): then every kind the answer can stand for."""

    kinds: frozenset[str]
    fields: frozenset[FieldPath] = frozenset()
    detail: str = ""
    retry_after: int | None = None

    def __post_init__(self) -> None:
        assert self.kinds and self.kinds <= KINDS, self.kinds


class Refused(Exception):
    """A call the server refused; ``refusal`` says how, in neutral terms."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(repr(refusal))
        self.refusal = refusal


class NotInContract(Exception):
    """The protocol's contract has no such operation (gRPC has no UpdateProduct, GraphQL no
    preconditions): the scenario does not apply to it."""


@dataclass(frozen=True)
class Page:
    items: list[Json]
    next_cursor: str | None = None


@dataclass
class Watch:
    """What a watch saw: each state of the order, and whether the stream ended."""

    states: list[Json] = field(default_factory=list)

    @property
    def statuses(self) -> list[str]:
        return [state["status"] for state in self.states]


class ShopApi(Protocol):
    """The operations every scenario is written against; one implementation per protocol.
    Each raises :class:`Refused` for a refusal and :class:`NotInContract` for an operation its
    protocol does not have. ``token`` is a bearer access token, or None for an anonymous
    call."""

    name: str

    async def get_product(self, product_id: str, token: str | None = None) -> Json: ...
    async def list_products(self, limit: int, cursor: str | None = None, *, q: str | None = None,
                            token: str | None = None) -> Page: ...
    async def create_product(self, token: str | None, draft: Json) -> Json: ...
    async def update_product(self, token: str | None, product_id: str, changes: Json) -> Json: ...
    async def version_of(self, product_id: str, token: str | None) -> object: ...
    async def set_stock(self, token: str | None, product_id: str, on_hand: int,
                        version: object = None) -> Json: ...
    async def me(self, token: str | None) -> Json: ...
    async def get_user(self, token: str | None, user_id: str) -> Json: ...
    async def get_order(self, token: str | None, order_id: str) -> Json: ...
    async def list_orders(self, token: str | None, limit: int,
                          cursor: str | None = None) -> Page: ...
    async def place_order(self, token: str | None, lines: list[tuple[str, int]]) -> Json: ...
    async def cancel_order(self, token: str | None, order_id: str) -> Json: ...
    def watch_order(self, token: str | None, order_id: str) -> AsyncGenerator[Json, None]: ...


async def refusal_of(call: Awaitable[object]) -> Refusal:
    """The refusal ``call`` ends in; fails the test if it is answered instead."""
    try:
        answer = await call
    except Refused as refused:
        return refused.refusal
    raise AssertionError(f"expected a refusal, got {answer!r}")


def assert_refused(refusal: Refusal, kind: str, *fields: FieldPath, detail: str | None = None
                   ) -> None:
    assert kind in refusal.kinds, refusal
    if fields:
        assert refusal.fields == frozenset(fields), refusal
    if detail is not None:
        assert refusal.detail == detail, refusal


async def eventually(read: Callable[[], Awaitable[T]], done: Callable[[T], bool],
                     seconds: float = 15.0) -> T:
    """``read()`` again every 50 ms until ``done`` holds of its answer; fails after
    ``seconds``. A read refused as not found is tried again too (an order just placed reaches
    the read model a moment later)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            answer = await read()
            if done(answer):
                return answer
        except Refused as refused:
            if "not_found" not in refused.refusal.kinds:
                raise
            answer = refused  # type: ignore[assignment]
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {seconds} s: last {answer!r}")
        await asyncio.sleep(0.05)


def moment(text: str) -> datetime:
    """An ISO 8601 timestamp (``…Z`` or ``…+00:00``) as an aware datetime in UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, text
    return parsed.astimezone(UTC)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_PARAMETERS = {"first": "limit", "after": "cursor", "page_size": "limit", "page_token": "cursor"}


def neutral_path(parts: list[str | int]) -> FieldPath:
    """A field path with REST's names: snake_case fields, REST's parameter names."""
    path = tuple(snake(part) if isinstance(part, str) else part for part in parts)
    if len(path) == 1 and path[0] in _PARAMETERS:
        return (_PARAMETERS[str(path[0])],)
    return path


def dotted_path(text: str) -> FieldPath:
    """protobuf's form, ``lines[0].product_id`` → ``("lines", 0, "product_id")``."""
    parts: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", text):
        parts.append(int(index) if index else name)
    return neutral_path(parts)


def pointer_path(pointer: str) -> FieldPath:
    """REST's form: a JSON Pointer into the body (``/lines/0/quantity``), or a query
    parameter's name (``limit``)."""
    if not pointer.startswith("/"):
        return (pointer,)
    return tuple(int(part) if part.isdigit() else part for part in pointer[1:].split("/"))


def checked(shape: Json, keys: frozenset[str]) -> Json:
    assert set(shape) == keys, sorted(set(shape) ^ keys)
    return shape

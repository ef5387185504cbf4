"""The GraphQL types every context shares: ``Long``, money and Relay connections.

GraphQL's ``Int`` is 32 bits; an amount of minor units goes up to 10^12 (and a sum in a report
beyond), so amounts are ``Long``: a JSON integer, as REST v2 writes it. Connections follow the
Relay specification: ``first``/``after``, ``edges { cursor node }``, ``pageInfo { hasNextPage
endCursor }``; a cursor is the same opaque value REST v2 calls ``next_cursor``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, NewType, TypeVar, cast

import strawberry
from strawberry.types.scalar import ScalarDefinition

from archway.kernel.errors import FieldPath, InvalidInput
from archway.kernel.money import CURRENCY_EXPONENTS
from archway.kernel.money import Money as MoneyValue
from archway.kernel.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
)

T = TypeVar("T")
N = TypeVar("N")
F = TypeVar("F", bound=Callable[..., Any])
_LONG_BOUND = 2**63 - 1


def field(description: str) -> Callable[[F], F]:
    """``@strawberry.field(description=…)``, typed: Strawberry's overload with keyword
    arguments only answers ``Any``, which would leave every resolver untyped for mypy."""
    return cast("Callable[[F], F]", strawberry.field(description=description))


def mutation(description: str) -> Callable[[F], F]:
    """``@strawberry.mutation(description=…)``, typed (see :func:`field`)."""
    return cast("Callable[[F], F]", strawberry.mutation(description=description))


def subscription(description: str) -> Callable[[F], F]:
    """``@strawberry.subscription(description=…)``, typed (see :func:`field`)."""
    return cast("Callable[[F], F]", strawberry.subscription(description=description))


def _long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _LONG_BOUND:
        raise ValueError("Long is an integer of at most 64 bits (a JSON number, no fraction)")
    return value


Long = NewType("Long", int)
SCALARS: dict[object, ScalarDefinition] = {Long: strawberry.scalar(
    name="Long", serialize=int, parse_value=_long,
    description="A signed integer of up to 64 bits, written as a JSON number (minor units of "
    "money).")}
"""The schema's own scalars, for its ``StrawberryConfig.scalar_map``."""


@strawberry.type(description="An amount of money: integer minor units of an ISO 4217 currency "
                 "(1999 EUR is 19.99 EUR).")
class Money:
    amount: Long
    currency: str

    @classmethod
    def of(cls, value: MoneyValue) -> Money:
        return cls(amount=Long(value.amount), currency=value.currency)


@strawberry.input(description="An amount of money: integer minor units and an ISO 4217 code.")
class MoneyInput:
    amount: Long
    currency: str

    def value(self, path: FieldPath) -> MoneyValue:
        """The amount as money; an unknown currency is invalid at ``path`` + ``currency``
        (the domain judges the amount, as it does REST's)."""
        if self.currency not in CURRENCY_EXPONENTS:
            raise InvalidInput.field(
                (*path, "currency"), f"must be one of {', '.join(sorted(CURRENCY_EXPONENTS))}")
        return MoneyValue(int(self.amount), self.currency)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo

    @classmethod
    def of(
        cls, page: Page[T], node: Callable[[T], N], cursor_of: Callable[[T], tuple[Any, ...]]
    ) -> Connection[N]:
        """A service's cursor page as a connection; ``cursor_of`` gives an item's sort key."""
        edges = [Edge(cursor=encode_cursor(cursor_of(item)), node=node(item))
                 for item in page.items]
        return Connection(edges=edges, page_info=PageInfo(
            has_next_page=page.next_after is not None,
            end_cursor=edges[-1].cursor if edges else None))


def page_request(first: int | None, after: str | None, cursor_arity: int) -> PageRequest:
    """``first``/``after`` as the services' cursor page: ``first`` 1–100 (default 20), and
    ``after`` a cursor this API wrote (anything else is ``BAD_USER_INPUT`` on it)."""
    limit = DEFAULT_LIMIT if first is None else first
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput.field("first", f"must be 1 to {MAX_LIMIT}")
    if after is None:
        return PageRequest(limit=limit)
    if not after or len(after) > MAX_CURSOR_LENGTH:
        raise InvalidInput.field("after", "is not a cursor this API returned")
    return PageRequest(limit=limit, after=decode_cursor(after, cursor_arity))


def nodes(items: Sequence[T], node: Callable[[T], N]) -> list[N]:
    return [node(item) for item in items]

"""Values every context's gRPC adapter writes the same way: money, times and pages.

Pages: ``page_size`` 1–100 (0 means the default, 20) and ``page_token``, the same opaque,
validated cursor that REST v2 issues as ``next_cursor``; a forged one is ``INVALID_ARGUMENT`` on
``page_token`` at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from archway.kernel.errors import InvalidInput
from archway.kernel.money import CURRENCY_EXPONENTS, Money, MoneyError
from archway.kernel.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    Page,
    PageRequest,
    bad_cursor,
    decode_cursor,
    encode_cursor,
)
from archway.proto.type.v1 import money_pb2


def money_message(money: Money) -> money_pb2.Money:
    return money_pb2.Money(amount=money.amount, currency=money.currency)


def minor_units(amount: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount=amount, currency=currency)


def money_of(message: money_pb2.Money, field: str) -> Money:
    """A request's money; an unknown currency is ``INVALID_ARGUMENT`` on ``field.currency``
    (the amount's bounds are the domain's to judge)."""
    try:
        return Money(message.amount, message.currency)
    except MoneyError:
        raise InvalidInput.field(
            (field, "currency"), f"must be one of {', '.join(sorted(CURRENCY_EXPONENTS))}",
        ) from None


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def rfc3339_timestamp(text: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return stamp


def page_request(page_size: int, page_token: str, *, cursor_arity: int) -> PageRequest:
    if not 0 <= page_size <= MAX_LIMIT:
        raise InvalidInput.field(
            "page_size", f"must be 1 to {MAX_LIMIT} (or 0 for {DEFAULT_LIMIT})")
    if len(page_token) > MAX_CURSOR_LENGTH:
        raise bad_cursor()
    after = decode_cursor(page_token, cursor_arity) if page_token else None
    return PageRequest(limit=page_size or DEFAULT_LIMIT, after=after)


def next_page_token(page: Page[Any]) -> str:
    """The token of the next page; empty on the last page."""
    return encode_cursor(page.next_after) if page.next_after is not None else ""

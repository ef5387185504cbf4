"""Money: integer minor units plus an ISO 4217 code. No floats anywhere.

Exponents follow ISO 4217 for the currencies the shop accepts; the v1 API shows decimal strings
(``"19.99"``), v2 the minor units (``1999``).

Every amount Archway stores -- a price, a line total, an order total -- is at most
:data:`MAX_AMOUNT` minor units, checked by the domains before anything is written, so a value
the database cannot hold exactly is a 422 on the field that made it, never a failure later
(docs/api.md, "Limits"). The bound also keeps sums across orders exact: see
:data:`MAX_ACCUMULATED`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CURRENCY_EXPONENTS: dict[str, int] = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "JPY": 0, "SEK": 2}
MAX_AMOUNT = 10**12
"""The largest amount, in minor units, of one price, line total or order total (10 000 000 000.00
EUR, 1 000 000 000 000 JPY). Even 50 lines of 1000 units at this price (5·10^16) fit a BIGINT
exactly, and a sum of 9 million orders at the bound (:data:`MAX_ACCUMULATED`) still does."""

MAX_ACCUMULATED = 2**63 - 1
"""The largest sum a read model stores (a BIGINT on every database): a customer's total spent,
a product's revenue. A sum that would pass it is refused by the projection (its event fails)
rather than stored wrong."""

_DECIMAL = re.compile(r"^(0|[1-9]\d{0,15})(?:\.(\d{1,4}))?$")


class MoneyError(ValueError):
    """A money value or currency code that cannot be represented exactly."""


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if self.currency not in CURRENCY_EXPONENTS:
            raise MoneyError(f"unsupported currency {self.currency!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError("amount must be an integer number of minor units")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise MoneyError("cannot add amounts in different currencies")
        return Money(self.amount + other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    @property
    def storable(self) -> bool:
        """Whether this amount is within the bound every store holds (0 to MAX_AMOUNT)."""
        return 0 <= self.amount <= MAX_AMOUNT


def bound_text(currency: str) -> str:
    """The bound as a client reads it in ``currency``: ``"10000000000.00 EUR"``."""
    return f"{format_minor_units(MAX_AMOUNT, currency)} {currency} ({MAX_AMOUNT} minor units)"


def format_minor_units(amount: int, currency: str) -> str:
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    if exponent == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def parse_decimal_string(text: str, exponent: int = 2) -> int:
    """``"19.99"`` → ``1999``; refuses more decimals than the currency has, signs and floats."""
    match = _DECIMAL.match(text.strip())
    if not match:
        raise MoneyError("must be a non-negative decimal such as 19.99")
    whole: str = match.group(1)
    fraction: str = match.group(2) or ""
    if len(fraction) > exponent:
        raise MoneyError(f"at most {exponent} decimal places")
    scale: int = 10**exponent  # an int: exponent is never negative
    return int(whole) * scale + int(fraction.ljust(exponent, "0") or 0)

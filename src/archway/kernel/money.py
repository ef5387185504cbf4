"""Money: integer minor units plus an ISO 4217 code. No floats anywhere.

Exponents follow ISO 4217 for the currencies the shop accepts; the v1 API shows decimal strings
(``"19.99"``), v2 the minor units (``1999``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CURRENCY_EXPONENTS: dict[str, int] = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "JPY": 0, "SEK": 2}
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

    def to_decimal_string(self) -> str:
        return format_minor_units(self.amount, self.currency)


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
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exponent:
        raise MoneyError(f"at most {exponent} decimal places")
    return int(whole) * 10**exponent + int(fraction.ljust(exponent, "0") or 0)

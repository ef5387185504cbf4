"""The OpenAPI documents state what the server enforces: a value the schema's pattern allows is
one the domain accepts (the other way round the domain may be laxer, never stricter)."""

from __future__ import annotations

import re

import pytest

from archway.catalog.domain import CATEGORY_PATTERN, SKU_PATTERN, check_fields
from archway.catalog.rest_models import (
    _PRICE_FILTER_SCHEMA,
    _decimal_bound,
    _decimal_pattern,
    decimal_money,
)
from archway.identity.domain import EMAIL_PATTERN, check_email, check_name, check_password
from archway.kernel.errors import InvalidInput
from archway.kernel.money import CURRENCY_EXPONENTS, MAX_AMOUNT, Money
from archway.kernel.text import NO_CONTROL_PATTERN, NOT_BLANK_PATTERN

PRICES = ["0", "0.5", "1", "19.99", "19.999", "019.99", "9999999999.99", "10000000000",
          "10000000000.0", "10000000000.00", "10000000000.01", "10000000001", "99999999999",
          "999999999999", "1000000000000", "1000000000001", "1.", ".5", "-1", "1e3", " 1"]


@pytest.mark.parametrize("currency", sorted(CURRENCY_EXPONENTS))
def test_a_v1_price_the_schema_allows_is_accepted_and_only_those(currency: str) -> None:
    pattern = re.compile(_decimal_pattern(CURRENCY_EXPONENTS[currency]))
    for price in PRICES:
        try:
            money = decimal_money(price, currency)
            accepted = money.storable
        except InvalidInput:
            accepted = False
        if pattern.fullmatch(price):
            assert accepted, (price, currency)
        elif price == price.strip():  # the domain also trims; the schema does not say so
            assert not accepted, (price, currency)


TEXTS = ["Ada", " Ada ", "Zoë 山田", " ", "", "a\x00b", "a\tb", "a\nb", "a\x7fb", "a\x85b",
         "a\u00a0b", "\u3000", "x" * 100, "x" * 101]


def test_names_the_schema_allows_are_accepted() -> None:
    pattern = re.compile(NOT_BLANK_PATTERN)
    for name in TEXTS:
        if pattern.fullmatch(name) and len(name) <= 100:
            assert check_name(name) == [], repr(name)
        if not pattern.fullmatch(name):
            assert check_name(name) != [], repr(name)


def test_passwords_the_schema_allows_are_accepted() -> None:
    pattern = re.compile(NO_CONTROL_PATTERN)
    for password in ["long enough", "long\x00enough", "tab\there!", "x" * 128, "x" * 129, "short"]:
        allowed = bool(pattern.fullmatch(password)) and 8 <= len(password) <= 128
        assert (check_password(password) == []) == allowed, repr(password)


def test_emails_the_schema_allows_are_accepted() -> None:
    pattern = re.compile(EMAIL_PATTERN)
    for email in ["ada@example.com", "a.b+c@mail.example.org", "ada@localhost", "a@b.c\n",
                  "a\x00@example.com", "ä@example.com", "@example.com", "a b@example.com",
                  "ada@-example.com", "ada@example.com."]:
        allowed = bool(pattern.fullmatch(email)) and len(email) <= 254
        assert (check_email(email) == []) == allowed, repr(email)


def test_skus_and_categories_the_schema_allows_are_accepted() -> None:
    sku, category = re.compile(SKU_PATTERN), re.compile(CATEGORY_PATTERN)
    price = Money(MAX_AMOUNT, "EUR")
    for value in ["COF-1", "a.b_c", "x" * 64, "x" * 65, "no space", "ok\n", "board-games",
                  "Board", "-x", "x-", "a--b"]:
        paths = {error.path for error in check_fields(value, "n", "", "coffee", price)}
        assert (("sku",) not in paths) == bool(sku.fullmatch(value)), repr(value)
        paths = {error.path for error in check_fields("S", "n", "", value, price)}
        allowed = bool(category.fullmatch(value)) and len(value) <= 64
        assert (("category",) not in paths) == allowed, repr(value)


def test_v1_price_filters_the_schema_allows_are_accepted() -> None:
    pattern = re.compile(_PRICE_FILTER_SCHEMA["pattern"])
    for text in [*PRICES, "9999999999999999.99", "10000000000000000"]:
        if pattern.fullmatch(text):
            assert _decimal_bound("min_price", text) is not None, text

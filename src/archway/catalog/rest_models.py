"""The catalog's REST bodies per API version, and how their money turns into ``Money``.

Request bodies forbid unknown fields (no mass assignment of ``id``, ``version``, stock …) and
are strict (``"5"`` is not a number, ``19.99`` is not a price; ``1999.0`` is 1999, as JSON
Schema reads an integer). v1 writes money as a decimal string plus ``currency``, parsed
exactly; v2 as ``{"amount": minor units, "currency"}``.
Response models only document the answers: the routes render JSON themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.config import JsonDict

from archway.catalog.domain import (
    CATEGORY_MAX,
    CATEGORY_PATTERN,
    DESCRIPTION_MAX,
    MAX_ON_HAND,
    NAME_MAX,
    SKU_MAX,
    SKU_PATTERN,
    ProductChanges,
    ProductDraft,
    price_errors,
    raise_if_any,
)
from archway.kernel.errors import FieldPath, InvalidInput
from archway.kernel.http.json_numbers import JsonInt
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.money import (
    CURRENCY_EXPONENTS,
    MAX_AMOUNT,
    Money,
    MoneyError,
    parse_decimal_string,
)
from archway.kernel.text import NO_NUL_PATTERN, NOT_BLANK_PATTERN

# A price filter only compares: any bound past the largest price matches the same rows, so the
# filter keeps its wider range (it was 10**15 before prices were bounded by MAX_AMOUNT).
MAX_PRICE_FILTER = 10**15
PriceBounds = tuple[int | None, int | None]
# A PATCH field is optional but never null: it is declared with its plain type and a default
# of None, which pydantic does not validate, so an explicit null is refused like any wrong type
# while an absent field reads as None ("unchanged").
ABSENT: Any = None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# What the domain checks, stated in the schemas (the models bound lengths; the domain judges
# each value and reports every invalid one at once).
_CURRENCIES = sorted(CURRENCY_EXPONENTS)
_CURRENCY_SCHEMA: JsonDict = {"enum": list[JsonValue](_CURRENCIES)}
_SKU_SCHEMA: JsonDict = {"pattern": SKU_PATTERN}
_NAME_SCHEMA: JsonDict = {"minLength": 1, "pattern": NOT_BLANK_PATTERN}
_DESCRIPTION_SCHEMA: JsonDict = {"pattern": NO_NUL_PATTERN}
_CATEGORY_SCHEMA: JsonDict = {"minLength": 1, "pattern": CATEGORY_PATTERN}


def _decimal_pattern(exponent: int) -> str:
    """A v1 price in a currency with ``exponent`` decimals, from 0 to MAX_AMOUNT minor units
    (a power of ten: every number with fewer whole digits than the top one, or the top one)."""
    top = str(MAX_AMOUNT // 10**exponent)
    below = rf"(0|[1-9][0-9]{{0,{len(top) - 2}}})"
    if exponent == 0:
        return rf"^({below}|{top})$"
    return rf"^({below}(\.[0-9]{{1,{exponent}}})?|{top}(\.0{{1,{exponent}}})?)$"


# v1 writes a price as a decimal string whose decimals depend on its currency: the schema says
# which strings each currency takes (JSON Schema if/then), so a price it allows is accepted.
_PRICE_BY_CURRENCY: JsonDict = {"allOf": [
    {"if": {"properties": {"currency": {"enum": [c for c in _CURRENCIES
                                                 if CURRENCY_EXPONENTS[c] == exponent]}},
            "required": ["currency"]},
     "then": {"properties": {"price": {"pattern": _decimal_pattern(exponent)}}}}
    for exponent in sorted(set(CURRENCY_EXPONENTS.values()))
]}


def _currency(code: str, path: FieldPath) -> int:
    exponent = CURRENCY_EXPONENTS.get(code)
    if exponent is None:
        raise InvalidInput.field(path, f"must be one of {', '.join(sorted(CURRENCY_EXPONENTS))}")
    return exponent


def decimal_money(price: str, currency: str) -> Money:
    """v1: ``"19.99"`` + ``"EUR"`` → 1999 EUR, exactly; too many decimals is an error, and so
    is a price out of the domain's bounds, named at ``/price`` (v1's price is one string)."""
    exponent = _currency(currency, ("currency",))
    try:
        money = Money(parse_decimal_string(price, exponent), currency)
    except MoneyError as exc:
        raise InvalidInput.field("price", str(exc)) from exc
    raise_if_any(price_errors(money, ("price",)))
    return money


class MoneyIn(_Body):
    amount: JsonInt = Field(ge=0, le=MAX_AMOUNT, description="Minor units: 1999 is 19.99 EUR.")
    currency: str = Field(examples=["EUR"], description="ISO 4217 code.",
                          json_schema_extra=_CURRENCY_SCHEMA)

    def money(self) -> Money:
        _currency(self.currency, ("price", "currency"))
        return Money(self.amount, self.currency)


class MoneyOut(BaseModel):
    amount: int
    currency: str


def _text(limit: int, schema: dict[str, Any] | None = None, **extra: Any) -> Any:
    return Field(max_length=limit, json_schema_extra=schema, **extra)


class NewProductV1(_Body):
    sku: str = _text(SKU_MAX, _SKU_SCHEMA, examples=["COF-0001"])
    name: str = _text(NAME_MAX, _NAME_SCHEMA, examples=["House Blend"])
    description: str = _text(DESCRIPTION_MAX, _DESCRIPTION_SCHEMA, default="")
    category: str = _text(CATEGORY_MAX, _CATEGORY_SCHEMA, examples=["coffee"])
    price: str = _text(24, examples=["19.99"], description="A decimal string, never a float.")
    currency: str = Field(examples=["EUR"], description="ISO 4217 code.",
                          json_schema_extra=_CURRENCY_SCHEMA)
    active: bool = True
    model_config = ConfigDict(json_schema_extra=_PRICE_BY_CURRENCY)

    def draft(self) -> ProductDraft:
        return ProductDraft(
            sku=self.sku, name=self.name, description=self.description, category=self.category,
            price=decimal_money(self.price, self.currency), active=self.active,
        )


class NewProductV2(_Body):
    sku: str = _text(SKU_MAX, _SKU_SCHEMA, examples=["COF-0001"])
    name: str = _text(NAME_MAX, _NAME_SCHEMA, examples=["House Blend"])
    description: str = _text(DESCRIPTION_MAX, _DESCRIPTION_SCHEMA, default="")
    category: str = _text(CATEGORY_MAX, _CATEGORY_SCHEMA, examples=["coffee"])
    price: MoneyIn
    active: bool = True

    def draft(self) -> ProductDraft:
        return ProductDraft(
            sku=self.sku, name=self.name, description=self.description, category=self.category,
            price=self.price.money(), active=self.active,
        )


class ProductPatchV1(_Body):
    sku: str = _text(SKU_MAX, _SKU_SCHEMA, default=ABSENT)
    name: str = _text(NAME_MAX, _NAME_SCHEMA, default=ABSENT)
    description: str = _text(DESCRIPTION_MAX, _DESCRIPTION_SCHEMA, default=ABSENT)
    category: str = _text(CATEGORY_MAX, _CATEGORY_SCHEMA, default=ABSENT)
    price: str = _text(24, default=ABSENT, description="Send with `currency`.")
    currency: str = Field(ABSENT, description="Send with `price`.",
                          json_schema_extra=_CURRENCY_SCHEMA)
    active: bool = ABSENT
    model_config = ConfigDict(json_schema_extra={
        **_PRICE_BY_CURRENCY, "dependentRequired": {"price": ["currency"], "currency": ["price"]}})

    def changes(self) -> ProductChanges:
        price = None
        if self.price is not None or self.currency is not None:
            if self.price is None:
                raise InvalidInput.field("price", "is required when currency changes")
            if self.currency is None:
                raise InvalidInput.field("currency", "is required when price changes")
            price = decimal_money(self.price, self.currency)
        return ProductChanges(
            sku=self.sku, name=self.name, description=self.description,
            category=self.category, price=price, active=self.active,
        )


class ProductPatchV2(_Body):
    sku: str = _text(SKU_MAX, _SKU_SCHEMA, default=ABSENT)
    name: str = _text(NAME_MAX, _NAME_SCHEMA, default=ABSENT)
    description: str = _text(DESCRIPTION_MAX, _DESCRIPTION_SCHEMA, default=ABSENT)
    category: str = _text(CATEGORY_MAX, _CATEGORY_SCHEMA, default=ABSENT)
    price: MoneyIn = ABSENT
    active: bool = ABSENT

    def changes(self) -> ProductChanges:
        return ProductChanges(
            sku=self.sku, name=self.name, description=self.description,
            category=self.category, price=self.price.money() if self.price else None,
            active=self.active,
        )


class _ProductOut(BaseModel):
    id: str
    sku: str
    name: str
    description: str
    category: str
    active: bool
    available: int = Field(description="Units on hand that no order holds.")
    created_at: datetime
    updated_at: datetime


class ProductV1(_ProductOut):
    price: str = Field(examples=["19.99"])
    currency: str = Field(examples=["EUR"])


class ProductV2(_ProductOut):
    price: MoneyOut


class ProductPageV1(BaseModel):
    items: list[ProductV1]
    total: int
    limit: int
    offset: int


class ProductPageV2(BaseModel):
    data: list[ProductV2]
    next_cursor: str | None


class StockCount(_Body):
    on_hand: JsonInt = Field(ge=0, le=MAX_ON_HAND, description="Units on hand after the count.")


class StockOut(BaseModel):
    product_id: str
    on_hand: int
    reserved: int = Field(description="Units held by accepted orders.")
    available: int


# What parse_decimal_string takes with two decimals (the domain also trims spaces).
_PRICE_FILTER_SCHEMA: JsonDict = {"pattern": r"^(0|[1-9][0-9]{0,15})(\.[0-9]{1,2})?$"}


def _decimal_bound(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_decimal_string(text, 2)
    except MoneyError as exc:
        raise InvalidInput.parameter(name, str(exc)) from exc


async def v1_price_bounds(
    min_price: Annotated[str | None, Query(
        max_length=24, examples=["10.00"], description="Inclusive, e.g. `19.99`.",
        json_schema_extra=_PRICE_FILTER_SCHEMA)] = None,
    max_price: Annotated[str | None, Query(
        max_length=24, examples=["25.00"], description="Inclusive, e.g. `19.99`.",
        json_schema_extra=_PRICE_FILTER_SCHEMA)] = None,
) -> PriceBounds:
    return _decimal_bound("min_price", min_price), _decimal_bound("max_price", max_price)


async def v2_price_bounds(
    min_price: Annotated[int | None, Query(
        ge=0, le=MAX_PRICE_FILTER, description="Inclusive, in minor units (`1999`).")] = None,
    max_price: Annotated[int | None, Query(
        ge=0, le=MAX_PRICE_FILTER, description="Inclusive, in minor units (`1999`).")] = None,
) -> PriceBounds:
    return min_price, max_price


@dataclass(frozen=True, slots=True)
class VersionModels:
    product: type[BaseModel]
    page: type[BaseModel]
    create: type[NewProductV1 | NewProductV2]
    patch: type[ProductPatchV1 | ProductPatchV2]
    price_bounds: Callable[..., Awaitable[PriceBounds]]


def models_for(version: ApiVersion) -> VersionModels:
    if version is ApiVersion.V1:
        return VersionModels(
            ProductV1, ProductPageV1, NewProductV1, ProductPatchV1, v1_price_bounds)
    return VersionModels(ProductV2, ProductPageV2, NewProductV2, ProductPatchV2, v2_price_bounds)

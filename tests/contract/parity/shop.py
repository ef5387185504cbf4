"""Setting scenarios up: products and orders made through REST (any protocol would do; the
scenario then reads or writes them through the protocol under test)."""

from __future__ import annotations

import uuid

from tests.contract.parity.neutral import FINAL, Json, ShopApi, eventually


def unique(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}".upper()


def draft(tag: str, price: int = 1999, name: str | None = None) -> Json:
    """A new product's fields, with a SKU no other scenario uses."""
    sku = unique(f"PAR-{tag}")
    return {"sku": sku, "name": name or f"Parity {sku}", "description": "Made by the parity suite.",
            "category": "parity", "price": {"amount": price, "currency": "EUR"}}


async def made_product(rest: ShopApi, admin: str, tag: str, *, stock: int, price: int = 1999,
                       name: str | None = None) -> Json:
    """A product on sale with ``stock`` units, as REST reads it now."""
    made = await rest.create_product(admin, draft(tag, price, name))
    if stock:
        await rest.set_stock(admin, made["id"], stock)
    return await rest.get_product(made["id"])


async def settled(rest: ShopApi, token: str, order_id: str, *statuses: str) -> Json:
    """The order once the saga has settled it (confirmed or final), as REST reads it."""
    wanted = set(statuses or {"confirmed", *FINAL})
    return await eventually(lambda: rest.get_order(token, order_id),
                            lambda order: order["status"] in wanted)

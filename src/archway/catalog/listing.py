"""The product list's query: filters, sorts, and keyset cursors past a page.

A cursor is the last row's sort key and id; the next page is one index seek past it
(``(key, id) > (:key, :id)``), never an ``OFFSET``. The products table is handed in by the
store, which owns it.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, literal, or_, tuple_

from archway.catalog.domain import Product, ProductFilters, ProductSort, cursor_key

_SORT_COLUMNS = {
    ProductSort.CREATED_AT: "created_at",
    ProductSort.NAME: "name",
    ProductSort.PRICE: "price_amount",
    ProductSort.PRICE_DESC: "price_amount",
}


def sort_column(products: Table, sort: ProductSort) -> ColumnElement[object]:
    """The column a list is ordered by (the row's id breaks ties)."""
    return products.c[_SORT_COLUMNS[sort]]


def conditions(
    products: Table, filters: ProductFilters, active_only: bool
) -> list[ColumnElement[bool]]:
    """What a product must satisfy to be listed: on sale (unless an admin lists), and filters."""
    found: list[ColumnElement[bool]] = []
    if active_only:
        found.append(products.c.active.is_(True))
    if filters.q:
        pattern = "%" + _escape_like(filters.q) + "%"
        found.append(or_(
            products.c.name.ilike(pattern, escape="\\"),
            products.c.description.ilike(pattern, escape="\\"),
        ))
    if filters.category is not None:
        found.append(products.c.category == filters.category)
    if filters.min_price is not None:
        found.append(products.c.price_amount >= filters.min_price)
    if filters.max_price is not None:
        found.append(products.c.price_amount <= filters.max_price)
    return found


def _escape_like(text: str) -> str:
    """``%`` and ``_`` in a search are literal characters, not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def cursor_of(sort: ProductSort, product: Product) -> tuple[str | int, str]:
    """The cursor of a row: its sort key (JSON-friendly) and its id as the tie-breaker."""
    if sort is ProductSort.NAME:
        return product.name, product.id
    if sort is ProductSort.CREATED_AT:
        return product.created_at.isoformat(), product.id
    return product.price.amount, product.id


def past_cursor(
    products: Table, sort: ProductSort, after: tuple[object, ...], descending: bool
) -> ColumnElement[bool]:
    """Rows strictly past the cursor, in the list's order: one index seek, no OFFSET."""
    key_value, last_id = cursor_key(sort, after)
    column = sort_column(products, sort)
    key = tuple_(column, products.c.id)
    bound = tuple_(literal(key_value, column.type), literal(last_id, products.c.id.type))
    return key < bound if descending else key > bound

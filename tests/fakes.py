"""In-memory fakes of Archway's ports, honest enough to run the same tests as the real ones.

``FakeUnitsOfWork`` hands each unit of work its in-memory state and restores a snapshot when
a write raises, like a rolled-back transaction; repositories read and change that state.
There is one writer at a time and nothing to lock, so ``lock=True`` changes nothing here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from archway.catalog.domain import (
    Product,
    ProductFilters,
    ProductSort,
    Rejected,
    ReservationOutcome,
    ReservationRecorded,
    ReservationStatus,
    Reserved,
    Stock,
    cursor_key,
)
from archway.identity.domain import ApiKey, AuthorizationCode, OAuthClient, RefreshToken, User
from archway.kernel.errors import AlreadyExists, Conflict
from archway.kernel.events.cloudevent import Event
from archway.kernel.pagination import Page, PageRequest
from archway.orders.domain import Order

T = TypeVar("T")


class FakeIntegrityError(Exception):
    """A row the real store would refuse with a driver ``IntegrityError`` that it does not
    translate (a second reservation row for one order): a bug, never a refusal to a client."""


@dataclass(frozen=True, slots=True)
class FakeReservation:
    """A row of ``catalog_reservations`` with its lines (kept after a release, like the rows)."""

    status: ReservationStatus
    reason: str | None
    updated_at: datetime
    lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FakeOutboxRow:
    position: int
    event: Event


@dataclass
class FakeState:
    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    revoked_tokens: dict[str, datetime] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    reservations: dict[str, FakeReservation] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    placement_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    orders_outbox: list[FakeOutboxRow] = field(default_factory=list)
    committed: int = 0


class FakeUnitsOfWork:
    def __init__(self) -> None:
        self.state = FakeState()

    async def read(self, work: Callable[[Any], T]) -> T:
        return work(self.state)

    async def write(self, work: Callable[[Any], T]) -> T:
        snapshot = copy.deepcopy(self.state)
        try:
            result = work(self.state)
        except BaseException:
            self.state.__dict__.update(snapshot.__dict__)
            raise
        self.state.committed += 1
        return result


class FakeRevokedTokens:
    def __init__(self, state: FakeState) -> None:
        self._revoked = state.revoked_tokens

    def add(self, token_id: str, expires_at: datetime) -> None:
        if token_id in self._revoked:
            raise AlreadyExists(f"The token {token_id} is already revoked.")
        self._revoked[token_id] = expires_at

    def unexpired(self, now: datetime) -> list[tuple[str, datetime]]:
        return [(jti, exp) for jti, exp in self._revoked.items() if exp > now]

    def remove_expired(self, before: datetime) -> int:
        gone = [jti for jti, exp in self._revoked.items() if exp < before]
        for jti in gone:
            del self._revoked[jti]
        return len(gone)


class FakeUsers:
    def __init__(self, state: FakeState) -> None:
        self._users = state.users

    def get(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self._users.values() if u.email == wanted), None)

    def add(self, user: User) -> None:
        if self.by_email(user.email) is not None:
            raise Conflict("A user with this email already exists.")
        self._users[user.id] = user

    def save(self, user: User) -> None:
        other = self.by_email(user.email)
        if other is not None and other.id != user.id:
            raise Conflict("A user with this email already exists.")
        self._users[user.id] = user

    def remove(self, user_id: str) -> bool:
        return self._users.pop(user_id, None) is not None

    def list(self, page: PageRequest) -> Page[User]:
        ordered = sorted(self._users.values(), key=lambda u: u.id)
        if page.wants_cursor:
            after = page.after[0] if page.after else ""
            rest = [u for u in ordered if u.id > after]
            items = rest[: page.limit]
            more = len(rest) > page.limit
            return Page(items, next_after=(items[-1].id,) if more and items else None)
        offset = page.offset or 0
        return Page(ordered[offset: offset + page.limit], total=len(ordered))


class FakeClients:
    def __init__(self, state: FakeState) -> None:
        self._clients = state.clients

    def get(self, client_id: str) -> OAuthClient | None:
        return self._clients.get(client_id)

    def add(self, client: OAuthClient) -> None:
        if client.client_id in self._clients:
            raise Conflict(f"A client with id {client.client_id} already exists.")
        self._clients[client.client_id] = client

    def save(self, client: OAuthClient) -> bool:
        stored = self._clients.get(client.client_id)
        if stored is None or not stored.is_active:
            return False
        self._clients[client.client_id] = replace(
            stored, name=client.name, redirect_uris=client.redirect_uris,
            secret_digest=client.secret_digest)
        return True

    def revoke(self, client: OAuthClient) -> bool:
        stored = self._clients.get(client.client_id)
        if stored is None or not stored.is_active:
            return False
        self._clients[client.client_id] = client
        return True

    def list(self) -> list[OAuthClient]:
        return sorted(self._clients.values(), key=lambda c: c.client_id)

    def page(self, page: PageRequest) -> Page[OAuthClient]:
        ordered = self.list()
        if page.wants_cursor:
            after = page.after[0] if page.after else ""
            rest = [c for c in ordered if c.client_id > after]
            items = rest[: page.limit]
            more = len(rest) > page.limit
            return Page(items, next_after=(items[-1].client_id,) if more and items else None)
        offset = page.offset or 0
        return Page(ordered[offset: offset + page.limit], total=len(ordered))


class FakeApiKeys:
    def __init__(self, state: FakeState) -> None:
        self._keys = state.api_keys

    def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def by_digest(self, digest: str) -> ApiKey | None:
        return next((k for k in self._keys.values() if k.digest == digest), None)

    def add(self, key: ApiKey) -> None:
        if key.id in self._keys or self.by_digest(key.digest) is not None:
            raise FakeIntegrityError(key.id)  # a UUIDv7 or a 256-bit digest twice: a bug
        self._keys[key.id] = key

    def revoke(self, key: ApiKey) -> bool:
        stored = self._keys.get(key.id)
        if stored is None or not stored.is_active:
            return False
        self._keys[key.id] = replace(stored, revoked_at=key.revoked_at)
        return True

    def touch(self, used: dict[str, datetime]) -> int:
        changed = 0
        for key_id, at in used.items():
            stored = self._keys.get(key_id)
            if stored is not None and (stored.last_used_at is None or stored.last_used_at < at):
                self._keys[key_id] = replace(stored, last_used_at=at)
                changed += 1
        return changed

    def page(self, page: PageRequest) -> Page[ApiKey]:
        ordered = sorted(self._keys.values(), key=lambda k: k.id)
        if page.wants_cursor:
            after = page.after[0] if page.after else ""
            rest = [k for k in ordered if k.id > after]
            items = rest[: page.limit]
            more = len(rest) > page.limit
            return Page(items, next_after=(items[-1].id,) if more and items else None)
        offset = page.offset or 0
        return Page(ordered[offset: offset + page.limit], total=len(ordered))


class FakeRefreshTokens:
    def __init__(self, state: FakeState) -> None:
        self._tokens = state.refresh_tokens

    def by_digest(self, digest: str) -> RefreshToken | None:
        return next((t for t in self._tokens.values() if t.digest == digest), None)

    def add(self, token: RefreshToken) -> None:
        if self.by_digest(token.digest) is not None:
            raise FakeIntegrityError("identity_refresh_tokens.digest")
        self._tokens[token.id] = token

    def claim(self, token_id: str, at: datetime) -> bool:
        token = self._tokens.get(token_id)
        if token is None or token.used_at is not None or token.revoked_at is not None:
            return False
        self._tokens[token_id] = replace(token, used_at=at)
        return True

    def revoke_family(self, family_id: str, at: datetime) -> int:
        return self._revoke(lambda t: t.family_id == family_id, at)

    def revoke_user(self, user_id: str, at: datetime) -> int:
        return self._revoke(lambda t: t.user_id == user_id, at)

    def _revoke(self, which: Callable[[RefreshToken], bool], at: datetime) -> int:
        chosen = [t for t in self._tokens.values() if which(t) and t.revoked_at is None]
        for token in chosen:
            self._tokens[token.id] = replace(token, revoked_at=at)
        return len(chosen)


class FakeAuthorizationCodes:
    def __init__(self, state: FakeState) -> None:
        self._codes = state.codes

    def by_digest(self, digest: str) -> AuthorizationCode | None:
        return self._codes.get(digest)

    def add(self, code: AuthorizationCode) -> None:
        if code.digest in self._codes:
            raise FakeIntegrityError("identity_authorization_codes.digest")
        self._codes[code.digest] = code

    def claim(self, digest: str, at: datetime) -> bool:
        code = self._codes.get(digest)
        if code is None or code.used_at is not None or code.expires_at <= at:
            return False
        self._codes[digest] = replace(code, used_at=at)
        return True

    def remove_expired(self, before: datetime) -> int:
        gone = [digest for digest, code in self._codes.items() if code.expires_at < before]
        for digest in gone:
            del self._codes[digest]
        return len(gone)


class FakeOrders:
    """``orders.store.OrderRepository`` in memory. Orders go in and come out as copies, as rows
    do, so a change to a loaded order counts only once it is saved; ``save`` writes what the
    real one writes (status, reason, version, time), nothing else."""

    def __init__(self, state: FakeState) -> None:
        self._state = state

    def add(self, order: Order) -> None:
        if order.id in self._state.orders:
            raise FakeIntegrityError(f"order {order.id} exists")
        self._state.orders[order.id] = _stored(order)

    def get(self, order_id: str, *, lock: bool = False) -> Order | None:
        order = self._state.orders.get(order_id)
        return _stored(order) if order is not None else None

    def get_many(self, order_ids: Sequence[str], *, lock: bool = False) -> dict[str, Order]:
        return {order_id: _stored(self._state.orders[order_id])
                for order_id in sorted(set(order_ids)) if order_id in self._state.orders}

    def save_many(self, changed: Sequence[tuple[Order, int]]) -> bool:
        # Each row written if still at its version, the others not: as one UPDATE for many.
        written = [self.save(order, previous) for order, previous in changed]
        return all(written)

    def save(self, order: Order, previous_version: int) -> bool:
        current = self._state.orders.get(order.id)
        if current is None or current.version != previous_version:
            return False
        self._state.orders[order.id] = replace(
            current, status=order.status, rejection_reason=order.rejection_reason,
            version=order.version, updated_at=order.updated_at, events=[])
        return True

    def placed_with(self, customer_id: str, key: str) -> str | None:
        return self._state.placement_keys.get((customer_id, key))

    def remember_key(self, order: Order, key: str) -> None:
        if (order.customer_id, key) in self._state.placement_keys:
            raise FakeIntegrityError(f"key {key!r} of {order.customer_id} is taken")
        self._state.placement_keys[(order.customer_id, key)] = order.id

    def append(self, events: Iterable[Event]) -> None:
        outbox = self._state.orders_outbox
        for event in events:
            position = outbox[-1].position + 1 if outbox else 1
            outbox.append(FakeOutboxRow(position, event))

    def last_position(self, order_id: str) -> int:
        return max((row.position for row in self._state.orders_outbox
                    if row.event.get_subject() == order_id), default=0)


def _stored(order: Order) -> Order:
    return replace(order, events=[])  # lines are immutable; the record of events is not kept


class FakeProducts:
    """``catalog.store.CatalogRepository`` in memory: products with their stock, and one
    reservation per order. Refusals come back as the real store gives them: ``False`` from a
    conditional write, a product id from a hold that falls short, ``Conflict`` for a taken sku."""

    def __init__(self, state: FakeState) -> None:
        self._products = state.products
        self._reservations = state.reservations

    def get(self, product_id: str, *, lock: bool = False) -> Product | None:
        return self._products.get(product_id)

    def get_many(
        self, product_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Product]:
        return {product_id: self._products[product_id]
                for product_id in sorted(set(product_ids)) if product_id in self._products}

    def add(self, product: Product) -> None:
        if product.id in self._products or self._sku_taken(product.sku, by_other_than=None):
            raise Conflict(f"A product with sku {product.sku!r} already exists.")
        self._products[product.id] = product

    def save(self, product: Product, previous_version: int) -> bool:
        current = self._products.get(product.id)
        if current is None or current.version != previous_version:
            return False
        if self._sku_taken(product.sku, by_other_than=product.id):
            raise Conflict(f"A product with sku {product.sku!r} already exists.")
        # The product's own fields only: stock and creation time are not the caller's to write.
        self._products[product.id] = replace(
            product, created_at=current.created_at, stock=current.stock)
        return True

    def save_on_hand(self, product: Product, previous_version: int) -> bool:
        current = self._products.get(product.id)
        if current is None or current.version != previous_version:
            return False
        # Like the real store: the version moves first, then the count is written only if it
        # still covers what is reserved; a False leaves the caller to roll back.
        current = replace(current, version=product.version, updated_at=product.updated_at)
        self._products[product.id] = current
        if current.stock.reserved > product.stock.on_hand:
            return False
        self._products[product.id] = replace(
            current, stock=Stock(product.stock.on_hand, current.stock.reserved))
        return True

    def remove(self, product_id: str, version: int) -> bool:
        current = self._products.get(product_id)
        if current is None or current.version != version:
            return False
        del self._products[product_id]  # its stock goes with it; reservation lines stay
        return True

    def list(
        self, filters: ProductFilters, sort: ProductSort, page: PageRequest, *, active_only: bool
    ) -> Page[Product]:
        descending = sort is ProductSort.PRICE_DESC
        rows = sorted(
            (p for p in self._products.values() if _wanted(p, filters, active_only)),
            key=lambda p: (_sort_key(sort, p), p.id), reverse=descending)
        if not page.wants_cursor:
            offset = page.offset or 0
            return Page(rows[offset: offset + page.limit], total=len(rows))
        if page.after is not None:
            bound = _cursor_bound(sort, page.after)
            rows = [p for p in rows
                    if ((_sort_key(sort, p), p.id) < bound if descending
                        else (_sort_key(sort, p), p.id) > bound)]
        items = rows[: page.limit]
        more = len(rows) > page.limit
        return Page(items, next_after=_cursor(sort, items[-1]) if more else None)

    # -- reservations ---------------------------------------------------------------------

    def reservation(self, order_id: str) -> ReservationOutcome | None:
        row = self._reservations.get(order_id)
        if row is None:
            return None
        return ReservationOutcome.recorded(order_id, row.status, row.reason)

    def hold(self, order_id: str, reserved: Reserved, now: datetime) -> str | None:
        """Every line or none, judged on the stored counts (``reserved.stocks`` is ignored, as
        the real store's conditional updates ignore it): the first product short, else None."""
        held: dict[str, Stock] = {}
        for product_id, quantity in reserved.quantities.items():
            product = self._products.get(product_id)
            stock = product.stock.reserve(quantity) if product is not None else None
            if stock is None:
                return product_id
            held[product_id] = stock
        for product_id, stock in held.items():
            self._products[product_id] = replace(self._products[product_id], stock=stock)
        self._bump_versions(held, now)
        self._insert(order_id, FakeReservation(
            ReservationStatus.HELD, None, now, dict(reserved.quantities)))
        return None

    def reservations_of(self, order_ids: Collection[str]) -> dict[str, ReservationOutcome]:
        return {order_id: outcome for order_id in sorted(set(order_ids))
                if (outcome := self.reservation(order_id)) is not None}

    def hold_all(
        self, held: Sequence[tuple[str, Reserved]], rejected: Sequence[tuple[str, Rejected]],
        now: datetime,
    ) -> str | None:
        """The real store's batch: the summed lines of every held order judged together (the
        first product short, holding nothing), then a row per order."""
        totals: dict[str, int] = {}
        for _, reserved in held:
            for product_id, quantity in reserved.quantities.items():
                totals[product_id] = totals.get(product_id, 0) + quantity
        stocks: dict[str, Stock] = {}
        for product_id in sorted(totals):
            product = self._products.get(product_id)
            stock = product.stock.reserve(totals[product_id]) if product is not None else None
            if stock is None:
                return product_id
            stocks[product_id] = stock
        recorded = [order_id for order_id, _ in [*held, *rejected]
                    if order_id in self._reservations]
        if recorded:  # the real store's insert fails on the reservation's key
            raise ReservationRecorded(", ".join(recorded))
        for product_id, stock in stocks.items():
            self._products[product_id] = replace(self._products[product_id], stock=stock)
        self._bump_versions(stocks, now)
        for order_id, reserved in held:
            self._insert(order_id, FakeReservation(
                ReservationStatus.HELD, None, now, dict(reserved.quantities)))
        for order_id, decision in rejected:
            self.record_rejection(order_id, decision, now)
        return None

    def record_rejection(self, order_id: str, rejected: Rejected, now: datetime) -> None:
        self._insert(order_id, FakeReservation(ReservationStatus.REJECTED, rejected.reason, now))

    def held_lines(self, order_id: str) -> dict[str, int] | None:
        row = self._reservations.get(order_id)
        if row is None:
            return None
        if row.status != ReservationStatus.HELD:
            return {}
        return dict(sorted(row.lines.items()))

    def give_back(self, order_id: str, stocks: Mapping[str, Stock], now: datetime) -> None:
        for product_id, released in stocks.items():
            product = self._products.get(product_id)
            if product is not None:
                self._products[product_id] = replace(
                    product, stock=Stock(product.stock.on_hand, released.reserved))
        self._bump_versions(stocks, now)
        row = self._reservations.get(order_id)
        if row is not None:
            self._reservations[order_id] = replace(
                row, status=ReservationStatus.RELEASED, updated_at=now)

    def record_cancellation(self, order_id: str, now: datetime) -> None:
        self._insert(order_id, FakeReservation(ReservationStatus.CANCELLED, None, now))

    def first_recorder(self, decide: Callable[[], T]) -> T:
        return decide()  # one writer at a time: no concurrent transaction records first

    def _insert(self, order_id: str, row: FakeReservation) -> None:
        if order_id in self._reservations:
            raise FakeIntegrityError(f"a reservation row for order {order_id} already exists")
        self._reservations[order_id] = row

    def _bump_versions(self, product_ids: Iterable[str], now: datetime) -> None:
        for product_id in product_ids:
            product = self._products.get(product_id)
            if product is not None:
                self._products[product_id] = replace(
                    product, version=product.version + 1, updated_at=now)

    def _sku_taken(self, sku: str, *, by_other_than: str | None) -> bool:
        return any(p.sku == sku and p.id != by_other_than for p in self._products.values())


def _wanted(product: Product, filters: ProductFilters, active_only: bool) -> bool:
    if active_only and not product.active:
        return False
    if filters.q:  # a substring in any case: no wildcards, as the store escapes them
        text = filters.q.lower()
        if text not in product.name.lower() and text not in product.description.lower():
            return False
    if filters.category is not None and product.category != filters.category:
        return False
    if filters.min_price is not None and product.price.amount < filters.min_price:
        return False
    return filters.max_price is None or product.price.amount <= filters.max_price


def _sort_key(sort: ProductSort, product: Product) -> datetime | str | int:
    if sort is ProductSort.CREATED_AT:
        return product.created_at
    if sort is ProductSort.NAME:
        return product.name
    return product.price.amount


def _cursor(sort: ProductSort, product: Product) -> tuple[str | int, str]:
    """The store's cursor: the sort key (JSON-friendly) and the id as the tie-breaker."""
    key = _sort_key(sort, product)
    return (key.isoformat() if isinstance(key, datetime) else key), product.id


def _cursor_bound(sort: ProductSort, after: tuple[object, ...]) -> tuple[Any, str]:
    """A cursor checked as the store checks it, as a key to compare rows with."""
    return cursor_key(sort, after)

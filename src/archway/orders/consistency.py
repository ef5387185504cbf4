"""Read-your-writes: consistency tokens, and waiting (bounded) for the read models to catch up.

A command answers with a ``Consistency-Token``: the position, in the orders outbox, of the
newest event about its order when it committed, encoded so clients treat it as opaque. A query
that sends it back first waits until every read model has applied the event at that position
(the projections' inbox rows say so, whichever process applied it), at most
``read_your_writes_timeout_seconds``; then it answers, and says ``Consistency: stale`` if the
wait ran out.

A token names the position of an event the command recorded, so a position with no event in
the log (past the newest event, or a gap the database's sequence left) is one this API never
issued: the first check finds no event there and the query is refused with a 400 at once,
instead of waiting out the bound for an event that will never come.

Waiting is not polling: each projection wakes the waiters when it applies an event, and they
check once. A slow re-check (:data:`RECHECK_SECONDS`) only covers events applied by another
process, which cannot wake this one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from archway.kernel.db import UnitsOfWork
from archway.kernel.errors import BadRequest
from archway.orders.store import orders_inbox, orders_outbox

TOKEN_HEADER = "Consistency-Token"
STALE_HEADER = "Consistency"
RECHECK_SECONDS = 0.25
_PREFIX = "orders:"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_POSITION = re.compile(r"^(0|[1-9][0-9]{0,17})$")


def encode_token(position: int) -> str:
    """The opaque token for an outbox position (base64url, no padding)."""
    raw = f"{_PREFIX}{position}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> int:
    """The outbox position in ``token``; anything this API did not issue is a 400."""
    if _TOKEN.match(token):
        padded = token + "=" * (-len(token) % 4)
        with contextlib.suppress(ValueError):
            text = base64.urlsafe_b64decode(padded).decode("ascii")
            number = text.removeprefix(_PREFIX)
            if text.startswith(_PREFIX) and _POSITION.match(number):
                return int(number)
    raise _not_issued()


class ReadYourWrites:
    """Waits until the read models (their consumer names) have applied a token's event."""

    def __init__(self, db: UnitsOfWork, consumers: Sequence[str], timeout: float) -> None:
        self._db = db
        self._consumers = tuple(consumers)
        self.timeout = timeout
        self._applied = asyncio.Event()

    def notify(self) -> None:
        """A projection applied an event: wake every waiter once (they re-check)."""
        woken, self._applied = self._applied, asyncio.Event()
        woken.set()

    async def wait(self, position: int) -> bool:
        """True once every read model has applied the event at ``position``; False if the
        timeout ran out first (the caller answers with what it has, marked stale). A position
        with no event is a token this API did not issue: a 400, at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            applied = self._applied  # taken before checking, so no wake-up is missed
            caught_up = await self._db.read(lambda conn: self._caught_up(conn, position))
            if caught_up is None:
                raise _not_issued()
            if caught_up:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(applied.wait(), min(remaining, RECHECK_SECONDS))

    def _caught_up(self, conn: Connection, position: int) -> bool | None:
        """Whether every read model applied the event at ``position``; None: no such event."""
        if position == 0:  # a command that recorded no event: nothing to wait for
            return True
        applied = select(func.count()).where(
            orders_inbox.c.event_id == orders_outbox.c.event_id,
            orders_inbox.c.consumer.in_(self._consumers),
        ).scalar_subquery()
        row = conn.execute(
            select(applied).where(orders_outbox.c.position == position)).first()
        if row is None:
            return None
        return int(row[0]) == len(self._consumers)


def _not_issued() -> BadRequest:
    return BadRequest(f"The {TOKEN_HEADER} header is not a token this API issued.")

"""Access tokens revoked before they expire (RFC 7009 at ``/oauth/revoke``): the verifier's
denylist (:class:`~archway.kernel.auth.tokens.Denylist`), by ``jti``.

Access tokens are self-contained JWTs, verified without a lookup; a revoked one stays valid
until it expires unless something remembers it. Its ``jti`` is stored until its ``exp`` (then
no verifier accepts it anyway, and the row goes), and every verification asks this denylist,
which answers from memory: a set of the unexpired revoked ids, reloaded from the store once per
``refresh_seconds`` (one read per process and interval, whatever the load), so the hot path
pays a set lookup. A revocation is seen at once by the process that made it, and within
``refresh_seconds`` by the others (the staleness of a deleted user or a revoked client). A
store that cannot answer a reload leaves the last set in place, logged, and is asked again
after the interval: an outage of the database must not refuse every token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol

from archway.kernel.errors import AlreadyExists, ArchwayError
from archway.kernel.uow import Tx, UnitsOfWork

_log = logging.getLogger("archway.identity.revoked_tokens")


class RevokedTokens(Protocol):
    """The revoked access tokens a unit of work sees (``store.RevokedTokenRepository``)."""

    def add(self, token_id: str, expires_at: datetime) -> None: ...
    def unexpired(self, now: datetime) -> list[tuple[str, datetime]]: ...
    def remove_expired(self, before: datetime) -> int: ...


class Denylist(Generic[Tx]):
    def __init__(
        self,
        db: UnitsOfWork[Tx],
        tokens: Callable[[Tx], RevokedTokens],
        *,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._ids: dict[str, float] = {}  # jti: its exp
        self._next_reload = float("-inf")
        self._reloading = False

    async def contains(self, token_id: str) -> bool:
        """Whether the token ``token_id`` was revoked (from memory, reloaded when due)."""
        if self._clock() >= self._next_reload and not self._reloading:
            await self._reload()
        return token_id in self._ids

    async def revoke(self, token_id: str, expires_at: int) -> None:
        """Refuse the token ``token_id`` from now until it expires (``expires_at``, a
        NumericDate); revoking it twice changes nothing. Expired rows go at the same time."""
        until = datetime.fromtimestamp(expires_at, UTC)

        def add(tx: Tx) -> None:
            tokens = self._tokens(tx)
            tokens.remove_expired(datetime.now(UTC) - timedelta(minutes=1))
            tokens.add(token_id, until)

        with suppress(AlreadyExists):
            await self._db.write(add)
        self._ids[token_id] = float(expires_at)

    async def _reload(self) -> None:
        self._reloading = True
        try:
            now = datetime.now(UTC)
            loaded = await self._db.read(lambda tx: self._tokens(tx).unexpired(now))
            # What this process revoked while the read ran is kept; the expired go.
            kept = {jti: exp for jti, exp in self._ids.items() if exp > now.timestamp()}
            self._ids = kept | {jti: exp.timestamp() for jti, exp in loaded}
        except (ArchwayError, OSError) as exc:
            _log.warning("revoked access tokens cannot be reloaded (%s); the last %d known "
                         "are still refused", exc, len(self._ids))
        finally:
            self._next_reload = self._clock() + self._refresh_seconds
            self._reloading = False

"""A process's relays as one: started and stopped together, the commands' backpressure over
all of them, their readiness checks, and waiting until they are quiet (tests, shutdown)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from archway.kernel.events.metrics import EventMetrics
from archway.kernel.events.relay import OutboxRelay
from archway.kernel.events.wakeups import OutboxWakeups


class Relays:
    """The process's relays, started and stopped together by the app's lifespan."""

    def __init__(
        self, relays: Sequence[OutboxRelay], *, metrics: EventMetrics | None = None,
        wakeups: OutboxWakeups | None = None,
    ) -> None:
        self.all = tuple(relays)
        self._metrics = metrics
        self._wakeups = wakeups

    def start(self) -> None:
        if self._wakeups is not None:
            self._wakeups.start()
        for relay in self.all:
            relay.start()

    async def stop(self) -> None:
        for relay in self.all:
            await relay.stop()
        if self._wakeups is not None:
            await self._wakeups.stop()

    async def keeping_up(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait is its API
        """Wait (at most ``timeout`` seconds) until the consumers of every relay lag behind
        its outbox by no more than its ``max_lag``, or the relay lets the command in at the pace
        it publishes (:meth:`OutboxRelay.admit`). The lag is kept in memory by each relay, so
        a command that need not wait pays no I/O for asking.

        Commands call this before they append: under a load the consumers cannot follow, it
        holds new commands back instead of letting the backlog (and every read model's lag)
        grow without bound. False if it gave up waiting; the command then goes ahead, since
        its events are safe in the outbox either way. A ``timeout`` of 0 never waits."""
        if timeout <= 0:
            return True
        # Coroutines only for the relays that are behind, and only once they will be awaited.
        behind = [relay.admit() for relay in self.all if not relay.keeping_up]
        if not behind:
            return True
        started = time.monotonic()
        admitted = True
        try:
            await asyncio.wait_for(asyncio.gather(*behind), timeout)
        except TimeoutError:
            admitted = False
        if self._metrics is not None:
            self._metrics.held_back(time.monotonic() - started, admitted=admitted)
        return admitted

    def readiness_checks(self) -> dict[str, Callable[[], Awaitable[bool]]]:
        """One ``/readyz`` check per relay, named ``relay:<context>``."""
        return {f"relay:{relay.context}": relay.ready for relay in self.all}

    async def settle(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - as keeping_up
        """Wait until no running relay has anything left to publish and none is publishing
        (twice in a row, since one relay's consumers write to another's outbox). Relays that
        were never started publish nothing, so they are not waited for. For tests and
        shutdown."""
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while time.monotonic() < deadline:
            quiet = True
            for relay in self.all:
                if relay.state() == "stopped":
                    continue
                if relay.busy or await relay.pending():
                    quiet = False
                    relay.nudge()
            quiet_rounds = quiet_rounds + 1 if quiet else 0
            if quiet_rounds >= 2:
                return True
            await asyncio.sleep(0.005)
        return False

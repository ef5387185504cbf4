"""Moving windows, the one algorithm the limiter needs, in two stores that answer a hit in one
call: whether it is admitted, how many requests the window now holds, and when its oldest
leaves (what the ``RateLimit`` headers report).

A moving window admits a request when fewer than ``limit`` requests were admitted in the
``window`` seconds before it: exact at every instant, without the fixed window's double burst at
a boundary or the sliding counter's estimate.

Why not the ``limits`` library, the first choice (see docs/architecture.md, Decisions): its API
answers a hit with a bool, so filling the headers costs a second call (two Lua scripts per
request on Redis, the second a binary search of ``LINDEX``), and its async memory storage starts
a task with a thread hop per key after each hit. Measured on ``GET /users/me`` in process, it
cost 0.67× (memory) and 0.15× (Redis) of the throughput without limits.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import NoScriptError, RedisError

SWEEP_EVERY_SECONDS = 10.0
"""How often the memory store forgets the consumers whose window has emptied."""


class StoreUnavailable(Exception):
    """The store could not answer (down, refusing, slower than its timeout)."""


class Window(NamedTuple):
    """A window after one hit: ``admitted``, the requests it holds (``used``, the hit included
    when admitted), and the seconds until its oldest request leaves it (``frees_in``: when a
    full window admits again)."""

    admitted: bool
    used: int
    frees_in: float


class WindowStore(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> Window:
        """Count a request against ``key``'s window if it has room; raises
        :class:`StoreUnavailable`."""
        ...

    async def reachable(self) -> bool: ...

    async def close(self) -> None: ...


class Recent(NamedTuple):
    """What a key's log of events holds within its window: how many (``events``), how long ago
    the newest was (``since_newest``; the window's length when there is none) and when the
    oldest leaves it (``oldest_leaves_in``; 0 when there is none)."""

    events: int
    since_newest: float
    oldest_leaves_in: float


class EventLog(Protocol):
    """The same stores as logs of events that are always recorded (failed sign-ins, counted
    by ``identity.sign_ins``), unlike a window's hits, which are refused once it is full.
    Each call raises :class:`StoreUnavailable` when the store cannot answer."""

    async def record(self, key: str, keep: int, window_seconds: int) -> Recent:
        """Log one event now, keeping only the newest ``keep`` of the window's."""
        ...

    async def recent(self, key: str, window_seconds: int) -> Recent: ...

    async def forget(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryWindows:
    """This process's windows: the admitted requests' times per key, oldest first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, deque[float]]] = {}
        self._next_sweep = clock() + SWEEP_EVERY_SECONDS

    def __len__(self) -> int:
        """How many consumers' windows are kept."""
        return len(self._windows)

    async def hit(self, key: str, limit: int, window_seconds: int) -> Window:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        entry = self._windows.get(key)
        if entry is None:
            entry = self._windows[key] = (window_seconds, deque())
        times = entry[1]
        horizon = now - window_seconds
        while times and times[0] <= horizon:
            times.popleft()
        admitted = len(times) < limit
        if admitted:
            times.append(now)
        return Window(admitted, len(times), times[0] + window_seconds - now)

    async def record(self, key: str, keep: int, window_seconds: int) -> Recent:
        times = self._times(key, window_seconds, keep=True)
        times.append(self._clock())
        while len(times) > keep:
            times.popleft()
        return await self.recent(key, window_seconds)

    async def recent(self, key: str, window_seconds: int) -> Recent:
        times = self._times(key, window_seconds)
        if not times:
            return Recent(0, float(window_seconds), 0.0)
        now = self._clock()
        return Recent(len(times), now - times[-1], times[0] + window_seconds - now)

    async def forget(self, key: str) -> None:
        self._windows.pop(key, None)

    def _times(self, key: str, window_seconds: int, *, keep: bool = False) -> deque[float]:
        """``key``'s times within the window, oldest first (the older ones dropped); a key
        with none is kept only when ``keep`` (reading every email ever tried keeps nothing)."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        entry = self._windows.get(key)
        if entry is None:
            if not keep:
                return deque()
            entry = self._windows[key] = (window_seconds, deque())
        times = entry[1]
        while times and times[0] <= now - window_seconds:
            times.popleft()
        return times

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_EVERY_SECONDS
        idle = [key for key, (window, times) in self._windows.items()
                if not times or times[-1] <= now - window]
        for key in idle:
            del self._windows[key]

    async def reachable(self) -> bool:
        return True

    async def close(self) -> None:
        self._windows.clear()


# KEYS[1]: the window, a list of admitted times, newest first. ARGV: limit, window (seconds).
# Times are Redis's own (TIME), so processes on hosts whose clocks differ still share one window;
# a list never holds more than the limit, and each time leaves it once (amortised O(1)).
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
while true do
  local oldest = redis.call('LINDEX', KEYS[1], -1)
  if not oldest or tonumber(oldest) > now - window then break end
  redis.call('RPOP', KEYS[1])
end
local used = redis.call('LLEN', KEYS[1])
local admitted = 0
if used < limit then
  redis.call('LPUSH', KEYS[1], string.format('%.6f', now))
  used = used + 1
  admitted = 1
end
if used > 0 then redis.call('EXPIRE', KEYS[1], window) end
local oldest = redis.call('LINDEX', KEYS[1], -1)
local frees_in = window
if oldest then frees_in = tonumber(oldest) + window - now end
return {admitted, used, string.format('%.6f', frees_in)}
"""


# KEYS[1]: a log, newest first. ARGV: window (seconds), keep (0: only read it). Its events
# older than the window leave it; recording pushes Redis's now and trims it to the newest keep.
_LOG = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
if keep > 0 then
  redis.call('LPUSH', KEYS[1], string.format('%.6f', now))
  redis.call('LTRIM', KEYS[1], 0, keep - 1)
  redis.call('EXPIRE', KEYS[1], window)
end
while true do
  local oldest = redis.call('LINDEX', KEYS[1], -1)
  if not oldest or tonumber(oldest) > now - window then break end
  redis.call('RPOP', KEYS[1])
end
local count = redis.call('LLEN', KEYS[1])
if count == 0 then return {0, tostring(window), '0'} end
local newest = tonumber(redis.call('LINDEX', KEYS[1], 0))
local oldest = tonumber(redis.call('LINDEX', KEYS[1], -1))
return {count, string.format('%.6f', now - newest), string.format('%.6f', oldest + window - now)}
"""


class RedisWindows:
    """Windows every process on one Redis shares: each hit is one atomic script.

    The hits of every request waiting at once go to Redis together, in one pipeline (one
    round trip, one connection), and the next batch gathers while one is in flight: a request
    alone waits one round trip, a load pays the client's per-command work once per batch
    (redis-py's pool checkout, writing, parsing cost about as much as the rest of a cheap
    request, per command)."""

    def __init__(self, url: str, *, timeout_seconds: float, pool_size: int = 8,
                 prefix: str = "archway:ratelimit:") -> None:
        self._pool = BlockingConnectionPool.from_url(
            url, max_connections=pool_size, timeout=timeout_seconds,
            socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
        self._redis = Redis(connection_pool=self._pool)
        self._sha = hashlib.sha1(_HIT.encode(), usedforsecurity=False).hexdigest()
        self._log = self._redis.register_script(_LOG)  # loads itself on NOSCRIPT
        self._prefix = prefix
        self._pending: list[tuple[str, int, int, asyncio.Future[Window]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def hit(self, key: str, limit: int, window_seconds: int) -> Window:
        future: asyncio.Future[Window] = asyncio.get_running_loop().create_future()
        self._pending.append((self._prefix + key, limit, window_seconds, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        batch: list[tuple[str, int, int, asyncio.Future[Window]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    answers = await self._run(batch)
                except (RedisError, OSError, TimeoutError) as exc:
                    failure = StoreUnavailable(f"{type(exc).__name__}: {exc}")
                    answers = [failure] * len(batch)
                for (*_, future), answer in zip(batch, answers, strict=True):
                    if future.done():  # its request was cancelled meanwhile
                        continue
                    if isinstance(answer, StoreUnavailable):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            # Reached with requests still waiting only when this task is cancelled (closing)
            # or failed: none of them may wait for ever.
            self._sender = None
            for *_, future in (*batch, *self._pending):
                if not future.done():
                    future.set_exception(StoreUnavailable("the rate limit store is closing"))
            self._pending = []

    async def _run(
        self, batch: list[tuple[str, int, int, asyncio.Future[Window]]]
    ) -> list[Window | StoreUnavailable]:
        results = await self._pipeline(batch)
        if any(isinstance(result, NoScriptError) for result in results):
            await self._redis.script_load(_HIT)  # a new or restarted Redis: load it, once
            results = await self._pipeline(batch)
        answers: list[Window | StoreUnavailable] = []
        for result in results:
            if isinstance(result, BaseException):
                answers.append(StoreUnavailable(f"{type(result).__name__}: {result}"))
            else:
                admitted, used, frees_in = result
                answers.append(Window(bool(admitted), int(used), float(frees_in)))
        return answers

    async def _pipeline(
        self, batch: list[tuple[str, int, int, asyncio.Future[Window]]]
    ) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, limit, window_seconds, _ in batch:
                pipe.evalsha(self._sha, 1, key, limit, window_seconds)
            return await pipe.execute(raise_on_error=False)

    async def record(self, key: str, keep: int, window_seconds: int) -> Recent:
        return await self._log_call(key, window_seconds, max(keep, 1))

    async def recent(self, key: str, window_seconds: int) -> Recent:
        return await self._log_call(key, window_seconds, 0)

    async def forget(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + key)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _log_call(self, key: str, window_seconds: int, keep: int) -> Recent:
        """One event log call, not batched: sign-ins are rare next to the limiter's hits."""
        try:
            count, since_newest, leaves_in = await self._log(
                keys=[self._prefix + key], args=[window_seconds, keep])
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return Recent(int(count), float(since_newest), float(leaves_in))

    async def reachable(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
        await self._redis.aclose()
        await self._pool.aclose()

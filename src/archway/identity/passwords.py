"""argon2id password hashing on a bounded thread pool, off the event loop.

Hashing costs tens of milliseconds of CPU by design. Running it on the loop would stall every
other request, and an unbounded queue would let a burst of registrations or logins pile up
without limit, so callers wait for a permit for a bounded time and get ``ServiceBusy`` after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from archway.kernel.errors import ServiceBusy

T = TypeVar("T")


class PasswordHasher:
    def __init__(
        self, *, time_cost: int, memory_kib: int, workers: int, queue_timeout: float
    ) -> None:
        self._argon2 = Argon2(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._permits = asyncio.Semaphore(workers * 4)
        self._queue_timeout = queue_timeout

    async def hash(self, password: str) -> str:
        return await self._run(lambda: str(self._argon2.hash(password)))

    async def verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return bool(self._argon2.verify(password_hash, password))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await self._run(check)

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            await asyncio.wait_for(self._permits.acquire(), self._queue_timeout)
        except TimeoutError as exc:
            raise ServiceBusy("Too many password checks in progress; retry shortly.") from exc
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        finally:
            self._permits.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

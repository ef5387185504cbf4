"""Helpers for the rate-limit tests of every protocol: an app of its own with limits on (the
session app has them off, so counts start from zero), a client of it from a chosen address, and
the ``RateLimit`` value read back."""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once
RATELIMIT = re.compile(r'^"(?P<name>[a-z-]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')

Limited = Callable[..., FastAPI]
"""``limited(rate_limit_anonymous_reads=3, …)``: the ``limited`` fixture (tests/conftest.py)."""


@asynccontextmanager
async def calling(app: FastAPI, address: str = "192.0.2.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    limiter = app.state.rate_limiter
    if limiter is not None:
        await limiter.close()


def remaining(value: httpx.Response | str) -> tuple[str, int, int]:
    """A ``RateLimit`` value's (or a response's header's) policy name, ``r`` and ``t``."""
    text = value if isinstance(value, str) else value.headers["ratelimit"]
    matched = RATELIMIT.match(text)
    assert matched, text
    return matched["name"], int(matched["r"]), int(matched["t"])


def fresh_address() -> str:
    """A documentation IPv6 address no other test (nor another run on a shared Redis) uses."""
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | random.getrandbits(96)))


def rejections(
    metrics_text: str, protocol: str, route_class: str, plan: str = "anonymous"
) -> float:
    """``archway_rate_limit_rejections_total`` for over-limit refusals of one protocol and class
    in a scrape (0 when the series is not there yet)."""
    series = (f'archway_rate_limit_rejections_total{{plan="{plan}",protocol="{protocol}",'
              f'reason="over_limit",route_class="{route_class}"}}')
    line = next((line for line in metrics_text.splitlines() if line.startswith(series)), None)
    return float(line.split()[-1]) if line else 0.0

"""The ``RateLimit-Policy`` and ``RateLimit`` response headers of
draft-ietf-httpapi-ratelimit-headers, as RFC 8941 structured fields (a list of one item: the
policy's name as a string, with integer parameters).

    RateLimit-Policy: "default";q=600;w=60      quota q requests per window of w seconds
    RateLimit: "default";r=599;t=60             r requests remain; the window resets in t s

No library emits them; these few lines are Archway's own.
"""

from __future__ import annotations

import math
import re

from archway.kernel.ratelimit.policy import Policy

_NAME = re.compile(r"^[\x20-\x7e]*$")


def _sf_string(text: str) -> str:
    """An RFC 8941 sf-string: printable ASCII, with ``\\`` and ``"`` escaped."""
    if not _NAME.match(text):
        raise ValueError(f"a policy name must be printable ASCII: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policy_header(policy: Policy) -> str:
    """``"default";q=600;w=60``: the policy's quota and window."""
    quota = policy.quota
    return f"{_sf_string(policy.name)};q={quota.amount};w={quota.window_seconds}"


def limit_header(policy: Policy, remaining: int, reset_seconds: int) -> str:
    """``"default";r=599;t=60``: what remains of the quota and when the window resets."""
    return limit_header_prefix(policy) + f"r={max(0, remaining)};t={max(0, reset_seconds)}"


def limit_header_prefix(policy: Policy) -> str:
    """``"default";``: what every ``RateLimit`` value of the policy starts with (the hot path
    formats only the numbers)."""
    return _sf_string(policy.name) + ";"


def seconds_until(reset_at: float, now: float, window_seconds: int) -> int:
    """Whole seconds from ``now`` to ``reset_at`` (a Unix time), rounded up and kept within
    the window: what ``t`` and ``Retry-After`` (an RFC 9110 delay in integer seconds) say."""
    return min(window_seconds, max(0, math.ceil(reset_at - now)))

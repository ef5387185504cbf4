"""Parity, rate limits: over its quota a consumer is refused alike over REST (429 problem+json
with ``Retry-After``), GraphQL (an error with ``extensions.code`` ``RATE_LIMITED`` and
``extensions.retryAfter``) and gRPC (``RESOURCE_EXHAUSTED`` with ``google.rpc.RetryInfo``).

The calls go to a second process on the same database whose default plan allows
``TINY_QUOTA`` requests a minute per route class; each protocol spends the budget of a consumer
of its own, so each shows its own limit at work.
"""

from __future__ import annotations

import pytest

from tests.contract.conftest import TINY_QUOTA, Tokens
from tests.contract.parity import over
from tests.contract.parity.neutral import Refusal, Refused, ShopApi, assert_refused

pytestmark = pytest.mark.e2e


@over(fixture="limited_api")
async def test_over_the_quota_a_call_is_refused_with_when_to_retry(
    limited_api: ShopApi, tokens: Tokens
) -> None:
    token = {"rest": tokens.alice, "graphql": tokens.bob, "grpc": tokens.carol}[limited_api.name]
    answered = 0
    refusal: Refusal | None = None
    for _ in range(TINY_QUOTA + 2):  # the quota, and then some: the refusal comes in between
        try:
            await limited_api.me(token)
        except Refused as refused:
            refusal = refused.refusal
            break
        answered += 1
    assert refusal is not None, f"{answered} calls answered, none refused"
    assert 1 <= answered <= TINY_QUOTA
    assert_refused(refusal, "rate_limited")
    assert refusal.retry_after is not None and 1 <= refusal.retry_after <= 60, refusal
    assert refusal.detail, refusal  # worded by each protocol's limiter: not compared

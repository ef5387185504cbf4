"""Rate limits' pure parts: the IETF headers' form, the route classes, which plan a consumer is
on and whom a request is counted against (its token's subject, else its address)."""

from __future__ import annotations

import pytest

from archway.config import ConfigurationError, load_settings
from archway.kernel.auth.tokens import TokenVerifier
from archway.kernel.http.caller import CALLER_KEY, Caller, CallerIdentifier
from archway.kernel.ratelimit.headers import limit_header, policy_header, seconds_until
from archway.kernel.ratelimit.policy import Plan, Plans, Policy, Quota, RouteClass, route_class
from tests.security.test_token_verification import (
    AUDIENCE,
    ISSUER,
    StaticKeys,
    claims,
    make_key,
    sign,
)


def quotas(amount: int = 10) -> dict[Plan, dict[RouteClass, Quota]]:
    return {plan: {cls: Quota(amount, 60) for cls in RouteClass} for plan in Plan}


def test_the_headers_are_structured_fields_as_the_draft_and_product_md_write_them() -> None:
    reads = Policy(Plan.DEFAULT, RouteClass.READS, Quota(600, 60))
    assert policy_header(reads) == '"default";q=600;w=60'
    assert limit_header(reads, 599, 60) == '"default";r=599;t=60'
    writes = Policy(Plan.ANONYMOUS, RouteClass.AUTH, Quota(10, 300))
    assert policy_header(writes) == '"anonymous-auth";q=10;w=300'
    assert limit_header(writes, -1, -5) == '"anonymous-auth";r=0;t=0'  # never negative


def test_reset_seconds_round_up_and_stay_within_the_window() -> None:
    assert seconds_until(100.2, 100.0, 60) == 1  # 0.2 s is "retry in 1 s", never 0
    assert seconds_until(160.0, 100.0, 60) == 60
    assert seconds_until(99.0, 100.0, 60) == 0
    assert seconds_until(1000.0, 100.0, 60) == 60


def test_quotas_are_whole_and_every_plan_has_every_class() -> None:
    with pytest.raises(ValueError, match="at least one request"):
        Quota(0, 60)
    partial = quotas()
    del partial[Plan.PARTNER][RouteClass.AUTH]
    with pytest.raises(ValueError, match="partner/auth"):
        Plans(partial)


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/api/v1/users", RouteClass.READS),
    ("HEAD", "/api/v2/products/1", RouteClass.READS),
    ("OPTIONS", "/api/v1/orders", RouteClass.READS),
    ("POST", "/api/v1/users", RouteClass.AUTH),
    ("POST", "/api/v2/users", RouteClass.AUTH),
    ("POST", "/oauth/token", RouteClass.AUTH),
    ("POST", "/login", RouteClass.AUTH),
    ("POST", "/api/v1/users/extra", RouteClass.WRITES),
    ("PATCH", "/api/v1/users/123", RouteClass.WRITES),
    ("POST", "/api/v1/orders", RouteClass.WRITES),
    ("DELETE", "/api/v2/products/1", RouteClass.WRITES),
])
def test_route_classes(method: str, path: str, expected: RouteClass) -> None:
    assert route_class(method, path) is expected


def test_the_plan_of_a_consumer() -> None:
    plans = Plans(quotas(), partners=frozenset({"acme-client", "user-7"}))
    assert plans.plan_of(None, None) is Plan.ANONYMOUS
    assert plans.plan_of("user-1", "archway-cli") is Plan.DEFAULT
    assert plans.plan_of("user-1", "acme-client") is Plan.PARTNER  # by client id
    assert plans.plan_of("user-7", "archway-cli") is Plan.PARTNER  # by subject
    assert plans.policy(Plan.PARTNER, RouteClass.READS).name == "partner"
    assert plans.policy(Plan.PARTNER, RouteClass.WRITES).name == "partner-writes"


def scope(authorization: str | None = None, client: tuple[str, int] | None = ("203.0.113.9", 1)
          ) -> dict[str, object]:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return {"type": "http", "headers": headers, "client": client}


async def test_a_request_is_counted_against_its_token_subject_else_its_address() -> None:
    key = make_key("k1")
    identify = CallerIdentifier(TokenVerifier(StaticKeys(key), issuer=ISSUER, audience=AUDIENCE))
    token = sign(key, claims(sub="user-42", client_id="acme-client"))
    assert await identify(scope(f"Bearer {token}")) == Caller("token", "user-42", "acme-client")
    assert (await identify(scope(f"Bearer {token}"))).key == "sub:user-42"
    # No token, a malformed or a forged one: the address.
    for authorization in (None, "Basic abc", "Bearer not-a-jwt",
                          "Bearer " + sign(make_key("k1"), claims(sub="user-42"))):
        caller = await identify(scope(authorization))
        assert caller == Caller("address", "203.0.113.9"), authorization
        assert caller.key == "ip:203.0.113.9"
    assert (await identify(scope(client=None))).key == "ip:unknown"


async def test_a_request_is_identified_once() -> None:
    identify = CallerIdentifier(TokenVerifier(StaticKeys(), issuer=ISSUER, audience=AUDIENCE))
    request = scope()
    first = await identify(request)
    assert request[CALLER_KEY] is first
    request["client"] = ("198.51.100.1", 1)  # what the first policy saw is what the next sees
    assert await identify(request) is first


def test_the_settings_are_checked_at_start_up() -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(rate_limit_default_reads=0, redis_url="http://127.0.0.1:6379",
                      rate_limit_window_seconds=0)
    lines = str(refused.value).splitlines()
    assert any(line.startswith("invalid configuration: ARCHWAY_RATE_LIMIT_DEFAULT_READS")
               for line in lines)
    assert any(line.startswith("invalid configuration: ARCHWAY_REDIS_URL") for line in lines)
    assert any(line.startswith("invalid configuration: ARCHWAY_RATE_LIMIT_WINDOW_SECONDS")
               for line in lines)
    assert load_settings(redis_url="").redis_url is None  # set but empty: none
    assert load_settings(rate_limits="off").rate_limits is False  # type: ignore[arg-type]

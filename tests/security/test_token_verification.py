"""Access-token verification refuses every forged, stale or misdirected token."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from archway.kernel.auth.tokens import TokenVerifier
from archway.kernel.errors import Unauthenticated

ISSUER, AUDIENCE = "https://issuer.test", "archway"


class StaticKeys:
    def __init__(self, *keys: ECKey) -> None:
        self.keys = {key.kid: key for key in keys}
        self.refreshes = 0

    async def public_keys(self, *, refresh: bool = False) -> Mapping[str, ECKey]:
        self.refreshes += refresh
        return self.keys


def make_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid})


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "client_id": "cli",
            "scope": "profile orders:read", "roles": ["customer"], "iat": now, "nbf": now,
            "exp": now + 300, "jti": "j1"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: ECKey, payload: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "at+jwt", **header}, payload, key)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def key() -> ECKey:
    return make_key("k1")


@pytest.fixture
def verifier(key: ECKey) -> TokenVerifier:
    return TokenVerifier(StaticKeys(key), issuer=ISSUER, audience=AUDIENCE, leeway_seconds=0,
                         min_refresh_interval=0)


async def test_a_valid_token_gives_its_principal(verifier: TokenVerifier, key: ECKey) -> None:
    principal = await verifier.verify(sign(key, claims()))
    assert principal.subject == "user-1"
    assert principal.scopes == {"profile", "orders:read"}
    assert principal.roles == {"customer"}


async def refused(verifier: TokenVerifier, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    assert caught.value.error == "invalid_token"
    return caught.value


async def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    header = b64(orjson.dumps({"alg": "none", "kid": "k1", "typ": "at+jwt"}))
    await refused(verifier, f"{header}.{b64(orjson.dumps(claims()))}.x")


async def test_hs256_signed_with_the_public_key_is_refused(
    verifier: TokenVerifier, key: ECKey
) -> None:
    public_pem = key.as_pem(private=False)
    header = b64(orjson.dumps({"alg": "HS256", "kid": "k1", "typ": "at+jwt"}))
    body = b64(orjson.dumps(claims()))
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    await refused(verifier, f"{header}.{body}.{b64(mac)}")


async def test_a_bad_signature_is_refused(verifier: TokenVerifier, key: ECKey) -> None:
    forged = sign(make_key("k1"), claims())  # same kid, another key
    await refused(verifier, forged)


async def test_a_tampered_payload_is_refused(verifier: TokenVerifier, key: ECKey) -> None:
    header, _, signature = sign(key, claims()).split(".")
    payload = b64(orjson.dumps(claims(roles=["admin"])))
    await refused(verifier, f"{header}.{payload}.{signature}")


async def test_an_unknown_kid_refreshes_once_then_refuses(key: ECKey) -> None:
    keys = StaticKeys(key)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, min_refresh_interval=0)
    await refused(verifier, sign(make_key("other"), claims()))
    assert keys.refreshes == 1


async def test_a_rotated_key_is_found_after_refresh(key: ECKey) -> None:
    keys = StaticKeys(key)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, min_refresh_interval=0)
    new_key = make_key("k2")
    keys.keys["k2"] = new_key
    assert (await verifier.verify(sign(new_key, claims()))).subject == "user-1"


@pytest.mark.parametrize("overrides", [
    {"exp": int(time.time()) - 10},
    {"nbf": int(time.time()) + 600},
    {"iss": "https://evil.test"},
    {"aud": "someone-else"},
    {"sub": None},
    {"jti": None},
    {"client_id": None},
    {"exp": "tomorrow"},
    {"scope": ["profile"]},
])
async def test_bad_claims_are_refused(
    verifier: TokenVerifier, key: ECKey, overrides: dict[str, Any]
) -> None:
    await refused(verifier, sign(key, claims(**overrides)))


async def test_a_token_that_is_not_an_access_token_is_refused(
    verifier: TokenVerifier, key: ECKey
) -> None:
    await refused(verifier, sign(key, claims(), typ="JWT"))


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c.d", "!!!.???.***", "e30.e30.e30"])
async def test_garbage_is_refused(verifier: TokenVerifier, garbage: str) -> None:
    await refused(verifier, garbage)


async def test_a_cached_token_still_expires(key: ECKey) -> None:
    verifier = TokenVerifier(StaticKeys(key), issuer=ISSUER, audience=AUDIENCE, leeway_seconds=0)
    token = sign(key, claims(exp=int(time.time()) + 1))
    await verifier.verify(token)
    await asyncio.sleep(1.1)
    await refused(verifier, token)

"""Forged access tokens for the attacks: signed with the app's own key (so only the attacked
detail is wrong), with another key, or not at all, from claims written as raw JSON text (so a
``NaN`` or ``1e400`` reaches the verifier as the attacker wrote it)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson
from joserfc import jws
from joserfc.jwk import ECKey

from archway.topologies.monolith import Monolith

HEADER = {"alg": "ES256", "typ": "at+jwt"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(issuer: str, subject: str, scopes: str, **overrides: Any) -> dict[str, Any]:
    """Claims as Archway issues them; an override of ``None`` leaves the claim out."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer, "aud": "archway", "sub": subject, "client_id": "archway-cli",
        "scope": scopes, "roles": ["customer"], "iat": now, "nbf": now, "exp": now + 300,
        "jti": f"forged-{now}"}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def with_raw(payload: dict[str, Any], **raw: str) -> bytes:
    """``payload`` as JSON with each of ``raw``'s claims written as the given JSON text."""
    text = orjson.dumps({k: v for k, v in payload.items() if k not in raw}).decode()[:-1]
    extra = "".join(f', "{name}": {value}' for name, value in raw.items())
    return (text + extra + "}").encode()


def sign(key: ECKey, payload: bytes | dict[str, Any], **header: Any) -> str:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return jws.serialize_compact({**HEADER, "kid": key.kid, **header}, body, key)


def unsigned(payload: dict[str, Any], kid: str) -> str:
    """``alg: none``: a header, the claims and an empty signature."""
    header = b64(orjson.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}))
    return f"{header}.{b64(orjson.dumps(payload))}."


def hs256_with_public_key(key: ECKey, payload: dict[str, Any]) -> str:
    """Algorithm confusion: HMAC-SHA256 keyed with the public key's PEM, which anyone has."""
    header = b64(orjson.dumps({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}))
    body = b64(orjson.dumps(payload))
    mac = hmac.new(key.as_pem(private=False), f"{header}.{body}".encode(), hashlib.sha256)
    return f"{header}.{body}.{b64(mac.digest())}"


async def app_key(graph: Monolith) -> ECKey:
    """The key the app signs its tokens with (the private half, as identity holds it)."""
    return await graph.identity.keys.signing_key()


def other_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid})

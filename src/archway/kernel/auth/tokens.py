"""Stateless verification of RFC 9068 JWT access tokens.

Only ES256 is accepted and only keys from the key source are used, which rules out ``alg:
none`` and HS256-with-the-public-key confusion by construction. Keys are looked up by ``kid``;
an unknown ``kid`` refreshes the key source once (rate-limited) so rotated keys are picked up
without restarts. Verified tokens are cached until they expire: verification is the costliest
step of an authenticated request and a token's claims never change.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from archway.kernel.auth.principal import Principal
from archway.kernel.errors import Unauthenticated

ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"


class KeySource(Protocol):
    """Where public verification keys come from (a JWKS endpoint, or the identity store)."""

    async def public_keys(self, *, refresh: bool = False) -> Mapping[str, ECKey]: ...


class Denylist(Protocol):
    """Access tokens revoked before they expire, by ``jti`` (identity's, over its store)."""

    async def contains(self, token_id: str) -> bool: ...


class TokenVerifier:
    """``denylist``: asked of every token, the cached ones too, so that a revoked token is
    refused from then on (it is asked in memory: see ``identity/revoked_tokens.py``)."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 30,
        cache_size: int = 10_000,
        min_refresh_interval: float = 5.0,
        denylist: Denylist | None = None,
    ) -> None:
        self._keys = keys
        self._denylist = denylist
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size
        self._min_refresh_interval = min_refresh_interval
        self._last_refresh = 0.0
        self._refresh_lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + self._leeway > now:
                return await self._unless_revoked(cached)
            del self._cache[token]
            raise Unauthenticated("The access token has expired.", error="invalid_token")
        principal = await self._verify_uncached(token, now)
        self._cache[token] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return await self._unless_revoked(principal)

    async def _unless_revoked(self, principal: Principal) -> Principal:
        if self._denylist is not None and await self._denylist.contains(principal.token_id):
            raise _invalid("The access token was revoked.")
        return principal

    async def _verify_uncached(self, token: str, now: float) -> Principal:
        header = _unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise _invalid("The token's algorithm is not accepted.")
        if str(header.get("typ", "")).lower() not in (TOKEN_TYPE, "application/at+jwt"):
            raise _invalid("The token is not an access token.")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _invalid("The token names no key.")
        key = await self._key_for(kid)
        try:
            decoded = jwt.decode(token, key, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError) as exc:
            raise _invalid("The token's signature is not valid.") from exc
        return self._principal_from(decoded.claims, now)

    async def _key_for(self, kid: str) -> ECKey:
        keys = await self._keys.public_keys()
        if kid in keys:
            return keys[kid]
        async with self._refresh_lock:
            if time.monotonic() - self._last_refresh >= self._min_refresh_interval:
                self._last_refresh = time.monotonic()
                keys = await self._keys.public_keys(refresh=True)
        if kid not in keys:
            raise _invalid("The token was signed by an unknown key.")
        return keys[kid]

    def _principal_from(self, claims: Mapping[str, Any], now: float) -> Principal:
        for name in ("iss", "aud", "sub", "exp", "iat", "jti", "client_id"):
            if name not in claims:
                raise _invalid(f"The token lacks the '{name}' claim.")
        if claims["iss"] != self._issuer:
            raise _invalid("The token was issued by someone else.")
        audience = claims["aud"]
        audiences = audience if isinstance(audience, list) else [audience]
        if self._audience not in audiences:
            raise _invalid("The token is meant for another audience.")
        for name in ("sub", "jti", "client_id"):
            if not isinstance(claims[name], str) or not claims[name]:
                raise _invalid(f"The token's '{name}' claim is malformed.")
        exp = _numeric_date(claims, "exp")
        nbf = _numeric_date(claims, "nbf") if "nbf" in claims else _numeric_date(claims, "iat")
        _numeric_date(claims, "iat")
        if exp + self._leeway <= now:
            raise Unauthenticated("The access token has expired.", error="invalid_token")
        if nbf - self._leeway > now:
            raise _invalid("The token is not valid yet.")
        scope = claims.get("scope", "")
        roles = claims.get("roles", [])
        if not isinstance(scope, str) or not isinstance(roles, list):
            raise _invalid("The token's scope or roles are malformed.")
        return Principal(
            subject=claims["sub"],
            scopes=frozenset(scope.split()),
            roles=frozenset(str(role) for role in roles),
            client_id=claims["client_id"],
            token_id=claims["jti"],
            expires_at=exp,
        )


MAX_NUMERIC_DATE = 253_402_300_799
"""9999-12-31T23:59:59Z: the last second any date Archway handles can name."""


def _numeric_date(claims: Mapping[str, Any], name: str) -> int:
    """A JWT NumericDate (RFC 7519 section 2) as Archway issues it: a whole number of seconds
    from 0 to :data:`MAX_NUMERIC_DATE`. JSON's other numbers (``1e400`` is infinity, ``NaN``
    compares false with everything, so an ``exp`` of either would never expire), booleans
    (``True`` is an ``int`` to Python), strings and fractions are refused as malformed."""
    value = claims[name]
    if type(value) is not int or not 0 <= value <= MAX_NUMERIC_DATE:
        raise _invalid(f"The token's '{name}' claim is not a NumericDate.")
    return value


def _invalid(detail: str) -> Unauthenticated:
    return Unauthenticated(detail, error="invalid_token")


def _unverified_header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise _invalid("The token is not a signed JWT.")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise _invalid("The token's header is unreadable.") from exc
    if not isinstance(header, dict):
        raise _invalid("The token's header is unreadable.")
    return header


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header; ``None`` when there is no header."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated(
            "Send the access token as 'Authorization: Bearer <token>'.", error="invalid_request"
        )
    return token


"""The token endpoint's rate limit: each ``POST /oauth/token`` is counted once, against the
client that authenticated with its secret, else against the request's address.

The edge's limiter (``kernel/http/rate_limits.py``) counts a request before any work, by what
it can see then: a bearer token or the address. A token request carries neither: its client
authenticates in the ``Authorization: Basic`` header or in the form, which only Authlib checks.
So the edge passes this route through uncounted, and it is counted here:

- when Authlib has authenticated the client with a secret (``client_secret_basic`` or
  ``client_secret_post``), before any token is made: against ``sub:<client id>`` in the
  ``auth`` route class of the client's plan (``default``, or ``partner`` when listed), the
  consumer its own tokens are counted as. A claimed client id whose secret did not verify
  never touches that budget, so no one can spend a client's quota without its secret;
- otherwise as the edge would have counted it, by the caller it identified (the address:
  ``ip:<address>`` in the ``anonymous`` plan's ``auth`` class, as before). A public client
  authenticates by ``client_id`` alone (``none``), which anyone can send; a request whose
  client did not authenticate (a wrong secret, an unknown client, no credentials, a malformed
  request) is counted once Authlib has answered it. Its work, a cached client lookup and one
  SHA-256, is done either way; past the quota the answer is the 429, not Authlib's.

Authlib authenticates the client once; this reads who it was (``after_authenticate_client``).
"""

from __future__ import annotations

from archway.kernel.errors import RateLimited
from archway.kernel.http.caller import Caller
from archway.kernel.ratelimit.limiter import Decision, RateLimiter
from archway.kernel.ratelimit.policy import RouteClass

SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


class TokenRequestRefused(RateLimited):
    """A token request over its consumer's quota: raised through Authlib's core (it is no
    OAuth 2.0 error) and answered 429 by the route, with the decision's headers."""

    def __init__(self, decision: Decision) -> None:
        refusal = decision.refusal()
        super().__init__(refusal.detail, retry_after=refusal.retry_after)
        self.decision = decision


class TokenRequestCount:
    """One token request's count: :meth:`authenticated` when Authlib says who the client is,
    :meth:`unauthenticated` after the answer if it never did. ``limiter`` ``None``: limits off,
    nothing is counted."""

    def __init__(self, limiter: RateLimiter | None, caller: Caller | None) -> None:
        self._limiter = limiter
        self._caller = caller
        self.decision: Decision | None = None
        self.counted = limiter is None

    async def authenticated(self, client_id: str, method: str) -> None:
        """Count against the client if it proved a secret, else against the address; raise
        :class:`TokenRequestRefused` past the quota."""
        if self.counted or self._limiter is None:
            return
        self.counted = True
        if method in SECRET_METHODS:
            plan = self._limiter.plans.plan_of(client_id, client_id)
            decision = await self._limiter.hit(
                plan, RouteClass.AUTH, Caller("token", client_id, client_id).key)
        else:
            decision = await self._by_address()
        self.decision = decision
        if decision is not None and not decision.allowed:
            raise TokenRequestRefused(decision)

    async def unauthenticated(self) -> Decision | None:
        """Count a request whose client never authenticated as the edge would (once)."""
        if self.counted or self._limiter is None:
            return self.decision
        self.counted = True
        self.decision = await self._by_address()
        return self.decision

    async def _by_address(self) -> Decision | None:
        limiter, caller = self._limiter, self._caller or Caller("address", "unknown")
        assert limiter is not None
        plan = limiter.plans.plan_of(
            caller.subject if caller.kind != "address" else None, caller.client_id,
            key_plan=caller.plan)
        return await limiter.hit(plan, RouteClass.AUTH, caller.key)

"""CORS by allow-list: Starlette's middleware, held to exact origins and problem+json refusals.

Archway's callers authenticate with a bearer token, never a cookie, so no answer allows
credentials, and the origins are an exact list (``ARCHWAY_CORS_ALLOW_ORIGINS``): no ``*``, no
pattern. An allowed origin is echoed with ``Vary: Origin`` on every answer (Starlette adds it
to the answers for other origins too, so a shared cache never serves one origin's answer to
another). A preflight the list refuses (origin, method or header) is a 403 problem with no
``Access-Control-Allow-Origin``, instead of Starlette's plain-text 400.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from archway.kernel.http.problems import problem_response


class AllowListCors(CORSMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Sequence[str],
        allow_methods: Sequence[str],
        allow_headers: Sequence[str],
        expose_headers: Sequence[str],
    ) -> None:
        if not allow_origins or any("*" in origin for origin in allow_origins):
            raise ValueError("CORS origins are an exact allow-list: no '*'")
        super().__init__(
            app, allow_origins=allow_origins, allow_methods=allow_methods,
            allow_headers=allow_headers, expose_headers=expose_headers, allow_credentials=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                answer = self.preflight_response(request_headers=headers)
                if answer.status_code != 200:
                    refused = bytes(answer.body).decode().removeprefix("Disallowed CORS ")
                    answer = problem_response(
                        scope, 403, detail=f"This cross-origin request is not allowed: {refused}.",
                        headers={"vary": answer.headers["vary"]})
                await answer(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

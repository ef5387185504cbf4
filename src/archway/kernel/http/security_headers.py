"""The security headers every answer carries, and the Content-Security-Policy of each kind.

The HTTP policies (:mod:`.policies`) add them to every response of every path, the fast lane's,
problems, 304s and CORS preflights included, as raw header pairs built once here. An answer
that sets no ``Content-Security-Policy`` of its own gets the API's (``default-src 'none'``):
JSON needs no script, style or frame, so a response a browser is tricked into rendering can run
nothing. An HTML page states its own policy, built with :func:`page_policy` from the hashes of
its inline script and style (:func:`source_hash`), so no inline code but its own can run.

HSTS is only worth sending over HTTPS (browsers ignore it on plain HTTP, RFC 6797 section 8.1):
it goes on answers to ``https`` requests, and on every answer when the process is told it is
served over HTTPS by a proxy that terminates TLS (``ARCHWAY_HSTS``).
"""

from __future__ import annotations

import base64
import hashlib

RawHeader = tuple[bytes, bytes]

ALWAYS: tuple[RawHeader, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS: RawHeader = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
API_CSP: RawHeader = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def source_hash(text: str) -> str:
    """The CSP source expression that allows exactly this inline ``<script>`` or ``<style>``
    body (CSP Level 3 hash source, over its UTF-8 bytes)."""
    digest = hashlib.sha256(text.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def page_policy(
    *,
    scripts: tuple[str, ...] = (),
    styles: tuple[str, ...] = (),
    inline_styles: bool = False,
    connect: tuple[str, ...] = (),
    extra: str = "",
) -> str:
    """An HTML page's policy: its own origin's assets, its inline ``scripts`` and ``styles``
    by hash (``inline_styles`` allows any inline style, for UI libraries that inject their
    own), requests to its origin and to ``connect``, no plugins, no ``<base>``, never framed.
    ``extra`` adds directives."""
    script_src = " ".join(("'self'", *scripts))
    style_src = " ".join(("'self'", *(("'unsafe-inline'",) if inline_styles else ()), *styles))
    connect_src = " ".join(("'self'", *connect))
    directives = [
        "default-src 'self'", f"script-src {script_src}", f"style-src {style_src}",
        "img-src 'self' data: blob:", "font-src 'self' data:", f"connect-src {connect_src}",
        "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
    ]
    if extra:
        directives.append(extra)
    return "; ".join(directives)

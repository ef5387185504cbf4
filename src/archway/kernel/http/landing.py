"""``GET /``: where a newcomer lands. HTML for a browser, JSON for an API client (the default).

It lists every public URL of the process and, only when the process was told to show them
(``ARCHWAY_SHOW_DEMO_ACCOUNTS``, which ``archway dev`` sets), the seeded demo accounts.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from archway.kernel.http.responses import JsonResponse
from archway.kernel.http.security_headers import page_policy, source_hash

DOCS_RELS = ("swagger-ui", "redoc")  # the links the page puts first, as "the docs"


@dataclass(frozen=True, slots=True)
class Link:
    rel: str  # a stable machine name, e.g. "swagger-ui"
    title: str  # what a person reads, e.g. "Swagger UI"
    href: str  # a path on this process


@dataclass(frozen=True, slots=True)
class DemoAccount:
    role: str
    email: str
    password: str


def prefers_html(accept: str | None) -> bool:
    """True when ``Accept`` names ``text/html`` and ranks it at least as high as JSON.

    ``*/*`` alone (curl, httpx, most API clients) is JSON; browsers name ``text/html`` first.
    """
    html_q = json_q = 0.0
    for part in (accept or "").split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = max(0.0, min(1.0, float(value)))
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media == "text/html":
            html_q = max(html_q, quality)
        elif media in ("application/json", "application/*", "*/*"):
            json_q = max(json_q, quality)
    return html_q > 0 and html_q >= json_q


def build_landing_router(
    title: str, links: Sequence[Link], demo_accounts: Sequence[DemoAccount], token_hint: str
) -> APIRouter:
    """The landing route; ``demo_accounts`` empty means none are shown (and no token hint)."""
    body: dict[str, object] = {
        "name": title, "links": [{"rel": x.rel, "title": x.title, "href": x.href} for x in links]}
    if demo_accounts:
        body["demo_accounts"] = [
            {"role": a.role, "email": a.email, "password": a.password} for a in demo_accounts]
        body["token_command"] = token_hint
    page = _render_html(title, links, demo_accounts, token_hint)
    headers = {"vary": "Accept", "cache-control": "no-cache"}
    # The page runs no script; its one inline style is allowed by its hash.
    html_headers = {**headers, "content-security-policy": page_policy(styles=(
        source_hash(_STYLE),))}
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def landing(request: Request) -> Response:
        if prefers_html(request.headers.get("accept")):
            return HTMLResponse(page, headers=html_headers)
        return JsonResponse(body, headers=headers)

    return router


_STYLE = """body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}
td,th{text-align:left;padding:.2rem .8rem .2rem 0}"""


def _render_html(
    title: str, links: Sequence[Link], demo_accounts: Sequence[DemoAccount], token_hint: str
) -> str:
    e = html.escape
    docs = " · ".join(
        f'<a href="{e(x.href)}">{e(x.title)}</a>' for x in links if x.rel in DOCS_RELS)
    items = "\n".join(
        f'<li><a href="{e(x.href)}">{e(x.title)}</a> <code>{e(x.href)}</code></li>' for x in links)
    accounts = ""
    if demo_accounts:
        rows = "\n".join(
            f"<tr><td>{e(a.role)}</td><td><code>{e(a.email)}</code></td>"
            f"<td><code>{e(a.password)}</code></td></tr>" for a in demo_accounts)
        accounts = f"""<h2>Demo accounts</h2>
<table><tr><th>role</th><th>email</th><th>password</th></tr>
{rows}
</table>
<p>A token for curl: <code>{e(token_hint)}</code></p>
"""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{e(title)}</h1>
<p>Interactive docs: {docs}.</p>
<h2>URLs</h2>
<ul>
{items}
</ul>
{accounts}</body>
</html>
"""

"""HTML for the interactive API docs: Swagger UI with a version switcher, and ReDoc.

FastAPI's ``get_swagger_ui_html`` serves one spec in the base layout; Archway serves
every API version from one page, which needs Swagger UI's ``StandaloneLayout`` (its top
bar lists ``urls``). Their assets are Archway's own (:mod:`docs_assets`): the pages reference
no other host, so they work with no internet access.
"""

import html
import json
import re
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse

from archway.kernel.http.docs_assets import (
    GRAPHIQL,
    REACT,
    REACT_DOM,
    REDOC,
    SWAGGER_UI,
    asset_url,
    build_docs_assets_router,
)
from archway.kernel.http.security_headers import page_policy, source_hash

SWAGGER_UI_CSS = asset_url(SWAGGER_UI, "swagger-ui.css")
SWAGGER_UI_BUNDLE = asset_url(SWAGGER_UI, "swagger-ui-bundle.js")
SWAGGER_UI_PRESET = asset_url(SWAGGER_UI, "swagger-ui-standalone-preset.js")
REDOC_JS = asset_url(REDOC, "redoc.standalone.js")


def _js(value: object) -> str:
    """JSON that is also safe inside ``<script>``: no ``</script>`` or ``<!--`` can form."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def swagger_ui_html(
    title: str,
    specs: list[tuple[str, str]],
    oauth2_redirect_url: str | None,
    client_id: str | None,
) -> str:
    """Swagger UI over ``specs`` (name, url), first one shown; PKCE login when ``client_id``."""
    config = {
        "urls": [{"name": name, "url": url} for name, url in specs],
        "dom_id": "#swagger-ui",
        "layout": "StandaloneLayout",
        "deepLinking": True,
        "persistAuthorization": True,
        "validatorUrl": None,  # the default badge asks validator.swagger.io about every spec
    }
    redirect = ""
    if oauth2_redirect_url is not None:  # the authorization server needs an absolute URI
        absolute = f"new URL({_js(oauth2_redirect_url)}, window.location.href).href"
        redirect = f"oauth2RedirectUrl: {absolute},"
    oauth = {"clientId": client_id, "usePkceWithAuthorizationCodeGrant": True}
    init_oauth = "" if client_id is None else f"ui.initOAuth({_js(oauth)});"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{SWAGGER_UI_CSS}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{SWAGGER_UI_BUNDLE}"></script>
<script src="{SWAGGER_UI_PRESET}"></script>
<script>
const ui = SwaggerUIBundle({{
  ...{_js(config)},
  {redirect}
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl],
}});
{init_oauth}
</script>
</body>
</html>
"""


def swagger_oauth2_redirect_html() -> str:
    """The page the authorization server redirects back to; it hands the code to Swagger UI."""
    return bytes(get_swagger_ui_oauth2_redirect_html().body).decode()


def redoc_html(title: str, spec_url: str) -> str:
    """ReDoc, read-only reference docs for one spec."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
</head>
<body>
<redoc spec-url="{html.escape(spec_url)}"></redoc>
<script src="{REDOC_JS}"></script>
</body>
</html>
"""


def graphiql_html(title: str, endpoint: str) -> str:
    """GraphiQL over ``endpoint`` (its Headers tab takes ``Authorization: Bearer …``), from
    Archway's own copies of GraphiQL and React."""
    react = asset_url(REACT, "react.production.min.js")
    react_dom = asset_url(REACT_DOM, "react-dom.production.min.js")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{asset_url(GRAPHIQL, "graphiql.min.css")}">
<style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{react}"></script>
<script src="{react_dom}"></script>
<script src="{asset_url(GRAPHIQL, "graphiql.min.js")}"></script>
<script>
const fetcher = GraphiQL.createFetcher({{
  url: new URL({_js(endpoint)}, window.location.href).href,
}});
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {{
    fetcher,
    isHeadersEditorEnabled: true,
    defaultQuery: {_js(GRAPHIQL_DEFAULT_QUERY)},
  }}),
);
</script>
</body>
</html>
"""


GRAPHIQL_DEFAULT_QUERY = """# Archway's GraphQL API. A bearer token goes in the Headers tab:
# {"Authorization": "Bearer <token>"} (`archway token --user … --scope …`).
{
  products(first: 5) {
    edges { node { id sku name price { amount currency } available } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def page_headers(page: str, *, connect: tuple[str, ...] = (), extra: str = "") -> dict[str, str]:
    """The Content-Security-Policy of one docs page: its own inline scripts by hash and
    Archway's vendored assets only. Images and fonts come from this origin (ReDoc's sidebar
    would otherwise fetch its vendor's logo from a CDN: the page needs no internet, and tells
    no third party who reads the docs). Both UIs inject their own styles, so inline styles
    are allowed; inline scripts are not, but for the page's own. ``connect`` names the
    origins besides this one the page may call (Swagger UI's token request)."""
    scripts = tuple(source_hash(body) for body in _INLINE_SCRIPT.findall(page))
    return {"content-security-policy": page_policy(
        scripts=scripts, inline_styles=True, connect=connect, extra=extra)}


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else None


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_REDOC_WORKERS = "worker-src 'self' blob:"  # ReDoc's search runs in a worker made from a blob


def build_docs_router(
    title: str,
    specs: list[tuple[str, str]],
    *,
    redoc_spec: str,
    client_id: str | None,
    issuer: str | None = None,
) -> APIRouter:
    """``/docs`` (Swagger UI over ``specs``), its OAuth redirect page, ``/redoc`` and their
    assets. The pages are rendered once; none is an API operation. Swagger UI may call the
    token issuer's origin, which need not be the one a reader opened the page at."""
    swagger = swagger_ui_html(title, specs, "/docs/oauth2-redirect", client_id)
    redirect = swagger_oauth2_redirect_html()
    redoc = redoc_html(title, redoc_spec)
    origin = _origin(issuer) if issuer else None
    swagger_headers = page_headers(swagger, connect=(origin,) if origin else ())
    redirect_headers = page_headers(redirect)
    redoc_headers = page_headers(redoc, extra=_REDOC_WORKERS)
    router = build_docs_assets_router()

    @router.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger, headers=swagger_headers)

    @router.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return HTMLResponse(redirect, headers=redirect_headers)

    @router.get("/redoc", include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc, headers=redoc_headers)

    return router

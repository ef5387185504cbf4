"""HTML for the interactive API docs: Swagger UI with a version switcher, and ReDoc.

FastAPI's ``get_swagger_ui_html`` serves one spec in the base layout; Archway serves
every API version from one page, which needs Swagger UI's ``StandaloneLayout`` (its top
bar lists ``urls``). Assets come from jsDelivr, pinned to a major version.
"""

import html
import json

from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html

SWAGGER_UI_DIST = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"
REDOC_JS = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"


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
<link rel="stylesheet" href="{SWAGGER_UI_DIST}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{SWAGGER_UI_DIST}/swagger-ui-bundle.js"></script>
<script src="{SWAGGER_UI_DIST}/swagger-ui-standalone-preset.js"></script>
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

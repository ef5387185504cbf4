"""The docs pages: right assets, version switcher, PKCE only with a client id, escaping."""

import json
import re

from archway.kernel.http.docs_pages import (
    redoc_html,
    swagger_oauth2_redirect_html,
    swagger_ui_html,
)

SPECS = [("v1", "/api/v1/openapi.json"), ("v2", "/api/v2/openapi.json")]
HOSTILE = '</title><script>alert("x")</script>&'


def inline_script(page: str) -> str:
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    return script


def test_swagger_ui_loads_the_vendored_swagger_ui_dist_5() -> None:
    page = swagger_ui_html("Archway", SPECS, None, None)
    dist = "/docs/assets/swagger-ui-dist-5."
    for asset in ("/swagger-ui.css", "/swagger-ui-bundle.js", "/swagger-ui-standalone-preset.js"):
        (url,) = re.findall(rf'"({re.escape(dist)}[0-9.]+{re.escape(asset)})"', page)
        assert url


def test_swagger_ui_asks_no_external_validator() -> None:
    assert '"validatorUrl": null' in swagger_ui_html("Archway", SPECS, None, None)


def test_swagger_ui_offers_every_spec_in_the_standalone_layout() -> None:
    page = swagger_ui_html("Archway", SPECS, None, None)
    assert json.dumps([{"name": n, "url": u} for n, u in SPECS]) in page
    assert '"layout": "StandaloneLayout"' in page
    assert "SwaggerUIStandalonePreset" in page
    assert '"persistAuthorization": true' in page


def test_swagger_ui_uses_pkce_when_given_a_client_id() -> None:
    page = swagger_ui_html("Archway", SPECS, "/docs/oauth2-redirect", "archway-docs")
    assert (
        'ui.initOAuth({"clientId": "archway-docs", "usePkceWithAuthorizationCodeGrant": true})'
        in page
    )
    assert 'oauth2RedirectUrl: new URL("/docs/oauth2-redirect", window.location.href).href' in page


def test_swagger_ui_without_client_id_does_not_init_oauth() -> None:
    page = swagger_ui_html("Archway", SPECS, None, None)
    assert "initOAuth" not in page
    assert "usePkceWithAuthorizationCodeGrant" not in page
    assert "oauth2RedirectUrl" not in page


def test_swagger_ui_escapes_hostile_values() -> None:
    page = swagger_ui_html(HOSTILE, [(HOSTILE, "/x</script>")], HOSTILE, HOSTILE)
    assert (
        "<title>&lt;/title&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;</title>"
        in page
    )
    script = inline_script(page)  # exactly one inline script: nothing broke out of it
    assert "<" not in script and ">" not in script
    assert page.count("<script") == 3  # the two assets and the inline script


def test_oauth2_redirect_page_hands_the_result_back_to_swagger_ui() -> None:
    page = swagger_oauth2_redirect_html()
    assert "window.opener.swaggerUIRedirectOauth2" in page
    assert page.lstrip().startswith("<!doctype html>")


def test_redoc_loads_the_vendored_standalone_bundle_with_the_spec_url() -> None:
    page = redoc_html("Archway", "/api/v1/openapi.json")
    assert '<redoc spec-url="/api/v1/openapi.json"></redoc>' in page
    assert re.search(r'<script src="/docs/assets/redoc-2\.[0-9.]+/redoc\.standalone\.js">', page)


def test_redoc_escapes_hostile_values() -> None:
    page = redoc_html(HOSTILE, '/spec.json" onload="alert(1)')
    assert "<title>&lt;/title&gt;" in page
    assert '<redoc spec-url="/spec.json&quot; onload=&quot;alert(1)"></redoc>' in page
    assert page.count("<script") == 1

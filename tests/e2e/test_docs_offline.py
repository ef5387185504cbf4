"""The docs pages in a real browser, against a real server, with every other host unreachable.

Chromium (Debian's ``chromium`` and ``chromium-driver``; ``.ci/run`` installs them) resolves no
name but 127.0.0.1 and sends anything not on loopback to a closed proxy port, and every request
a page made is read back from its network log: a page that needed the internet would either
stay blank or show a request to another host.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.conftest import RunningServer, free_port

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
RENDER_SECONDS = 60


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: .ci/run installs them")
        pytest.skip("apt-get install chromium chromium-driver to run the browser tests")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        "--disable-background-networking", "--no-first-run", "--window-size=1280,1024",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--proxy-server=http://127.0.0.1:{free_port()}",  # nothing listens there
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: WebDriver) -> list[str]:
    """Every URL the page sent a request to since the last call (the log drains on read);
    one its Content-Security-Policy stopped in the browser never left it."""
    urls: dict[str, str] = {}
    stopped = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason") == "csp":
            stopped.add(params["requestId"])
    return [url for request, url in urls.items() if request not in stopped]


def assert_no_policy_violation(driver: WebDriver) -> None:
    """Nothing the page needed was stopped by its Content-Security-Policy: each stop is a
    console message (an inline script without its hash, an eval, a blob worker). Images from
    other hosts are stopped on purpose (ReDoc's vendor logo): the page works without them."""
    stopped = [e["message"] for e in driver.get_log("browser")
               if "Content Security Policy" in e["message"]
               and "directive: \"img-src " not in e["message"]]
    assert not stopped, stopped


def assert_only_loopback(urls: list[str], server: RunningServer) -> None:
    ours = urlsplit(server.base_url).netloc
    elsewhere = [u for u in urls if urlsplit(u).scheme not in ("data", "blob")
                 and urlsplit(u).netloc != ours]
    assert not elsewhere, elsewhere
    assert urls  # the log works: the page itself is in it


def wait_for(driver: WebDriver, css: str, at_least: int = 1) -> list[WebElement]:
    def found(d: WebDriver) -> list[WebElement] | None:
        elements = d.find_elements(By.CSS_SELECTOR, css)
        return elements if len(elements) >= at_least else None

    return WebDriverWait(driver, RENDER_SECONDS).until(found)


def test_swagger_ui_renders_every_version_offline(
    browser: WebDriver, server: RunningServer
) -> None:
    requested_urls(browser)
    browser.get(server.base_url + "/docs")
    operations = wait_for(browser, ".opblock .opblock-summary-path", at_least=10)
    paths = {op.get_attribute("data-path") for op in operations}
    assert "/api/v2/products" in paths and "/api/v2/orders" in paths
    (switcher,) = wait_for(browser, ".topbar select")
    versions = Select(switcher)
    assert [o.text for o in versions.options] == ["v2", "v1"]
    versions.select_by_visible_text("v1")
    wait_for(browser, '.opblock-summary-path[data-path="/api/v1/products"]')
    assert wait_for(browser, ".btn.authorize")  # the Authorize button of the security scheme
    assert_only_loopback(requested_urls(browser), server)
    assert_no_policy_violation(browser)


def test_the_oauth2_redirect_page_loads_offline(browser: WebDriver, server: RunningServer) -> None:
    requested_urls(browser)
    browser.get(server.base_url + "/docs/oauth2-redirect")
    assert "swaggerUIRedirectOauth2" in browser.page_source
    assert_only_loopback(requested_urls(browser), server)
    assert_no_policy_violation(browser)


def test_redoc_renders_offline(browser: WebDriver, server: RunningServer) -> None:
    requested_urls(browser)
    browser.get(server.base_url + "/redoc")
    (title,) = wait_for(browser, ".api-info h1")
    assert title.text.startswith("Archway")
    assert wait_for(browser, "[data-section-id^='operation/']", at_least=10)
    assert_only_loopback(requested_urls(browser), server)
    assert_no_policy_violation(browser)


def test_the_landing_page_renders_under_its_policy(
    browser: WebDriver, server: RunningServer
) -> None:
    browser.get_log("browser")  # drain what earlier pages logged
    browser.get(server.base_url + "/")
    (heading,) = wait_for(browser, "h1")
    assert heading.text.startswith("Archway")
    margin = browser.execute_script(
        "return getComputedStyle(document.body).maxWidth")  # its inline style applied
    assert margin != "none"
    assert_no_policy_violation(browser)


def test_graphiql_runs_a_query_offline(browser: WebDriver, server: RunningServer) -> None:
    requested_urls(browser)
    browser.get(server.base_url + "/graphql")
    wait_for(browser, ".graphiql-container")
    (run,) = wait_for(browser, ".graphiql-execute-button")
    run.click()
    # The default query lists the seeded products: Archway's answer shows in the response
    # pane (its editor draws only the lines in view: the first ones).
    WebDriverWait(browser, RENDER_SECONDS).until(
        lambda d: '"sku"' in d.find_element(By.CSS_SELECTOR, ".graphiql-response").text)
    assert_only_loopback(requested_urls(browser), server)
    assert_no_policy_violation(browser)

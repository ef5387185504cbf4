"""Swagger UI's Authorize at /docs signs a user in with the seeded public client `archway-docs`:
authorization code with PKCE (S256), through the login page, in a real browser against a real
server (the browser and server of test_docs_offline.py); then "Try it out" on
``GET /api/v2/users/me`` sends the token Swagger UI got and shows the 200 it was answered."""

from __future__ import annotations

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import RunningServer
from tests.e2e.test_docs_offline import RENDER_SECONDS, wait_for
from tests.e2e.test_docs_offline import browser as browser  # the module's fixture, shared


def test_swagger_ui_authorizes_with_the_code_flow_and_pkce(
    browser: WebDriver, server: RunningServer
) -> None:
    browser.get(server.base_url + "/docs")
    wait_for(browser, ".btn.authorize")[0].click()
    (code_flow,) = [
        block for block in wait_for(browser, ".modal-ux .auth-container", at_least=2)
        if "authorizationCode" in block.text]
    client_id = code_flow.find_element(By.CSS_SELECTOR, "#client_id_authorizationCode")
    assert client_id.get_attribute("value") == "archway-docs"  # the docs pages' initOAuth
    code_flow.find_element(
        By.CSS_SELECTOR, "label[for='profile-authorizationCode-checkbox-OAuth2']").click()
    docs = browser.current_window_handle
    code_flow.find_element(By.CSS_SELECTOR, "button.authorize").click()
    WebDriverWait(browser, RENDER_SECONDS).until(lambda d: len(d.window_handles) == 2)
    browser.switch_to.window(next(h for h in browser.window_handles if h != docs))
    wait_for(browser, "input[name=email]")[0].send_keys("alice@archway.test")
    browser.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys("archway-alice")
    assert "Archway API docs" in browser.page_source  # who asks, on the consent page
    browser.find_element(By.CSS_SELECTOR, "button[value=allow]").click()
    WebDriverWait(browser, RENDER_SECONDS).until(lambda d: len(d.window_handles) == 1)
    browser.switch_to.window(docs)
    logout = WebDriverWait(browser, RENDER_SECONDS).until(lambda d: [
        b for b in d.find_elements(By.CSS_SELECTOR, ".modal-ux button.auth")
        if b.text == "Logout"])
    assert logout  # Swagger UI holds a token: the code was exchanged with its verifier

    browser.find_element(By.CSS_SELECTOR, ".modal-ux button.btn-done").click()
    summary = wait_for(
        browser, '.opblock-get .opblock-summary-path[data-path="/api/v2/users/me"]')[0]
    summary.click()
    operation = summary.find_element(By.XPATH, "ancestor::div[contains(@class, 'opblock ')]")
    sent_requests(browser)
    wait_for_in(operation, "button.try-out__btn")[0].click()
    wait_for_in(operation, "button.execute")[0].click()
    status = WebDriverWait(browser, RENDER_SECONDS).until(lambda d: [
        cell.text for cell in operation.find_elements(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_status")
        if cell.text.strip()])
    assert status == ["200"], status
    body = operation.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight").text
    assert json.loads(body)["email"] == "alice@archway.test"
    curl = operation.find_element(By.CSS_SELECTOR, ".curl-command").text
    assert "Authorization: Bearer ey" in curl  # what Swagger UI says it sent …
    (sent,) = [headers for url, headers in sent_requests(browser)
               if url == server.base_url + "/api/v2/users/me"]
    authorization = {k.lower(): v for k, v in sent.items()}["authorization"]
    assert authorization.startswith("Bearer ey") and authorization.split()[1] in curl  # … is so


def sent_requests(driver: WebDriver) -> list[tuple[str, dict[str, str]]]:
    """The URL and headers of every request the page sent since the last call."""
    sent = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            sent.append((request["url"], request["headers"]))
    return sent


def wait_for_in(element: WebElement, css: str) -> list[WebElement]:
    return WebDriverWait(element, RENDER_SECONDS).until(
        lambda e: e.find_elements(By.CSS_SELECTOR, css) or None)

"""REST v2 over httpx, as any HTTP client calls it; each answer in the neutral shapes.

REST has no push channel for an order (no SSE, no long poll): a watch polls ``GET
/orders/{id}`` (bounded in time) and reports each new state until the order is final.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from tests.contract.parity.neutral import (
    FINAL,
    LINE_KEYS,
    ORDER_KEYS,
    PRODUCT_KEYS,
    STOCK_KEYS,
    USER_KEYS,
    Json,
    Page,
    Refusal,
    Refused,
    checked,
    moment,
    pointer_path,
)

KIND_BY_STATUS = {
    400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict",
    412: "precondition_failed", 422: "invalid", 429: "rate_limited",
}
WATCH_SECONDS = 15.0


def refusal(answer: httpx.Response) -> Refusal:
    """A problem+json answer in neutral terms; anything else is a failure of the test."""
    assert answer.status_code in KIND_BY_STATUS, (answer.status_code, answer.text)
    assert answer.headers["content-type"] == "application/problem+json", answer.headers
    problem = answer.json()
    assert problem["status"] == answer.status_code
    if answer.status_code == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")
    retry_after = answer.headers.get("retry-after")
    return Refusal(
        frozenset({KIND_BY_STATUS[answer.status_code]}),
        frozenset(pointer_path(error["pointer"]) for error in problem.get("errors", [])),
        problem["detail"], int(retry_after) if retry_after is not None else None)


def _times(shape: Json, *names: str) -> Json:
    return {**shape, **{name: moment(shape[name]) for name in names}}


def product(body: Json) -> Json:
    return checked(_times(body, "created_at", "updated_at"), PRODUCT_KEYS)


def user(body: Json) -> Json:
    return checked(_times(body, "created_at", "updated_at"), USER_KEYS)


def order(body: Json) -> Json:
    for line in body["lines"]:
        checked(line, LINE_KEYS)
    return checked(_times(body, "placed_at", "updated_at"), ORDER_KEYS)


class RestApi:
    name = "rest"

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._consistency: dict[str, str] = {}  # order id → its last command's token

    async def _call(self, method: str, path: str, token: str | None, expect: int = 200,
                    **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        answer = await self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
        if answer.status_code >= 400:
            raise Refused(refusal(answer))
        assert answer.status_code == expect, (answer.status_code, answer.text)
        return answer

    async def get_product(self, product_id: str, token: str | None = None) -> Json:
        return product((await self._call("GET", f"/products/{product_id}", token)).json())

    async def list_products(self, limit: int, cursor: str | None = None, *, q: str | None = None,
                            token: str | None = None) -> Page:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {}),
                  **({"q": q} if q else {})}
        body = (await self._call("GET", "/products", token, params=params)).json()
        return Page([product(item) for item in body["data"]], body["next_cursor"])

    async def create_product(self, token: str | None, draft: Json) -> Json:
        answer = await self._call("POST", "/products", token, 201, json=draft)
        made = product(answer.json())
        assert answer.headers["location"] == f"/api/v2/products/{made['id']}"
        return made

    async def update_product(self, token: str | None, product_id: str, changes: Json) -> Json:
        return product((await self._call(
            "PATCH", f"/products/{product_id}", token, json=changes)).json())

    async def version_of(self, product_id: str, token: str | None) -> object:
        return (await self._call("GET", f"/products/{product_id}", token)).headers["etag"]

    async def set_stock(self, token: str | None, product_id: str, on_hand: int,
                        version: object = None) -> Json:
        headers = {"If-Match": str(version)} if version is not None else {}
        answer = await self._call("PUT", f"/products/{product_id}/stock", token,
                                  json={"on_hand": on_hand}, headers=headers)
        return checked(answer.json(), STOCK_KEYS)

    async def me(self, token: str | None) -> Json:
        return user((await self._call("GET", "/users/me", token)).json())

    async def get_user(self, token: str | None, user_id: str) -> Json:
        return user((await self._call("GET", f"/users/{user_id}", token)).json())

    async def get_order(self, token: str | None, order_id: str) -> Json:
        consistency = self._consistency.get(order_id)
        headers = {"Consistency-Token": consistency} if consistency else {}
        return order((await self._call(
            "GET", f"/orders/{order_id}", token, headers=headers)).json())

    async def list_orders(self, token: str | None, limit: int,
                          cursor: str | None = None) -> Page:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = (await self._call("GET", "/orders", token, params=params)).json()
        return Page([order(item) for item in body["data"]], body["next_cursor"])

    async def _command(self, path: str, token: str | None, **kwargs: Any) -> Json:
        answer = await self._call("POST", path, token, 202, **kwargs)
        done = order(answer.json())
        assert answer.headers["location"] == f"/api/v2/orders/{done['id']}"
        self._consistency[done["id"]] = answer.headers["consistency-token"]
        return done

    async def place_order(self, token: str | None, lines: list[tuple[str, int]]) -> Json:
        return await self._command("/orders", token, json={"lines": [
            {"product_id": product_id, "quantity": quantity} for product_id, quantity in lines]})

    async def cancel_order(self, token: str | None, order_id: str) -> Json:
        return await self._command(f"/orders/{order_id}/cancel", token)

    async def watch_order(self, token: str | None, order_id: str) -> AsyncGenerator[Json, None]:
        deadline = time.monotonic() + WATCH_SECONDS
        last: Json | None = None
        while last is None or last["status"] not in FINAL:
            state = await self.get_order(token, order_id)
            if last is None or state["status"] != last["status"]:
                last = state
                yield state
            elif time.monotonic() > deadline:
                raise AssertionError(f"order {order_id} not final in {WATCH_SECONDS} s: {last}")
            else:
                await asyncio.sleep(0.05)

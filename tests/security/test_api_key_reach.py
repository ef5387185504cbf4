"""What an API key reaches, route by route from the OpenAPI documents: the operations that
declare the ``ApiKey`` scheme are machine consumers' (only machine scopes, no admin role, no
owner), and on every other guarded operation a valid key is a 403, a route added tomorrow
included. :data:`KEY_ROUTES` lists the former: a new one fails the test until it is written
down here."""

from __future__ import annotations

import httpx

from archway.identity.domain import MACHINE_SCOPES
from archway.kernel.http.guard import ACCESS_EXTENSION
from archway.kernel.ids import new_id
from archway.topologies.monolith import Monolith
from tests.security.operations import operations

KEY_ROUTES = {("GET", "/reports/top-products")}


async def test_only_machine_routes_accept_a_key(client: httpx.AsyncClient) -> None:
    found = await operations(client)
    accepting = [op for op in found if op.accepts_api_key]
    assert {(op.method, op.template) for op in accepting} == KEY_ROUTES
    for op in accepting:
        assert op.scopes <= MACHINE_SCOPES, str(op)
        assert ACCESS_EXTENSION not in op.spec, str(op)  # no admin role, no owner
    document = (await client.get("/openapi/v1.json")).json()
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": document["components"]["securitySchemes"]["ApiKey"]["description"]}


async def test_a_valid_key_is_refused_on_every_other_guarded_operation(
    client: httpx.AsyncClient, graph: Monolith, accounts: dict[str, str],
) -> None:
    _, value = await graph.api_keys.create("Mallory's scraper", "partner",
                                           frozenset(MACHINE_SCOPES))
    key = {"X-API-Key": value}
    someone = accounts["alice@archway.test"]
    guarded = [op for op in await operations(client)
               if op.spec.get("security") and {} not in op.spec["security"]
               and not op.accepts_api_key]
    assert len(guarded) > 20
    for op in guarded:
        path = op.path.format(user_id=someone, customer_id=someone, order_id=new_id(),
                              product_id=new_id(), client_id="archway-demo", key_id=new_id())
        answer = await client.request(
            op.method, path, json={} if op.has_body else None, headers=key)
        assert answer.status_code == 403, (str(op), answer.text)
        assert answer.json()["detail"] == ("This route does not accept API keys: it needs an "
                                           "access token.")
    for version in (1, 2):
        served = await client.get(f"/api/v{version}/reports/top-products", headers=key)
        assert served.status_code == 200, served.text
    await graph.api_keys.settle()

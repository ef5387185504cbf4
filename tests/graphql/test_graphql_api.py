"""GraphQL at /graphql: the contract's queries and mutations over the same services as REST,
with the same authorization rules, Relay connections and errors with stable codes."""

from __future__ import annotations

import httpx

from archway.topologies.monolith import Monolith
from tests.conftest import ADMIN, ALICE, BOB, AuthHeaders
from tests.graphql.conftest import Gql, codes
from tests.ordering import stocked_product

CUSTOMER = "profile orders:read orders:write"
CATALOG = "catalog:write"
PRODUCT = "id sku name price { amount currency } active available"
PLACE = """mutation Place($lines: [OrderLineInput!]!, $key: String) {
  placeOrder(input: {lines: $lines}, idempotencyKey: $key) {
    id customerId status total { amount currency }
    lines { productId quantity unitPrice { amount currency } lineTotal { amount } }
  }
}"""


async def test_me_and_user_follow_the_rest_rules(
    gql: Gql, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    alice = await auth_headers(ALICE[0], CUSTOMER)
    answer = await gql("{ me { id email name roles } }", headers=alice)
    assert answer["data"]["me"] == {
        "id": accounts[ALICE[0]], "email": ALICE[0], "name": ALICE[2], "roles": ["customer"]}
    own = await gql("query($id: ID!) { user(id: $id) { email } }", headers=alice,
                    id=accounts[ALICE[0]])
    assert own["data"]["user"]["email"] == ALICE[0]
    other = await gql("query($id: ID!) { user(id: $id) { email } }", headers=alice,
                      id=accounts[BOB[0]])
    assert other["data"] is None and codes(other) == ["FORBIDDEN"]
    assert codes(await gql("{ me { id } }")) == ["UNAUTHENTICATED"]
    no_scope = await gql("{ me { id } }", headers=await auth_headers(ALICE[0], "orders:read"))
    assert codes(no_scope) == ["FORBIDDEN"]
    assert no_scope["errors"][0]["extensions"]["scope"] == "profile"


async def test_a_token_sent_to_a_field_that_reads_it_must_be_valid(gql: Gql) -> None:
    # As REST's GET /products/{id}: a token is optional, but one that is sent must be valid.
    answer = await gql("{ product(id: \"unknown\") { id } }",
                       headers={"Authorization": "Bearer not.a.token"})
    assert codes(answer) == ["UNAUTHENTICATED"]


async def test_users_is_for_admins_in_relay_pages(
    gql: Gql, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    admin = await auth_headers(ADMIN[0], "users:read")
    query = """query($first: Int!, $after: String) { users(first: $first, after: $after) {
        edges { cursor node { email } } pageInfo { hasNextPage endCursor } } }"""
    first = (await gql(query, headers=admin, first=2))["data"]["users"]
    assert len(first["edges"]) == 2 and first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["endCursor"] == first["edges"][-1]["cursor"]
    rest = (await gql(query, headers=admin, first=2, after=first["pageInfo"]["endCursor"]))
    page = rest["data"]["users"]
    assert page["pageInfo"] == {"hasNextPage": False, "endCursor": page["edges"][-1]["cursor"]}
    emails = {edge["node"]["email"] for edge in first["edges"] + page["edges"]}
    assert emails == {ADMIN[0], ALICE[0], BOB[0]}
    customer = await gql(query, headers=await auth_headers(ALICE[0], "users:read"), first=2)
    assert codes(customer) == ["FORBIDDEN"]


async def test_bad_page_arguments_are_bad_user_input_on_the_argument(
    gql: Gql, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    admin = await auth_headers(ADMIN[0], "users:read")
    for first, after, path in ((0, None, ["first"]), (101, None, ["first"]),
                               (5, "forged", ["after"]), (5, "", ["after"])):
        answer = await gql("query($first: Int!, $after: String) { users(first: $first, "
                           "after: $after) { edges { cursor } } }", headers=admin, first=first,
                           after=after)
        assert codes(answer) == ["BAD_USER_INPUT"], answer
        assert answer["errors"][0]["extensions"]["fields"][0]["path"] == path


async def test_products_are_public_relay_connections_with_money(
    gql: Gql, graph: Monolith, accounts: dict[str, str]
) -> None:
    for n in range(3):
        await stocked_product(graph, f"SKU-{n}", on_hand=n, price=1000 + n)
    await stocked_product(graph, "HIDDEN", on_hand=1, active=False)
    query = f"""query($after: String) {{ products(first: 2, after: $after, sort: PRICE_DESC) {{
        edges {{ node {{ {PRODUCT} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
    first = (await gql(query))["data"]["products"]
    assert [edge["node"]["price"] for edge in first["edges"]] == [
        {"amount": 1002, "currency": "EUR"}, {"amount": 1001, "currency": "EUR"}]
    rest = (await gql(query, after=first["pageInfo"]["endCursor"]))["data"]["products"]
    assert [edge["node"]["sku"] for edge in rest["edges"]] == ["SKU-0"]
    assert rest["pageInfo"]["hasNextPage"] is False
    one = await gql(f"query($id: ID!) {{ product(id: $id) {{ {PRODUCT} }} }}",
                    id=first["edges"][0]["node"]["id"])
    assert one["data"]["product"]["available"] == 2
    missing = await gql("{ product(id: \"nope\") { id } }")
    assert codes(missing) == ["NOT_FOUND"]


async def test_price_filters_and_text_filters_are_checked(gql: Gql) -> None:
    answer = await gql("{ products(q: \"a\\u0000b\") { edges { cursor } } }")
    assert codes(answer) == ["BAD_USER_INPUT"]
    assert answer["errors"][0]["extensions"]["fields"][0]["path"] == ["q"]
    negative = await gql("{ products(minPrice: -1) { edges { cursor } } }")
    assert codes(negative) == ["BAD_USER_INPUT"]
    fraction = await gql("{ products(minPrice: 1.5) { edges { cursor } } }")
    assert codes(fraction) == ["BAD_USER_INPUT"]
    as_variable = await gql("query($p: Long) { products(minPrice: $p) { edges { cursor } } }",
                            p=True)
    assert codes(as_variable) == ["BAD_USER_INPUT"]


async def test_catalog_writes_are_for_catalog_admins(
    gql: Gql, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    create = f"""mutation($input: NewProduct!) {{ createProduct(input: $input) {{ {PRODUCT} }} }}"""
    draft = {"sku": "BEANS", "name": "Beans", "category": "coffee",
             "price": {"amount": 1250, "currency": "EUR"}}
    admin = await auth_headers(ADMIN[0], CATALOG)
    assert codes(await gql(create, input=draft)) == ["UNAUTHENTICATED"]
    customer = await auth_headers(ALICE[0], CATALOG)
    assert codes(await gql(create, headers=customer, input=draft)) == ["FORBIDDEN"]
    made = (await gql(create, headers=admin, input=draft))["data"]["createProduct"]
    assert made["price"] == {"amount": 1250, "currency": "EUR"} and made["available"] == 0
    again = await gql(create, headers=admin, input=draft)
    assert codes(again) == ["CONFLICT"]
    bad = await gql(create, headers=admin, input={
        **draft, "sku": "no spaces", "price": {"amount": 1, "currency": "XXX"}})
    assert codes(bad) == ["BAD_USER_INPUT"]
    assert [f["path"] for f in bad["errors"][0]["extensions"]["fields"]] == [
        ["input", "price", "currency"]]
    bad_sku = await gql(create, headers=admin, input={**draft, "sku": "no spaces"})
    assert bad_sku["errors"][0]["extensions"]["fields"][0]["path"] == ["input", "sku"]

    update = """mutation($id: ID!, $input: ProductPatch!) { updateProduct(id: $id, input: $input)
        { name price { amount } } }"""
    changed = await gql(update, headers=admin, id=made["id"],
                        input={"name": "Dark beans", "price": {"amount": 990, "currency": "EUR"}})
    assert changed["data"]["updateProduct"] == {"name": "Dark beans", "price": {"amount": 990}}
    null = await gql(update, headers=admin, id=made["id"], input={"name": None})
    assert null["errors"][0]["extensions"]["fields"] == [
        {"path": ["input", "name"], "detail": "may not be null"}]
    stock = "mutation($id: ID!, $n: Int!) { setStock(id: $id, onHand: $n) { onHand available } }"
    counted = await gql(stock, headers=admin, id=made["id"], n=7)
    assert counted["data"]["setStock"] == {"onHand": 7, "available": 7}
    negative = await gql(stock, headers=admin, id=made["id"], n=-1)
    assert negative["errors"][0]["extensions"]["fields"][0]["path"] == ["onHand"]
    assert codes(await gql(stock, headers=admin, id="unknown", n=1)) == ["NOT_FOUND"]


async def test_register_makes_a_customer_and_refuses_a_bad_email_on_its_path(gql: Gql) -> None:
    register = """mutation($input: Registration!) { register(input: $input) { email roles } }"""
    made = await gql(register, input={
        "email": "new@archway.test", "password": "a long password", "name": "New"})
    assert made["data"]["register"] == {"email": "new@archway.test", "roles": ["customer"]}
    bad = await gql(register, input={"email": "nope", "password": "a long password",
                                      "name": "New"})
    assert codes(bad) == ["BAD_USER_INPUT"]
    assert bad["errors"][0]["extensions"]["fields"][0]["path"] == ["input", "email"]
    # A taken email is answered like a new one (no user enumeration, as REST answers it).
    again = await gql(register, input={
        "email": "new@archway.test", "password": "a long password", "name": "New"})
    assert again == made


async def test_orders_are_placed_read_and_cancelled_by_their_owner(
    gql: Gql, graph: Monolith, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    coffee = await stocked_product(graph, "COFFEE", on_hand=10, price=450)
    alice = await auth_headers(ALICE[0], CUSTOMER)
    bob = await auth_headers(BOB[0], CUSTOMER)
    placed = (await gql(PLACE, headers=alice, lines=[{"productId": coffee, "quantity": 2}]))
    order = placed["data"]["placeOrder"]
    assert order["status"] == "PENDING" and order["customerId"] == accounts[ALICE[0]]
    assert order["total"] == {"amount": 900, "currency": "EUR"}
    assert order["lines"] == [{"productId": coffee, "quantity": 2,
                               "unitPrice": {"amount": 450, "currency": "EUR"},
                               "lineTotal": {"amount": 900}}]
    await graph.relays.settle()
    read = "query($id: ID!) { order(id: $id) { id status lines { product { sku } } } }"
    mine = await gql(read, headers=alice, id=order["id"])
    assert mine["data"]["order"]["lines"] == [{"product": {"sku": "COFFEE"}}]
    assert codes(await gql(read, headers=bob, id=order["id"])) == ["NOT_FOUND"]
    listed = await gql("{ orders { edges { node { id } } } }", headers=bob)
    assert listed["data"]["orders"]["edges"] == []
    cancel = "mutation($id: ID!) { cancelOrder(id: $id) { status } }"
    assert codes(await gql(cancel, headers=bob, id=order["id"])) == ["NOT_FOUND"]
    done = await gql(cancel, headers=alice, id=order["id"])
    assert done["data"]["cancelOrder"]["status"] == "CANCELLED"


async def test_invalid_and_unavailable_lines_name_their_paths(
    gql: Gql, graph: Monolith, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    hidden = await stocked_product(graph, "OFF", on_hand=1, active=False)
    alice = await auth_headers(ALICE[0], CUSTOMER)
    invalid = await gql(PLACE, headers=alice, lines=[{"productId": hidden, "quantity": 0}])
    assert codes(invalid) == ["BAD_USER_INPUT"]
    assert ["input", "lines", 0, "quantity"] in [
        f["path"] for f in invalid["errors"][0]["extensions"]["fields"]]
    unavailable = await gql(PLACE, headers=alice, lines=[{"productId": hidden, "quantity": 1}])
    assert codes(unavailable) == ["CONFLICT"]
    assert unavailable["errors"][0]["extensions"]["fields"][0]["path"] == [
        "input", "lines", 0, "productId"]
    assert codes(await gql(PLACE, lines=[{"productId": hidden, "quantity": 1}])) == [
        "UNAUTHENTICATED"]
    no_scope = await gql(PLACE, headers=await auth_headers(ALICE[0], "orders:read"),
                         lines=[{"productId": hidden, "quantity": 1}])
    assert codes(no_scope) == ["FORBIDDEN"]


async def test_top_products_needs_reports_read(
    gql: Gql, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    query = "{ topProducts(limit: 5) { productId unitsSold revenue { amount currency } } }"
    assert codes(await gql(query, headers=await auth_headers(ALICE[0], CUSTOMER))) == [
        "FORBIDDEN"]
    answer = await gql(query, headers=await auth_headers(ADMIN[0], "reports:read"))
    assert answer["data"]["topProducts"] == []
    too_many = await gql("{ topProducts(limit: 101) { productId } }",
                         headers=await auth_headers(ADMIN[0], "reports:read"))
    assert too_many["errors"][0]["extensions"]["fields"][0]["path"] == ["limit"]


async def test_graphql_requests_get_the_http_service_defaults(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ products { edges { cursor } } }"},
        headers={"X-Request-ID": "graphql-test-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "graphql-test-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    too_big = await client.post(
        "/graphql", content=b'{"query": "' + b" " * (1024 * 1024 + 1) + b'{ me { id } }"}',
        headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    metrics = (await client.get("/metrics")).text
    assert 'route="/graphql"' in metrics


async def test_a_request_that_is_not_graphql_is_a_4xx(client: httpx.AsyncClient) -> None:
    for body in (b"not json", b'{"query": 5}', b"{}"):
        response = await client.post(
            "/graphql", content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)
    subscription = await client.post(
        "/graphql", json={"query": "subscription { orderUpdated(id: \"x\") { id } }"})
    assert subscription.status_code == 400, subscription.text  # a stream, not one answer
    mutation_by_get = await client.get(
        "/graphql", params={"query": "mutation { cancelOrder(id: \"x\") { id } }"})
    assert mutation_by_get.status_code == 400
    parse = await client.post("/graphql", json={"query": "{ me { id "})
    assert parse.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_user_orders_are_the_users_own_in_relay_pages(
    gql: Gql, graph: Monolith, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    coffee = await stocked_product(graph, "COFFEE", on_hand=10, price=450)
    alice = await auth_headers(ALICE[0], CUSTOMER)
    placed = [(await gql(PLACE, headers=alice, lines=[{"productId": coffee, "quantity": n}]))
              ["data"]["placeOrder"]["id"] for n in (1, 2, 3)]
    await graph.relays.settle()
    query = """query($id: ID!, $after: String) { user(id: $id) { orders(first: 2, after: $after)
        { edges { node { id } } pageInfo { hasNextPage endCursor } } } }"""
    admin = await auth_headers(ADMIN[0], "users:read orders:read")
    first = (await gql(query, headers=admin, id=accounts[ALICE[0]]))["data"]["user"]["orders"]
    assert [e["node"]["id"] for e in first["edges"]] == placed[:0:-1]  # newest first
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await gql(query, headers=admin, id=accounts[ALICE[0]],
                      after=first["pageInfo"]["endCursor"]))["data"]["user"]["orders"]
    assert [e["node"]["id"] for e in rest["edges"]] == placed[:1]
    assert rest["pageInfo"]["hasNextPage"] is False
    own = await gql("{ me { orders { edges { node { id } } } } }", headers=alice)
    assert len(own["data"]["me"]["orders"]["edges"]) == 3
    bobs = await gql("{ me { orders { edges { node { id } } } } }",
                     headers=await auth_headers(BOB[0], CUSTOMER))
    assert bobs["data"]["me"]["orders"]["edges"] == []
    no_scope = await gql("{ me { orders { edges { node { id } } } } }",
                         headers=await auth_headers(ALICE[0], "profile"))
    assert codes(no_scope) == ["FORBIDDEN"]

"""The parity suite's fixtures: one real ``archway serve monolith`` process (migrated and
seeded, on the suite's kind of database) that every parity scenario shares, its tokens, and one
client per protocol; a second process on the same database with tiny rate limits, only for the
rate-limit scenarios."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from tests.contract.parity import REFLECTION
from tests.contract.parity.graphql import GraphQLApi
from tests.contract.parity.grpc import CATALOG, ORDERS, USERS, GeneratedRpc, GrpcApi
from tests.contract.parity.neutral import ShopApi
from tests.contract.parity.reflection import ReflectedRpc
from tests.contract.parity.rest import RestApi
from tests.e2e.conftest import RunningServer, monolith_on_fresh_database, replica

CUSTOMER_SCOPES = "profile orders:read orders:write"
ADMIN_SCOPES = "profile users:read catalog:write orders:read orders:write"
TINY_QUOTA = 3
"""Requests per minute per consumer and route class on the rate-limited process."""


@dataclass(frozen=True)
class Tokens:
    admin: str
    alice: str
    bob: str
    carol: str  # a customer of her own: only the orders-list scenario places her orders
    alice_profile_only: str  # a customer without orders:read or orders:write
    alice_catalog_write: str  # a customer with catalog:write, but not an admin


@dataclass(frozen=True)
class Accounts:
    """The users' ids."""

    admin: str
    alice: str
    bob: str
    carol: str


@pytest.fixture(scope="session")
def parity_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    # A few connections per process: PostgreSQL's 100 are shared with the suite and others.
    with monolith_on_fresh_database(database_url, tmp_path_factory, "parity",
                                    ARCHWAY_DB_POOL_SIZE="4") as server:
        yield server


@pytest.fixture(scope="session")
def tokens(parity_server: RunningServer) -> Tokens:
    carol = f"carol-{uuid.uuid4().hex[:8]}@archway.test"
    registered = httpx.post(f"{parity_server.base_url}/api/v2/users", timeout=30, json={
        "email": carol, "password": "archway-carol-parity", "name": "Carol Parity"})
    assert registered.status_code == 201, registered.text
    asked = {
        "admin": ("admin@archway.test", ADMIN_SCOPES),
        "alice": ("alice@archway.test", CUSTOMER_SCOPES),
        "bob": ("bob@archway.test", CUSTOMER_SCOPES),
        "carol": (carol, CUSTOMER_SCOPES),
        "alice_profile_only": ("alice@archway.test", "profile"),
        "alice_catalog_write": ("alice@archway.test", "profile catalog:write"),
    }
    return Tokens(**parity_server.tokens(asked))


@pytest.fixture(scope="session")
def accounts(parity_server: RunningServer, tokens: Tokens) -> Accounts:
    def id_of(token: str) -> str:
        me = httpx.get(f"{parity_server.base_url}/api/v2/users/me", timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        return str(me.json()["id"])

    return Accounts(id_of(tokens.admin), id_of(tokens.alice), id_of(tokens.bob),
                    id_of(tokens.carol))


async def _apis(
    server: RunningServer, *, reflection: bool = True
) -> AsyncIterator[dict[str, ShopApi]]:
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as http,
        GraphQLApi.http_client(server.base_url) as session,
        grpc.aio.insecure_channel(server.grpc_target) as channel,
    ):
        made: dict[str, ShopApi] = {
            "rest": RestApi(http), "graphql": GraphQLApi(server.base_url, session),
            "grpc": GrpcApi(GeneratedRpc(channel)),
        }
        if reflection:
            reflected = await ReflectedRpc.discover(server.grpc_target, channel,
                                                    [CATALOG, USERS, ORDERS])
            made[REFLECTION] = GrpcApi(reflected, REFLECTION)
        yield made


@pytest.fixture(scope="session")
async def apis(parity_server: RunningServer) -> AsyncIterator[dict[str, ShopApi]]:
    async for made in _apis(parity_server):
        yield made


@pytest.fixture
def api(request: pytest.FixtureRequest, apis: dict[str, ShopApi]) -> ShopApi:
    """The protocol's client: parametrised indirectly by :func:`tests.contract.parity.over`."""
    return apis[request.param]


@pytest.fixture
def rest(apis: dict[str, ShopApi]) -> ShopApi:
    """REST's client, to set a scenario up or to read what another protocol wrote."""
    return apis["rest"]


@pytest.fixture(scope="session")
def limited_server(
    parity_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tiny = {f"ARCHWAY_RATE_LIMIT_DEFAULT_{cls}": str(TINY_QUOTA) for cls in ("READS", "WRITES")}
    log = tmp_path_factory.mktemp("parity-limited") / "server.log"
    with replica(parity_server, log, **tiny) as server:
        yield server


@pytest.fixture(scope="session")
async def limited_apis(limited_server: RunningServer) -> AsyncIterator[dict[str, ShopApi]]:
    async for made in _apis(limited_server, reflection=False):
        yield made


@pytest.fixture
def limited_api(request: pytest.FixtureRequest, limited_apis: dict[str, ShopApi]) -> ShopApi:
    return limited_apis[request.param]

"""`archway clients create|list|revoke|update|rotate` and the seeded clients of `archway seed`,
on the test database (emptied afterwards like every test's)."""

from __future__ import annotations

import asyncio
import hashlib

from typer.testing import CliRunner, Result

from archway.cli import app as cli
from archway.config import Settings
from archway.kernel.db import Database
from archway.topologies.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DOCS_CLIENT_ID
from archway.topologies.monolith import Monolith


async def run_cli(settings: Settings, *args: str) -> Result:
    return await asyncio.to_thread(
        CliRunner().invoke, cli, list(args),
        env={"ARCHWAY_DATABASE_URL": settings.database_url, "ARCHWAY_ISSUER": settings.issuer})


async def test_create_shows_the_secret_once_and_stores_its_digest(
    settings: Settings, graph: Monolith, database: Database
) -> None:
    created = await run_cli(settings, "clients", "create", "nightly-report", "--name",
                            "Nightly report", "--grant", "client_credentials",
                            "--scope", "reports:read")
    assert created.exit_code == 0, created.output
    lines = dict(line.split(": ", 1) for line in created.stdout.splitlines())
    assert lines["client_id"] == "nightly-report"
    secret = lines["client_secret"]
    assert len(secret) >= 43
    client = await graph.identity.active_client("nightly-report")
    assert client is not None
    assert client.secret_digest == hashlib.sha256(secret.encode()).hexdigest()

    listed = await run_cli(settings, "clients", "list")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines() == [
        "nightly-report  confidential  grants client_credentials  scopes reports:read  active"]
    assert secret not in listed.output

    revoked = await run_cli(settings, "clients", "revoke", "nightly-report")
    assert revoked.exit_code == 0 and revoked.stdout == "revoked: nightly-report\n"
    assert await graph.identity.active_client("nightly-report") is None
    listed = await run_cli(settings, "clients", "list")
    assert "  revoked 20" in listed.stdout


async def test_create_refuses_bad_input_with_one_error_line(
    settings: Settings, database: Database
) -> None:
    public_machine = await run_cli(settings, "clients", "create", "web", "--name", "Web",
                                   "--grant", "client_credentials", "--public")
    assert public_machine.exit_code == 1
    assert public_machine.output.startswith("error: ")
    twice = [await run_cli(settings, "clients", "create", "twice", "--name", "Twice",
                           "--grant", "client_credentials") for _ in range(2)]
    assert twice[0].exit_code == 0 and twice[1].exit_code == 1
    assert "already exists" in twice[1].output
    unknown = await run_cli(settings, "clients", "revoke", "nobody")
    assert unknown.exit_code == 1 and unknown.output == "error: No client nobody.\n"


async def test_seed_creates_and_prints_the_docs_and_demo_clients_once(
    settings: Settings, graph: Monolith, database: Database
) -> None:
    for _ in range(2):  # seeding twice changes nothing
        seeded = await run_cli(settings, "seed")
        assert seeded.exit_code == 0, seeded.output
        client_lines = [line for line in seeded.stdout.splitlines()
                        if line.startswith("client ")]
        assert client_lines == [
            f"client   {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}"
            "  (confidential: client_credentials, reports:read)",
            f"client   {DOCS_CLIENT_ID}  (public, PKCE: Swagger UI's Authorize)",
        ]
    demo = await graph.identity.active_client(DEMO_CLIENT_ID)
    assert demo is not None and demo.check_secret(DEMO_CLIENT_SECRET)
    docs = await graph.identity.active_client(DOCS_CLIENT_ID)
    assert docs is not None and docs.is_public
    assert docs.redirect_uris == (f"{settings.issuer}/docs/oauth2-redirect",)
    assert docs.grant_types == {"authorization_code", "refresh_token"}


async def test_rotate_prints_a_new_secret_once_and_the_old_one_stops_working(
    settings: Settings, graph: Monolith, database: Database
) -> None:
    created = await run_cli(settings, "clients", "create", "nightly-report", "--name",
                            "Nightly report", "--grant", "client_credentials")
    old = dict(line.split(": ", 1) for line in created.stdout.splitlines())["client_secret"]
    rotated = await run_cli(settings, "clients", "rotate", "nightly-report")
    assert rotated.exit_code == 0, rotated.output
    lines = dict(line.split(": ", 1) for line in rotated.stdout.splitlines())
    assert lines["client_id"] == "nightly-report"
    new = lines["client_secret"]
    assert len(new) >= 43 and new != old
    # The CLI wrote it in its own process: read it back from the store, not this one's cache.
    stored = await graph.identity.list_clients()
    (client,) = [c for c in stored if c.client_id == "nightly-report"]
    assert client.secret_digest == hashlib.sha256(new.encode()).hexdigest()
    assert not client.check_secret(old)
    public = await run_cli(settings, "clients", "create", "web-shop", "--name", "Web shop",
                           "--grant", "authorization_code", "--public",
                           "--redirect-uri", "https://shop.example/cb")
    assert public.exit_code == 0, public.output
    refused = await run_cli(settings, "clients", "rotate", "web-shop")
    assert refused.exit_code != 0 and "public client" in refused.output


async def test_update_renames_and_replaces_the_redirect_uris(
    settings: Settings, graph: Monolith, database: Database
) -> None:
    await run_cli(settings, "clients", "create", "web-shop", "--name", "Web shop",
                  "--grant", "authorization_code", "--public",
                  "--redirect-uri", "https://shop.example/cb")
    updated = await run_cli(settings, "clients", "update", "web-shop", "--name", "The shop",
                            "--redirect-uri", "https://shop.example/a",
                            "--redirect-uri", "https://shop.example/b")
    assert updated.exit_code == 0, updated.output
    assert updated.stdout == ("updated: web-shop  name 'The shop'  redirect URIs "
                              "https://shop.example/a https://shop.example/b\n")
    (client,) = [c for c in await graph.identity.list_clients() if c.client_id == "web-shop"]
    assert client.name == "The shop"
    assert client.redirect_uris == ("https://shop.example/a", "https://shop.example/b")
    bad = await run_cli(settings, "clients", "update", "web-shop",
                        "--redirect-uri", "ftp://shop.example/cb")
    assert bad.exit_code != 0 and "not an absolute http(s) URI" in bad.output

"""`archway api-keys create|list|revoke` on the test database (emptied afterwards like every
test's)."""

from __future__ import annotations

import hashlib

from archway.config import Settings
from archway.kernel.db import Database
from archway.topologies.monolith import Monolith
from tests.integration.test_clients_cli import run_cli


async def test_create_shows_the_key_once_list_never_and_revoke_refuses_it(
    settings: Settings, graph: Monolith, database: Database
) -> None:
    created = await run_cli(settings, "api-keys", "create", "--consumer", "Acme stock sync",
                            "--plan", "partner", "--scope", "reports:read")
    assert created.exit_code == 0, created.output
    lines = dict(line.split(": ", 1) for line in created.stdout.splitlines())
    key_id, value = lines["id"], lines["key"]
    stored = await graph.api_keys.get(key_id)
    assert stored.digest == hashlib.sha256(value.encode()).hexdigest()
    assert stored.plan == "partner" and stored.scopes == {"reports:read"}
    holder = await graph.api_keys.verify(value)
    assert holder is not None and holder.principal.subject == f"key:{key_id}"
    await graph.api_keys.settle()

    listed = await run_cli(settings, "api-keys", "list")
    assert listed.exit_code == 0
    [line] = listed.stdout.splitlines()
    assert line.startswith(f"{key_id}  'Acme stock sync'  plan partner  scopes reports:read  "
                           "active  last used 20")
    assert value not in listed.output

    revoked = await run_cli(settings, "api-keys", "revoke", key_id)
    assert revoked.exit_code == 0 and revoked.stdout == f"revoked: {key_id}\n"
    assert await graph.api_keys.verify(value) is None
    assert "  revoked 20" in (await run_cli(settings, "api-keys", "list")).stdout


async def test_refusals_are_messages_not_tracebacks(
    settings: Settings, database: Database
) -> None:
    empty = await run_cli(settings, "api-keys", "list")
    assert empty.exit_code == 0 and empty.stdout == "no api keys\n"
    for args in (["create", "--consumer", "Acme", "--scope", "orders:write"],
                 ["create", "--consumer", "Acme", "--plan", "gold"],
                 ["revoke", "0190f7a2-0000-7000-8000-000000000000"]):
        refused = await run_cli(settings, "api-keys", *args)
        assert refused.exit_code != 0, args
        assert "Traceback" not in refused.output and refused.exception is not None
        assert isinstance(refused.exception, SystemExit), (args, refused.exception)

"""The ``archway`` command: run, migrate, seed and operate a deployment."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from archway.config import ConfigurationError, Settings, load_settings
from archway.kernel.errors import ArchwayError
from archway.topologies.demo import DEMO_ACCOUNTS, customer_token_command

T = TypeVar("T")

app = typer.Typer(help="Archway: one shop backend in every API architecture.", no_args_is_help=True)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing-key commands.", no_args_is_help=True)
serve_app = typer.Typer(help="Run one process of a topology.", no_args_is_help=True)
projections_app = typer.Typer(help="Read-model commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(serve_app, name="serve")
events_app = typer.Typer(help="Integration-event commands.", no_args_is_help=True)
dead_letters_app = typer.Typer(
    help="Events a consumer parked after failing on them (see docs/cqrs.md).", no_args_is_help=True)
clients_app = typer.Typer(help="OAuth 2.0 client commands.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
api_keys_app = typer.Typer(help="API keys for machine consumers (X-API-Key).",
                           no_args_is_help=True)
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(projections_app, name="projections")
app.add_typer(events_app, name="events")
events_app.add_typer(dead_letters_app, name="dead-letters")



def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _run(work: Callable[[Settings], Coroutine[Any, Any, T]], settings: Settings) -> T:
    try:
        return asyncio.run(work(settings))
    except ArchwayError as exc:
        cause = exc.__cause__
        # the database refused or is gone; a constraint it enforced is the refusal itself
        if isinstance(cause, (DBAPIError, OSError)) and not isinstance(cause, IntegrityError):
            _database_error(settings, cause)
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    except (DBAPIError, OSError) as exc:  # unreachable, refused, unknown database or role, …
        _database_error(settings, exc)
    except ConfigurationError as exc:  # e.g. the database is not migrated
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _database_error(settings: Settings, exc: DBAPIError | OSError) -> NoReturn:
    reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).splitlines()[0]
    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    typer.echo(f"error: cannot use the database at {shown}: {reason}", err=True)
    raise typer.Exit(1) from None


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply every context's migrations."""
    from archway.topologies.operations import migrate_database
    from archway.topologies.shared import CONTEXTS

    _run(lambda s: migrate_database(s, CONTEXTS), _settings())
    typer.echo("migrated: " + ", ".join(CONTEXTS))


@app.command()
def seed() -> None:
    """Create the demo accounts, products and OAuth clients (idempotent); prints one line per
    account and client."""
    from archway.topologies.operations import seed_demo, seed_demo_clients

    settings = _settings()
    for line in _run(lambda s: seed_demo(s, DEMO_ACCOUNTS), settings):
        typer.echo(line)
    for line in _run(seed_demo_clients, settings):
        typer.echo(line)


@clients_app.command("create")
def clients_create(
    client_id: Annotated[str, typer.Argument(
        metavar="CLIENT_ID", help="3-64 of a-z, 0-9 and '-', starting with a letter.")],
    name: Annotated[str, typer.Option("--name", help="Shown to people.")],
    grant: Annotated[list[str], typer.Option(
        "--grant", help="A grant it may use (repeat): client_credentials, "
        "authorization_code, refresh_token.")],
    scope: Annotated[str, typer.Option(
        "--scope", help='Space-separated scopes it may ask for, e.g. "reports:read".')] = "",
    redirect_uri: Annotated[list[str] | None, typer.Option(
        "--redirect-uri", help="An exact redirect URI (repeat); authorization_code needs one.")
    ] = None,
    public: Annotated[bool, typer.Option(
        "--public", help="No secret (a browser page or native app; PKCE).")] = False,
) -> None:
    """Register an OAuth client; a confidential one's secret is printed this once (only its
    SHA-256 digest is stored)."""
    from archway.identity.service import ClientSpec
    from archway.topologies.operations import create_client

    spec = ClientSpec(
        client_id, name, public=public, grant_types=frozenset(grant),
        scopes=frozenset(scope.split()), redirect_uris=tuple(redirect_uri or ()))
    client, secret = _run(lambda s: create_client(s, spec), _settings())
    typer.echo(f"client_id: {client.client_id}")
    if secret is not None:
        typer.echo(f"client_secret: {secret}")
        typer.echo("The secret is shown only now: store it safely.", err=True)


@clients_app.command("list")
def clients_list() -> None:
    """Print every client: id, public or confidential, grants, scopes, and whether revoked."""
    from archway.topologies.operations import list_clients

    clients = _run(list_clients, _settings())
    if not clients:
        typer.echo("no clients")
    for client in clients:
        kind = "public" if client.is_public else "confidential"
        state = f"revoked {client.revoked_at.isoformat()}" if client.revoked_at else "active"
        typer.echo(f"{client.client_id}  {kind}  grants {','.join(sorted(client.grant_types))}"
                   f"  scopes {' '.join(sorted(client.scopes)) or '-'}  {state}")


@clients_app.command("revoke")
def clients_revoke(
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID")],
) -> None:
    """Revoke a client: it can no longer authenticate, and the tokens it got for itself stop
    working."""
    from archway.topologies.operations import revoke_client

    client = _run(lambda s: revoke_client(s, client_id), _settings())
    typer.echo(f"revoked: {client.client_id}")


@clients_app.command("update")
def clients_update(
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID")],
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    redirect_uri: Annotated[list[str] | None, typer.Option(
        "--redirect-uri", help="An exact redirect URI (repeat): the list replaces the old one.")
    ] = None,
) -> None:
    """Rename a client or replace its redirect URIs."""
    from archway.identity.ports import ClientChanges
    from archway.topologies.operations import update_client

    changes = ClientChanges(
        name=name, redirect_uris=None if redirect_uri is None else tuple(redirect_uri))
    client = _run(lambda s: update_client(s, client_id, changes), _settings())
    typer.echo(f"updated: {client.client_id}  name {client.name!r}  redirect URIs "
               f"{' '.join(client.redirect_uris) or '-'}")


@clients_app.command("rotate")
def clients_rotate(
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID")],
) -> None:
    """Give a confidential client a new secret, printed this once; the old one stops working.
    Tokens it already got stay valid until they expire."""
    from archway.topologies.operations import rotate_client_secret

    client, secret = _run(lambda s: rotate_client_secret(s, client_id), _settings())
    typer.echo(f"client_id: {client.client_id}")
    typer.echo(f"client_secret: {secret}")
    typer.echo("The secret is shown only now: store it safely.", err=True)


@api_keys_app.command("create")
def api_keys_create(
    consumer: Annotated[str, typer.Option("--consumer", help="Who the key is for (a name).")],
    plan: Annotated[str, typer.Option(
        "--plan", help="Its rate-limit plan: default or partner.")] = "default",
    scope: Annotated[str, typer.Option(
        "--scope", help='Space-separated scopes, of those that act on no user\'s own '
        'resources: "reports:read".')] = "",
) -> None:
    """Create an API key; the key is printed this once (only its SHA-256 digest is stored)."""
    from archway.topologies.operations import create_api_key

    key, value = _run(
        lambda s: create_api_key(s, consumer, plan, frozenset(scope.split())), _settings())
    typer.echo(f"id: {key.id}")
    typer.echo(f"key: {value}")
    typer.echo("The key is shown only now: store it safely.", err=True)


@api_keys_app.command("list")
def api_keys_list() -> None:
    """Print every key (never the key itself): id, consumer, plan, scopes, state, last use."""
    from archway.topologies.operations import list_api_keys

    keys = _run(list_api_keys, _settings())
    if not keys:
        typer.echo("no api keys")
    for key in keys:
        state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        used = key.last_used_at.isoformat() if key.last_used_at else "never"
        typer.echo(f"{key.id}  {key.consumer!r}  plan {key.plan}  scopes "
                   f"{' '.join(sorted(key.scopes)) or '-'}  {state}  last used {used}")


@api_keys_app.command("revoke")
def api_keys_revoke(key_id: Annotated[str, typer.Argument(metavar="KEY_ID")]) -> None:
    """Revoke a key: refused at once by new processes, within the read cache's TTL by
    running ones."""
    from archway.topologies.operations import revoke_api_key

    key = _run(lambda s: revoke_api_key(s, key_id), _settings())
    typer.echo(f"revoked: {key.id}")


@app.command()
def token(
    user: Annotated[str, typer.Option("--user", help="The user's email.")],
    scope: Annotated[str, typer.Option(
        "--scope", help='Space-separated, e.g. "profile orders:write".')] = "profile",
    ttl: Annotated[int | None, typer.Option(
        "--ttl", min=30, max=86_400, help="Lifetime in seconds.")] = None,
) -> None:
    """Development only: print an access token for USER with the scopes asked for."""
    from archway.topologies.operations import dev_token

    settings = _settings()
    if settings.environment == "production":
        typer.echo(
            "error: `archway token` is disabled when ARCHWAY_ENVIRONMENT=production", err=True)
        raise typer.Exit(2)
    typer.echo(_run(lambda s: dev_token(s, user, scope.split(), ttl), settings))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Sign new tokens with a fresh key; the old one stays published until its tokens expire."""
    from archway.topologies.operations import rotate_keys

    typer.echo("new signing key: " + _run(rotate_keys, _settings()))


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Rebuild every read model (order_view, customer_summary, product_sales) from the event
    log; works against a running deployment's database."""
    from archway.topologies.operations import rebuild_projections

    for name, replayed in _run(rebuild_projections, _settings()):
        typer.echo(f"rebuilt {name}: {replayed} events replayed")


@dead_letters_app.command("list")
def dead_letters_list() -> None:
    """Print every parked event, oldest first: id, consumer, event type and id, attempts,
    when it was parked and the last error."""
    from archway.topologies.operations import list_dead_letters

    letters = _run(list_dead_letters, _settings())
    if not letters:
        typer.echo("no dead letters")
        return
    for letter in letters:
        typer.echo(f"{letter.id}  {letter.consumer}  {letter.event_type}  event {letter.event_id}"
                   f"  attempts {letter.attempts}  parked {letter.parked_at.isoformat()}")
        typer.echo(f"    {letter.last_error.splitlines()[0] if letter.last_error else ''}")


@dead_letters_app.command("retry")
def dead_letters_retry(
    letter_id: Annotated[str, typer.Argument(metavar="ID", help="As `list` prints it.")],
) -> None:
    """Deliver a parked event to its consumer again, once its cause is fixed. Applied: it is
    no longer parked (its effect happens once, even if it had been applied). Failed again: it
    stays parked with the new error, and the command exits 1."""
    from archway.topologies.operations import retry_dead_letter

    outcome, letter = _run(lambda s: retry_dead_letter(s, letter_id), _settings())
    if outcome == "not_found":
        typer.echo(f"error: no dead letter {letter_id}", err=True)
        raise typer.Exit(1)
    assert letter is not None
    if outcome == "no_consumer":
        typer.echo(f"error: dead letter {letter_id} is for consumer {letter.consumer}, which this "
                   "version of Archway does not have; it stays parked", err=True)
        raise typer.Exit(1)
    if outcome == "failed":
        typer.echo(f"failed again, still parked: {letter.last_error}", err=True)
        raise typer.Exit(1)
    if outcome == "requeued":
        typer.echo(f"requeued {letter.event_type} {letter.event_id}: it reads now, and is back in "
                   f"its outbox for {letter.consumer}")
        return
    typer.echo(f"applied {letter.event_type} {letter.event_id} to {letter.consumer}")


@serve_app.command("monolith")
def serve_monolith(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
    grpc_port: Annotated[int | None, typer.Option(
        help="gRPC port (default ARCHWAY_GRPC_PORT, 50051).")] = None,
) -> None:
    """REST, docs and metrics, and gRPC on its own port, in one process."""
    from archway.topologies.runner import serve

    host = host or _settings().http_host
    settings = _grpc_settings(host, grpc_port)
    _refuse(lambda: serve(settings, host, port if port is not None else settings.http_port))


def _grpc_settings(host: str, grpc_port: int | None) -> Settings:
    """The settings with gRPC's address, also put in the environment for the serving
    process: ``--grpc-port`` if given, on ``ARCHWAY_GRPC_HOST`` or else the HTTP host."""
    if grpc_port is not None:
        os.environ["ARCHWAY_GRPC_PORT"] = str(grpc_port)
    os.environ.setdefault("ARCHWAY_GRPC_HOST", host)
    return _settings()


@app.command()
def dev(
    host: Annotated[str | None, typer.Option(help="Interface (default ARCHWAY_HTTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default ARCHWAY_HTTP_PORT).")] = None,
    grpc_port: Annotated[int | None, typer.Option(
        help="gRPC port (default ARCHWAY_GRPC_PORT, 50051).")] = None,
) -> None:
    """Migrate, seed and serve the monolith on SQLite; prints every URL and the demo logins
    once the server answers."""
    from archway.topologies.monolith import PUBLIC_LINKS
    from archway.topologies.operations import migrate_database, seed_demo, seed_demo_clients
    from archway.topologies.runner import ensure_can_listen, serve
    from archway.topologies.shared import CONTEXTS

    # The serving process reads its settings from the environment: the landing page lists
    # the demo accounts only for `archway dev`.
    os.environ["ARCHWAY_SHOW_DEMO_ACCOUNTS"] = "true"
    host = host or _settings().http_host
    settings = _grpc_settings(host, grpc_port)
    port = port if port is not None else settings.http_port
    grpc_host = settings.grpc_host or host
    _refuse(lambda: ensure_can_listen(host, port))  # before any work: nothing half-started
    _refuse(lambda: ensure_can_listen(grpc_host, settings.grpc_port))
    _run(lambda s: migrate_database(s, CONTEXTS), settings)
    accounts = _run(lambda s: seed_demo(s, DEMO_ACCOUNTS), settings)
    clients = _run(seed_demo_clients, settings)
    base = f"http://{host}:{port}"

    shown_url = make_url(settings.database_url).render_as_string(hide_password=True)
    banner = [f"Archway monolith on {base} (database {shown_url})"]
    banner += [f"  {link.title:<11} {base}{link.href}" for link in PUBLIC_LINKS]
    banner.append(f"  {'gRPC':<11} {grpc_host}:{settings.grpc_port} (health, reflection: "
                  f"buf curl --protocol grpc --http2-prior-knowledge --list-methods "
                  f"http://{grpc_host}:{settings.grpc_port})")
    banner += ["Demo accounts:", *("  " + line for line in accounts)]
    banner += ["OAuth clients:", *("  " + line for line in clients)]
    banner.append(f"Token for curl: {customer_token_command(sys.argv[0])}")
    _refuse(lambda: serve(settings, host, port, announce="\n".join(banner)))


def _refuse(work: Callable[[], None]) -> None:
    """Run ``work``; a configuration it cannot run with is one line on stderr and exit 1."""
    try:
        work()
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()

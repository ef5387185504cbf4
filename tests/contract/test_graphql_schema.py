"""The GraphQL schema clients depend on: docs/schema.graphql is the committed contract.

The schema served must print exactly as committed (regenerate it after a deliberate change:
``.venv/bin/python -c "from archway.graphql.endpoint import build_schema;
print(build_schema().as_str())" > docs/schema.graphql``), and no change may break a client of
the committed one (graphql-core's ``find_breaking_changes``: a removed field or type, a changed
type, a new required argument …)."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema as from_sdl
from graphql import find_breaking_changes

from archway.graphql.endpoint import build_schema

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "schema.graphql"


def test_the_served_schema_is_the_committed_one() -> None:
    served = build_schema().as_str()
    assert served + "\n" == COMMITTED.read_text(), (
        "the GraphQL schema changed: if deliberate and compatible, regenerate docs/schema.graphql")


def test_no_change_breaks_a_client_of_the_committed_schema() -> None:
    served = from_sdl(build_schema().as_str())
    assert find_breaking_changes(from_sdl(COMMITTED.read_text()), served) == []


def test_the_breaking_change_check_sees_a_removed_field() -> None:
    committed = from_sdl(COMMITTED.read_text())
    me = '  """The caller\'s own user (profile)."""\n  me: User!\n'
    assert me in COMMITTED.read_text()
    without_me = from_sdl(COMMITTED.read_text().replace(me, "", 1))
    changes = find_breaking_changes(committed, without_me)
    assert [change.description for change in changes] == ["Field Query.me was removed."]

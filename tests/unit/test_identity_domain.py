"""Identity rules without I/O."""

from __future__ import annotations

import pytest

from archway.identity.domain import check_registration, new_user, normalize_email
from archway.kernel.auth.principal import Principal
from archway.kernel.errors import Forbidden, InvalidInput


def test_registration_rules_point_at_each_bad_field() -> None:
    errors = check_registration("nope", "short", "")
    assert [e.path for e in errors] == [("email",), ("password",), ("name",)]
    assert check_registration("ada@example.com", "long enough", "Ada") == []


def test_emails_compare_case_insensitively() -> None:
    assert normalize_email("  Ada@Example.COM ") == "ada@example.com"


def test_unknown_roles_are_refused() -> None:
    with pytest.raises(InvalidInput):
        new_user("a@example.com", "A", "hash", frozenset({"root"}))


def test_self_or_admin() -> None:
    alice = Principal("alice", frozenset({"profile"}), frozenset({"customer"}))
    admin = Principal("admin", frozenset({"users:read"}), frozenset({"admin"}))
    alice.acts_on_self_or_admin("alice", "users:read")
    admin.acts_on_self_or_admin("alice", "users:read")
    with pytest.raises(Forbidden):
        alice.acts_on_self_or_admin("bob", "users:read")
    with pytest.raises(Forbidden):
        admin.acts_on_self_or_admin("alice", "users:write")
    with pytest.raises(Forbidden):
        Principal("alice", frozenset()).acts_on_self_or_admin("alice", "users:read")

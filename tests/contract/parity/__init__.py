"""The parity suite's clients and normalisers: one real client per protocol (httpx for REST,
gql for GraphQL, grpcio for gRPC, by generated stubs or by reflection), each turning its
answers into the neutral shapes of :mod:`tests.contract.parity.neutral`."""

from __future__ import annotations

import pytest

PROTOCOLS = ("rest", "graphql", "grpc")
REFLECTION = "grpc-reflection"
"""gRPC again, through a client built from the server's reflection alone (no generated code)."""


def over(*protocols: str, skip: dict[str, str] | None = None,
         fixture: str = "api") -> pytest.MarkDecorator:
    """Run the test once per protocol (default: REST, GraphQL, gRPC) with its client as the
    fixture ``fixture``; ``skip`` names protocols whose contract lacks the operation, with
    why."""
    skip = skip or {}
    params = []
    for name in protocols or PROTOCOLS:
        marks: list[pytest.MarkDecorator] = []
        if name in skip:
            marks.append(pytest.mark.skip(reason=skip[name]))
        params.append(pytest.param(name, id=name, marks=marks))
    return pytest.mark.parametrize(fixture, params, indirect=True)

"""Schemathesis against the real monolith: every operation of both API versions, as a customer
and as an admin, then chains of calls that follow the documents' OpenAPI links (so orders,
users and products are reached with real ids). Checked: no 5xx, every answer matches its
schema, and no schema-valid request is refused (``positive_data_acceptance``, held to the
contract as ``tests/fuzz/contract.py`` explains; statuses it accepts: ``ACCEPTED_STATUSES``).

Run alone with ``pytest -m fuzz tests/fuzz`` or ``make fuzz``.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import Case, Response

from tests.fuzz.conftest import (
    REQUEST_TIMEOUT,
    STATEFUL_STEPS,
    FuzzedServer,
    documented_schema,
    fresh_token,
    served_schema,
)
from tests.fuzz.contract import CHECKS

pytestmark = pytest.mark.fuzz

ROLES = ("customer", "admin")


def authorized(case: Case, token: str) -> None:
    """The token goes on the case itself, so that the checks see who asked."""
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def tokens(fuzz_server: FuzzedServer) -> dict[str, str]:
    return {role: fresh_token(fuzz_server, role) for role in ROLES}


@pytest.mark.parametrize("role", ROLES)
@schemathesis.pytest.parametrize(v1=documented_schema(1), v2=documented_schema(2))
def test_every_operation(
    case: Case, role: str, tokens: dict[str, str], fuzz_server: FuzzedServer
) -> None:
    authorized(case, tokens[role])
    case.call_and_validate(base_url=fuzz_server.base_url, checks=CHECKS, timeout=REQUEST_TIMEOUT)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("version", (1, 2))
def test_linked_operations(fuzz_server: FuzzedServer, version: int, role: str) -> None:
    """Fresh accounts per run: a chain may delete its own user, which must not starve the next.

    A chain draws its ids from the server's answers, so when Hypothesis replays a choice
    sequence against a server whose data has since changed it may report ``Flaky``: that is a
    failure only if a check failed during the run (as schemathesis's own runner judges it).
    """
    token = fresh_token(fuzz_server, role)
    machine = served_schema(fuzz_server, version).as_state_machine()
    failures: list[Exception] = []

    class LinkedCalls(machine):  # type: ignore[misc, valid-type]
        def before_call(self, case: Case) -> None:
            authorized(case, token)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"timeout": REQUEST_TIMEOUT}

        def validate_response(
            self, response: Response, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as failure:
                failures.append(failure)
                raise

    try:
        LinkedCalls.run(settings=hypothesis.settings(
            max_examples=STATEFUL_STEPS * 4, stateful_step_count=STATEFUL_STEPS, deadline=None,
            derandomize=True, database=None, suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        ))
    except hypothesis.errors.Flaky:
        if failures:
            raise failures[0] from None

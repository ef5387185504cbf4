"""Positive-data acceptance, as Archway's contract defines a well-behaved client.

``positive_data_acceptance`` says a request valid by the schema must not be refused. A schema
cannot say two things the contract (PRODUCT.md) requires a client to do, and that the server
must refuse with a 4xx when a client does not:

- send back only the pagination cursors and ``Consistency-Token`` values the API issued
  (a forged one is refused at once), a cursor with the list and sort it was issued for (a
  keyset cursor holds the sort key of the last row: under another sort it names no position);
- send one ``Idempotency-Key`` with one request only (the same key with another body is 422).

So a request that breaks one of these is held to the contract instead: a forged cursor or token
must be refused with a 4xx; a cursor sent with another list or sort, and a reused key, may be
refused (whether a refused first attempt keeps
its key is not the contract's to say), and neither may ever get a 5xx (``not_a_server_error``).
Every other request is held to ``positive_data_acceptance``.
What the API issued is learnt from its answers as the run goes (``next_cursor`` of a page, the
``Consistency-Token`` header of a command), so links that carry such values are taken as valid.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
)

TOKEN_HEADER = "consistency-token"
KEY_HEADER = "idempotency-key"


class IssuedValues:
    """What the server handed out during this run, and what each idempotency key was used for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cursors: dict[str, set[tuple[str, str]]] = {}  # cursor → (list, sort) it came from
        self.tokens: set[str] = set()
        self.keyed_requests: dict[tuple[str, str], str] = {}

    def breach(self, case: Case) -> str | None:
        """Why the contract lets the server refuse ``case``, if it does."""
        query = case.query or {}
        headers = _lower(case.headers)
        with self._lock:
            cursor = query.get("cursor")
            if cursor is not None and str(cursor) not in self.cursors:  # an empty one too
                return "a cursor the API did not issue"
            if cursor is not None and _listing(case) not in self.cursors[str(cursor)]:
                return "a cursor issued for another list or sort"
            token = headers.get(TOKEN_HEADER)
            if token is not None and token not in self.tokens:
                return "a Consistency-Token the API did not issue"
            key = headers.get(KEY_HEADER)
            if key is not None and case.method.upper() == "POST":
                first = self.keyed_requests.get((headers.get("authorization", ""), key))
                if first is not None and first != _fingerprint(case):
                    return "an Idempotency-Key already used with another request"
        return None

    def learn(self, case: Case, response: Response) -> None:
        headers = _lower(case.headers)
        with self._lock:
            token = response.headers.get(TOKEN_HEADER)
            if token:
                self.tokens.update(token if isinstance(token, list) else [token])
            body = _json(response)
            if isinstance(body, dict) and isinstance(body.get("next_cursor"), str):
                self.cursors.setdefault(body["next_cursor"], set()).add(_listing(case))
            key = headers.get(KEY_HEADER)
            if key is not None and case.method.upper() == "POST" and response.status_code < 500:
                self.keyed_requests.setdefault(
                    (headers.get("authorization", ""), key), _fingerprint(case))


ISSUED = IssuedValues()


def contract_acceptance(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """``positive_data_acceptance``, except where the contract requires a refusal (see above)."""
    breach = ISSUED.breach(case)
    ISSUED.learn(case, response)
    if breach is None:
        return positive_data_acceptance(ctx, response, case)  # type: ignore[no-any-return]
    may_be_refused = "Idempotency-Key" in breach or "another list" in breach
    if not may_be_refused and not 400 <= response.status_code < 500:
        raise AssertionError(
            f"{case.method} {case.formatted_path} carried {breach}: the contract requires a 4xx "
            f"refusal, the server answered {response.status_code}")
    return None


CHECKS = [not_a_server_error, response_schema_conformance, contract_acceptance]
schemathesis.check(contract_acceptance)


def _fingerprint(case: Case) -> str:
    body = json.dumps(case.body, sort_keys=True, default=str) if case.body is not None else ""
    return f"{case.method.upper()} {case.formatted_path} {body}"


def _listing(case: Case) -> tuple[str, str]:
    """The list a cursor belongs to: its path and the sort asked for (absent: the default)."""
    return case.path, str((case.query or {}).get("sort", ""))


def _lower(headers: dict[str, Any] | None) -> dict[str, str]:
    return {name.lower(): str(value) for name, value in (headers or {}).items()}


def _json(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None

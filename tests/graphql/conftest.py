"""Helpers for the GraphQL tests: one call, its data and its errors' codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

Gql = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def gql(client: httpx.AsyncClient) -> Gql:
    """``await gql(query, headers=…, **variables)`` → the answer's JSON, which must be a 200."""

    async def call(
        query: str, *, headers: dict[str, str] | None = None, **variables: Any
    ) -> dict[str, Any]:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers or {})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return call


def codes(answer: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in answer.get("errors", [])]

"""Consistency tokens: opaque, round-trip exactly, and anything else is a 400."""

from __future__ import annotations

import base64

import pytest

from archway.kernel.errors import BadRequest
from archway.orders.consistency import decode_token, encode_token


@pytest.mark.parametrize("position", [0, 1, 42, 10**12])
def test_a_token_round_trips_its_position(position: int) -> None:
    token = encode_token(position)
    assert str(position) not in token or position == 0  # opaque, not a bare number
    assert decode_token(token) == position


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("token", [
    "", "42", "not a token", "x" * 65, _raw("orders:-1"), _raw("orders:01"), _raw("orders:"),
    _raw("catalog:5"), _raw("orders:1" + "0" * 20), "////",
])
def test_anything_this_api_did_not_issue_is_refused(token: str) -> None:
    with pytest.raises(BadRequest):
        decode_token(token)

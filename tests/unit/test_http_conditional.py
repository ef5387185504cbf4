"""Entity tags and the If-Match / If-None-Match comparisons of RFC 9110 §13."""

from __future__ import annotations

import pytest

from archway.kernel.http.conditional import entity_tag, if_match_versions, none_match
from archway.kernel.http.versioning import ApiVersion


def test_a_tag_names_the_version_and_the_api_version() -> None:
    assert entity_tag(3, ApiVersion.V1) == '"3.1"'
    assert entity_tag(3, ApiVersion.V2) == '"3.2"'


@pytest.mark.parametrize(("header", "matches"), [
    (None, False), ("", False), ("*", True), ('"3.1"', True), ('W/"3.1"', True),
    ('"1.1", "3.1"', True), ('"3.2"', False), ('"4.1"', False), ("3.1", False),
])
def test_if_none_match_compares_weakly(header: str | None, matches: bool) -> None:
    assert none_match(header, '"3.1"') is matches


@pytest.mark.parametrize(("header", "versions"), [
    (None, None), ("*", None), (" * ", None), ('"3.1"', frozenset({3})),
    ('"3.2"', frozenset({3})), ('"3.1", "5.2"', frozenset({3, 5})), ('W/"3.1"', frozenset()),
    ("garbage", frozenset()), ('""', frozenset()), ('"x.1"', frozenset()),
])
def test_if_match_keeps_the_version_part_of_strong_tags(
    header: str | None, versions: frozenset[int] | None
) -> None:
    assert if_match_versions(header) == versions

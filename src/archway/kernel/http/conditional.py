"""Conditional requests (RFC 9110 §13): entity tags that carry a resource's version.

A tag is ``"<version>.<api version>"`` (``"3.1"``): strong, and different per API version
because the two versions' representations differ, while ``If-Match`` compares only the version
part, so a tag read under either API version guards a write under the other.
"""

from __future__ import annotations

import re

from archway.kernel.http.versioning import ApiVersion

_VERSION_TAG = re.compile(r'^"([0-9]{1,18})(?:\.[^"]*)?"$')


def entity_tag(version: int, api_version: ApiVersion) -> str:
    return f'"{version}.{int(api_version)}"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag`` (weak comparison) or is ``*``: answer 304."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(
        candidate.strip().removeprefix("W/") == etag for candidate in if_none_match.split(",")
    )


def if_match_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` accepts: ``None`` for no condition (absent or ``*``, which
    any existing resource meets), else the version parts of its strong tags. Weak or foreign
    tags count for nothing, so a list of only those matches no version (412)."""
    if if_match is None or if_match.strip() == "*":
        return None
    versions = set()
    for candidate in if_match.split(","):
        match = _VERSION_TAG.match(candidate.strip())
        if match:
            versions.add(int(match.group(1)))
    return frozenset(versions)

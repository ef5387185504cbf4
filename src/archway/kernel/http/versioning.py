"""API versions: URL (``/api/v1``, ``/api/v2``) and header (``API-Version`` on ``/api/…``).

An unversioned ``/api/…`` path is rewritten to the versioned one before routing, so each route
exists once per version and the header form needs no routes of its own.
"""

from __future__ import annotations

import re
from enum import IntEnum

from archway.kernel.errors import BadRequest

LATEST = 2
_VERSIONED = re.compile(r"^/api/v([0-9]+)(/|$)")  # ASCII digits only


class ApiVersion(IntEnum):
    V1 = 1
    V2 = 2

    @property
    def prefix(self) -> str:
        return f"/api/v{self.value}"


def resolve(path: str, header: str | None) -> tuple[ApiVersion | None, str]:
    """Return the version a request asks for and the path to route it by.

    Non-API paths have no version. ``/api/vN/…`` is taken as is (an unknown N is left for the
    router to answer 404); ``/api/…`` takes ``API-Version`` (absent → 1, anything else → 400).
    """
    if not path.startswith("/api/") and path != "/api":
        return None, path
    match = _VERSIONED.match(path)
    if match:
        number = match.group(1)  # compared as text: int() refuses thousands of digits
        return (ApiVersion(int(number)) if number in ("1", "2") else None), path
    if header is None:
        version = ApiVersion.V1
    elif header.strip() in ("1", "2"):
        version = ApiVersion(int(header.strip()))
    else:
        raise BadRequest("API-Version must be 1 or 2.")
    return version, version.prefix + path[len("/api") :]


def successor_path(path: str) -> str:
    """The same resource under the newest version: ``/api/v1/x`` → ``/api/v2/x``."""
    return _VERSIONED.sub(f"/api/v{LATEST}\\2", path, count=1)

"""Write or check the committed OpenAPI snapshots (``docs/openapi/v{1,2}.json``).

``write`` records the current documents after a deliberate change; ``check`` fails on any
breaking change against the snapshot (see ``archway.kernel.openapi_compat``). The test suite
runs the same check, so a v1 client can never be broken by accident.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from archway.config import load_settings
from archway.kernel.http.openapi import versioned_openapi
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.openapi_compat import breaking_changes
from archway.topologies.monolith import create_app

SNAPSHOT_DIR = Path(__file__).resolve().parents[3] / "docs" / "openapi"
SNAPSHOT_ISSUER = "http://127.0.0.1:8000"


def current_documents() -> dict[ApiVersion, dict[str, Any]]:
    settings = load_settings(
        database_url="sqlite+aiosqlite:///never-opened.db", issuer=SNAPSHOT_ISSUER)
    app = create_app(settings)
    return {version: versioned_openapi(app, version, SNAPSHOT_ISSUER) for version in ApiVersion}


def snapshot_path(version: ApiVersion) -> Path:
    return SNAPSHOT_DIR / f"v{int(version)}.json"


def write() -> None:
    SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for version, document in current_documents().items():
        snapshot_path(version).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        print(f"wrote {snapshot_path(version)}")


def check() -> list[str]:
    problems = []
    for version, document in current_documents().items():
        old = json.loads(snapshot_path(version).read_text())
        problems += [f"v{int(version)}: {change}" for change in breaking_changes(old, document)]
    return problems


def main() -> None:
    if sys.argv[1:] == ["write"]:
        write()
        return
    problems = check()
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

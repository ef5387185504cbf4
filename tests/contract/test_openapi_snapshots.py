"""The committed OpenAPI snapshots guard every version against breaking changes."""

from __future__ import annotations

import json

from archway.kernel.http.versioning import ApiVersion
from archway.kernel.openapi_compat import breaking_changes
from archway.tools.openapi_snapshot import check, current_documents, snapshot_path


def test_no_version_has_a_breaking_change_against_its_snapshot() -> None:
    assert check() == []


def test_the_check_would_catch_a_removed_v1_response_field() -> None:
    documents = current_documents()
    snapshot = json.loads(snapshot_path(ApiVersion.V1).read_text())
    schemas = documents[ApiVersion.V1]["components"]["schemas"]
    del schemas["UserOut"]["properties"]["email"]
    assert any("email" in change for change in breaking_changes(snapshot, documents[ApiVersion.V1]))


def test_snapshots_document_every_route() -> None:
    for version, document in current_documents().items():
        snapshot = json.loads(snapshot_path(version).read_text())
        assert set(snapshot["paths"]) == set(document["paths"]), (
            "routes changed: run `make openapi` and commit docs/openapi/")

"""The gRPC contract in proto/: lint-clean, no breaking change against the committed v1
snapshot, and generated stubs that are current (all three as CI runs them, with no network)."""

from __future__ import annotations

import shutil
from pathlib import Path

from archway.tools import protos


def test_the_committed_stubs_are_what_the_protos_generate() -> None:
    assert protos.differences() == [], "run `make protos` and commit src/archway/proto/"


def test_the_stub_check_would_catch_a_stale_stub(tmp_path: Path) -> None:
    committed = tmp_path / "proto"
    shutil.copytree(protos.OUT_DIR, committed, ignore=shutil.ignore_patterns("__pycache__"))
    stub = committed / "catalog" / "v1" / "catalog_pb2.py"
    stub.write_text(stub.read_text() + "\n")
    (committed / "orders" / "v1" / "orders_pb2.pyi").unlink()
    assert protos.differences(committed) == [
        "missing: orders/v1/orders_pb2.pyi", "stale: catalog/v1/catalog_pb2.py"]


def test_buf_lint_passes() -> None:
    done = protos.buf("lint")
    assert done.returncode == 0, done.stdout + done.stderr


def test_v1_has_no_breaking_change_against_its_snapshot() -> None:
    done = protos.buf("breaking", "--against", str(protos.SNAPSHOT))
    assert done.returncode == 0, (done.stdout + done.stderr +
                                  "\na deliberate, compatible change: `make proto-snapshot`")


def test_buf_breaking_would_fail_on_a_changed_field_type(tmp_path: Path) -> None:
    changed = tmp_path / "proto"
    shutil.copytree(protos.PROTO_DIR, changed)
    catalog = changed / "archway" / "catalog" / "v1" / "catalog.proto"
    text = catalog.read_text()
    assert "  int64 available = 8;" in text
    catalog.write_text(text.replace("  int64 available = 8;", "  string available = 8;"))
    done = protos.buf("breaking", str(changed), "--against", str(protos.SNAPSHOT))
    assert done.returncode != 0
    assert 'changed type from "int64" to "string"' in done.stdout

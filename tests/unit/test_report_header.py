"""`make test` runs the suite twice: each run says which database it ran on, even under -q."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_one_quiet_test(database_url: str) -> str:
    env = {**os.environ, "ARCHWAY_TEST_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/unit/test_heap.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    return done.stdout


def test_a_quiet_run_on_sqlite_names_sqlite() -> None:
    assert "archway database: SQLite" in run_one_quiet_test("")


def test_a_quiet_run_on_postgresql_names_the_database_without_its_password() -> None:
    out = run_one_quiet_test("postgresql+asyncpg://postgres:secret@127.0.0.1:5432/archway_x")
    assert "archway database: postgresql+asyncpg://postgres:***@127.0.0.1:5432/archway_x" in out
    assert "secret" not in out

"""Every shell example in docs/api.md, docs/protocols.md and README.md runs as written after
`make run`.

The blocks (```sh and ```bash) of each document run in order in one bash (``set -euo
pipefail``: an undefined variable or a failing command stops it) from a directory whose
``.venv`` is this suite's, against `archway dev` on a free port with a fresh database. The
one change made to them: ``http://127.0.0.1:8000`` becomes that server's address (and
``127.0.0.1:50051`` its gRPC address). A block that
runs ``make`` (README's first, which starts the server itself) is skipped. The blocks check
their own statuses (``curl -f``, ``expect CODE curl …``), so exit 0 means every call answered
as the document says.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.dev_process import DevProcess, archway_dev, fresh_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_BASE = "http://127.0.0.1:8000"
DOCUMENTED_GRPC = "127.0.0.1:50051"
_BLOCK = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def shell_blocks(document: Path) -> list[tuple[int, str]]:
    """(line number, text) of each sh/bash block that does not run ``make``."""
    text = document.read_text()
    blocks = []
    for match in _BLOCK.finditer(text):
        body = match.group(1)
        if not re.search(r"^\s*make\b", body, re.MULTILINE):
            blocks.append((text.count("\n", 0, match.start()) + 1, body))
    return blocks


def script_for(document: Path, base_url: str, grpc_address: str) -> tuple[str, int]:
    parts = ["set -euo pipefail"]
    blocks = shell_blocks(document)
    for line, body in blocks:
        parts.append(f"echo '### {document.name}:{line}' >&2")
        parts.append(body.replace(DOCUMENTED_BASE, base_url).replace(DOCUMENTED_GRPC, grpc_address))
    parts.append(f"echo '### all {len(blocks)} blocks ran' >&2")
    return "\n".join(parts), len(blocks)


@pytest.fixture(scope="module")
def dev(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    workdir = tmp_path_factory.mktemp("newcomer")
    # The whole environment (its pyvenv.cfg too), so `.venv/bin/python` imports what the
    # project installed, as in a reader's checkout.
    (workdir / ".venv").symlink_to(Path(sys.executable).parent.parent)
    with (
        fresh_database(database_url, tmp_path_factory, "docs") as url,
        archway_dev(url, workdir) as process,
    ):
        process.banner()
        yield process


# One server for all three, as a reader would have: api.md comes last, since its rate-limit
# example spends what is left of the address's auth budget (registering, tokens) on purpose.
@pytest.mark.parametrize("document", ["README.md", "docs/protocols.md", "docs/api.md"])
def test_every_shell_block_runs_as_written(dev: DevProcess, document: str) -> None:
    grpc_address = f"127.0.0.1:{dev.env['ARCHWAY_GRPC_PORT']}"
    script, count = script_for(ROOT / document, dev.base_url, grpc_address)
    assert count > 0
    done = subprocess.run(
        ["bash", "-c", script], cwd=dev.cwd, env=dev.env, capture_output=True, text=True,
        timeout=300, check=False,
    )
    where = [line for line in done.stderr.splitlines() if line.startswith("### ")]
    assert done.returncode == 0, (
        f"{where[-1] if where else document} failed (exit {done.returncode}):\n"
        f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}")
    assert where[-1] == f"### all {count} blocks ran"


def test_the_convention_is_real() -> None:
    """The docs name the default base URL, which is what the test swaps for its own."""
    for document in ("docs/api.md", "README.md"):
        blocks = "".join(body for _, body in shell_blocks(ROOT / document))
        assert DOCUMENTED_BASE in blocks, document

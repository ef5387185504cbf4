"""Generate the gRPC stubs from ``proto/``, check that the committed ones are current, and keep
the snapshot that ``buf breaking`` compares ``v1`` against.

    python -m archway.tools.protos write      regenerate src/archway/proto (``make protos``)
    python -m archway.tools.protos check      fail if the committed stubs differ from fresh ones
    python -m archway.tools.protos snapshot   record proto/'s image for ``buf breaking``
                                              (``make proto-snapshot``, after a compatible change)

The stubs are made by grpcio-tools' bundled protoc (``--python_out``, ``--pyi_out``,
``--grpc_python_out``), so the one pinned dev dependency decides their bytes. protoc names a
generated module after its ``.proto`` path (``archway/catalog/v1/catalog.proto`` imports as
``archway.catalog.v1``), which here would land inside the contexts' packages: the modules are
written under ``archway.proto`` instead and their imports of each other rewritten to match.
The descriptors keep their ``.proto`` names, so reflection serves the contract as it is written.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "src" / "archway" / "proto"
SNAPSHOT = ROOT / "docs" / "protos" / "v1.json"
PACKAGE = "archway.proto"
_HEADER = '"""Generated from proto/ by `make protos` (archway.tools.protos): do not edit."""\n'
# `from archway.catalog.v1 import catalog_pb2 as ...` and `import archway.type.v1.money_pb2`.
_IMPORT = re.compile(r"^(from|import) archway\.(?=\w+\.v\d+)", re.MULTILINE)


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("archway/*/v*/*.proto"))


def generate(out: Path) -> None:
    """Every stub, into ``out`` (the package directory of :data:`PACKAGE`)."""
    from grpc_tools import protoc  # dev dependency: only generation needs it

    with tempfile.TemporaryDirectory() as raw_dir:
        raw = Path(raw_dir)
        args = [
            "grpc_tools.protoc", f"-I{PROTO_DIR}", f"-I{_well_known_protos()}",
            f"--python_out={raw}", f"--pyi_out={raw}", f"--grpc_python_out={raw}",
            *(str(path.relative_to(PROTO_DIR)) for path in proto_files()),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        shutil.rmtree(out, ignore_errors=True)  # generated only: a removed .proto leaves nothing
        out.mkdir(parents=True)
        (out / "__init__.py").write_text(_HEADER)
        for source in sorted((raw / "archway").rglob("*")):
            relative = source.relative_to(raw / "archway")
            target = out / relative
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                (target / "__init__.py").write_text(_HEADER)
                continue
            text = _IMPORT.sub(rf"\1 {PACKAGE}.", source.read_text())
            target.write_text(text)


def _well_known_protos() -> Path:
    import grpc_tools

    return Path(grpc_tools.__file__).parent / "_proto"


def differences(committed: Path = OUT_DIR) -> list[str]:
    """Files that differ between ``committed`` and freshly generated stubs."""
    with tempfile.TemporaryDirectory() as fresh_dir:
        fresh = Path(fresh_dir) / "proto"
        generate(fresh)
        return _compare(fresh, committed)


def _compare(fresh: Path, committed: Path) -> list[str]:
    def files(root: Path) -> set[Path]:
        return {path.relative_to(root) for path in root.rglob("*")
                if path.is_file() and "__pycache__" not in path.parts}

    new, old = files(fresh), files(committed)
    problems = [f"missing: {path}" for path in sorted(new - old)]
    problems += [f"not generated: {path}" for path in sorted(old - new)]
    problems += [f"stale: {path}" for path in sorted(new & old)
                 if not filecmp.cmp(fresh / path, committed / path, shallow=False)]
    return problems


def buf(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the pinned buf (PyPI ``buf-bin``, installed beside this interpreter) in proto/."""
    executable = Path(sys.executable).with_name("buf")
    return subprocess.run(
        [str(executable), *args], cwd=PROTO_DIR, capture_output=True, text=True, timeout=120,
        check=False)


def snapshot() -> None:
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    done = buf("build", "-o", str(SNAPSHOT))
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    print(f"wrote {SNAPSHOT}")


def main() -> None:
    command = sys.argv[1:]
    if command == ["write"]:
        generate(OUT_DIR)
        print(f"wrote {OUT_DIR}")
    elif command == ["snapshot"]:
        snapshot()
    elif command == ["check"]:
        problems = differences()
        for problem in problems:
            print(problem)
        if problems:
            print("the committed stubs are not current: run `make protos`")
        sys.exit(1 if problems else 0)
    else:
        raise SystemExit("usage: python -m archway.tools.protos write|check|snapshot")


if __name__ == "__main__":
    main()

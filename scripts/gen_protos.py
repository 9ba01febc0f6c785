"""Regenerate the Python code for every contract under ``protos/``.

The generated modules belong to the partner SDK distribution (``leis-api/``) and land
where their proto package says, under the ``leis_api`` import root: ``leis.v1`` →
``leis-api/leis_api/v1/``, ``leis.source.v1`` → ``leis_api/source/v1/``,
``leis.partner.v1`` → ``leis_api/partner/v1/``. protoc writes imports for the proto
package (``from leis.v1 import …``); they are rewritten to the import root, as
temporalio's ``scripts/gen_protos.py`` does. The modules are never edited by hand;
``tests/test_codegen.py`` fails when they drift from ``protos/``. Typed stubs (``.pyi``
for messages and gRPC stubs) come from mypy-protobuf's protoc plugins (the ``[test]`` extra).

Usage: ``python scripts/gen_protos.py [--out DIR]`` (default: ``leis-api/``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
SDK_ROOT = ROOT / "leis-api"
IMPORT_ROOT = "leis_api"
_PROTO_IMPORT = re.compile(r"^(from|import) leis(\.| import)", re.M)
# mypy-protobuf stubs also name the modules in annotations (``leis.v1.subject_pb2.SubjectQuery``).
_MODULE_REFERENCE = re.compile(r"\bleis((?:\.\w+)*\.\w+_pb2(?:_grpc)?)\b")
INIT_TEXT = '"""Generated from protos/ by scripts/gen_protos.py. Do not edit."""\n'


def proto_files() -> list[Path]:
    """Every .proto file of the LEIS module, relative to ``protos/``."""
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / "leis").rglob("*.proto"))


def generated_dirs(out: Path) -> list[Path]:
    """The package directories the generated code occupies under ``out``."""
    return sorted({out / IMPORT_ROOT / p.parent.relative_to("leis") for p in proto_files()})


def package_dirs(out: Path) -> list[Path]:
    """Generated directories plus their parents below ``out/leis_api`` (which need package markers)."""
    dirs: set[Path] = set()
    for leaf in generated_dirs(out):
        directory = leaf
        while directory != out / IMPORT_ROOT:
            dirs.add(directory)
            directory = directory.parent
    return sorted(dirs)


def _plugin(name: str) -> str:
    """The path of a protoc plugin installed beside this interpreter (mypy-protobuf's)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: pip install mypy-protobuf")
    return found


def _rewrite(text: str) -> str:
    """Point the generated code's imports and module references at the ``leis_api`` import root."""
    text = _PROTO_IMPORT.sub(lambda m: f"{m[1]} {IMPORT_ROOT}{m[2]}", text)
    return _MODULE_REFERENCE.sub(lambda m: f"{IMPORT_ROOT}{m[1]}", text)


def generate(out: Path) -> None:
    """Run protoc for every proto file into ``out`` and add package markers.

    Messages and services get typed stubs (``.pyi``) from mypy-protobuf, as temporalio's
    ``scripts/gen_protos.py`` does, so partners type-check against them without overrides.
    """
    well_known = str(resources.files("grpc_tools") / "_proto")
    staging = out / ".protoc"
    staging.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={staging}",
        f"--grpc_python_out={staging}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--mypy_out={staging}",
        f"--mypy_grpc_out={staging}",
        *[str(p) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for produced in sorted(staging.rglob("*_pb2*.py*")):
        target = out / IMPORT_ROOT / produced.relative_to(staging / "leis")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_rewrite(produced.read_text()))
        produced.unlink()
    for leftover in sorted(staging.rglob("*"), reverse=True):
        leftover.rmdir()
    staging.rmdir()
    for directory in package_dirs(out):
        (directory / "__init__.py").write_text(INIT_TEXT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=SDK_ROOT)
    args = parser.parse_args()
    for directory in generated_dirs(args.out):
        for stale in directory.glob("*_pb2*.py*"):
            stale.unlink()
    generate(args.out)
    print(f"generated {len(proto_files())} proto files into {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Regenerate the Python code for every contract under ``protos/``.

The generated modules land where their proto package says (``leis.v1`` →
``leis/v1/``, ``leis.source.v1`` → ``leis/source/v1/``, ``leis.partner.v1`` →
``leis/partner/v1/``). They are never edited by hand; ``tests/test_codegen.py``
fails when they drift from ``protos/``.

Usage: ``python scripts/gen_protos.py [--out DIR]`` (default: the repository root).
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
INIT_TEXT = '"""Generated from protos/ by scripts/gen_protos.py. Do not edit."""\n'


def proto_files() -> list[Path]:
    """Every .proto file of the LEIS module, relative to ``protos/``."""
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / "leis").rglob("*.proto"))


def generated_dirs(out: Path) -> list[Path]:
    """The package directories the generated code occupies under ``out``."""
    return sorted({out / p.parent for p in proto_files()})


def package_dirs(out: Path) -> list[Path]:
    """Generated directories plus their parents below ``out/leis`` (which needs package markers)."""
    dirs: set[Path] = set()
    for leaf in generated_dirs(out):
        directory = leaf
        while directory != out / "leis":
            dirs.add(directory)
            directory = directory.parent
    return sorted(dirs)


def generate(out: Path) -> None:
    """Run protoc for every proto file into ``out`` and add package markers."""
    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[str(p) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for directory in package_dirs(out):
        (directory / "__init__.py").write_text(INIT_TEXT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT)
    args = parser.parse_args()
    for directory in generated_dirs(args.out):
        for stale in directory.glob("*_pb2*.py*"):
            stale.unlink()
    generate(args.out)
    print(f"generated {len(proto_files())} proto files into {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

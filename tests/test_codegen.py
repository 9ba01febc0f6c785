"""The generated Python code must match protos/ exactly (CONVENTIONS: generated code)."""

from __future__ import annotations

import filecmp
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "leis-api"


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    gen = runpy.run_path(str(ROOT / "scripts" / "gen_protos.py"))
    gen["generate"](tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.py*"))
    committed = sorted(
        p.relative_to(SDK) for directory in gen["package_dirs"](SDK) for p in directory.glob("*.py*")
    )
    assert fresh == committed, "generated file set drifted: run python scripts/gen_protos.py"
    drifted = [str(p) for p in fresh if not filecmp.cmp(tmp_path / p, SDK / p, shallow=False)]
    assert not drifted, f"generated code drifted from protos/: {drifted}; run python scripts/gen_protos.py"

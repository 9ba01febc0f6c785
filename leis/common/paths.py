"""Where LEIS keeps its state: one directory, ``./.leis/`` or ``$LEIS_HOME``.

Layout (DESIGN.md): ``pki/``, ``agreements.toml``, ``config.toml``,
``sources/*.db``, ``audit.db``, ``traces.db``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LeisHome:
    """The state directory and the well-known paths inside it."""

    root: Path

    @classmethod
    def from_env(cls) -> LeisHome:
        """``$LEIS_HOME`` when set, else ``./.leis``."""
        return cls(Path(os.environ.get("LEIS_HOME", ".leis")).resolve())

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def agreements(self) -> Path:
        return self.root / "agreements.toml"

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def audit_db(self) -> Path:
        return self.root / "audit.db"

    @property
    def traces_db(self) -> Path:
        return self.root / "traces.db"

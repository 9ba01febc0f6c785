"""``leis serve`` refuses to start, in one line, when a port it must bind is taken (no traceback,
nothing served on the other ports)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def test_a_metrics_port_in_use_is_one_line_and_exit_2(
    tmp_path: Path, pki_dir: Path, seed_registry: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "pki").symlink_to(pki_dir)
    (home / "agreements.toml").write_text(seed_registry)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (home / "config.toml").write_text(f'[broker]\nlisten = "127.0.0.1:0"\nmetrics_port = {port}\n')
        done = subprocess.run(
            [sys.executable, "-m", "leis.cli", "serve"],
            env={**os.environ, "LEIS_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert f"leis serve: cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr

"""``leis sources seed`` and ``leis sources serve`` as an operator runs them (issue 3, R-OBS-4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc

from leis.common.tls import BROKER_CLIENT_NAME, channel_credentials
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.source.v1 import source_service_pb2_grpc as source_grpc
from leis_api.v1 import subject_pb2 as S


def test_cli_seed_then_serve_until_sigterm(tmp_path: Path, pki_dir: Path) -> None:
    env = {**os.environ, "LEIS_HOME": str(tmp_path / "home")}
    data_dir = tmp_path / "data"
    seeded = subprocess.run(
        [
            sys.executable,
            "-m",
            "leis.cli",
            "sources",
            "seed",
            "--persons",
            "40",
            "--data-dir",
            str(data_dir),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "eid.db" in seeded.stdout
    again = subprocess.run(
        [sys.executable, "-m", "leis.cli", "sources", "seed", "--persons", "40", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1
    assert "--force" in again.stderr
    command = [
        sys.executable, "-m", "leis.cli", "sources", "serve", "--source", "tecs", "--port", "0",
        "--data-dir", str(data_dir), "--pki-dir", str(pki_dir),
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert "listening on 127.0.0.1:" in line, line
            port = int(line.rsplit(":", 1)[1])
            credentials = channel_credentials(pki_dir, BROKER_CLIENT_NAME)
            with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
                stub = source_grpc.SourceServiceStub(channel)
                incident = S.IncidentCriteria(activity_number="ACT-2019-9000001")
                request = source_pb.SearchRequest(subject=S.SubjectQuery(incident=incident))
                assert len(stub.Search(request, timeout=10).records) == 3
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
            assert "stopping source tecs" in process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_cli_serve_reports_missing_data(tmp_path: Path, pki_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "leis.cli",
            "sources",
            "serve",
            "--source",
            "eid",
            "--data-dir",
            str(tmp_path),
            "--pki-dir",
            str(pki_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "leis sources seed" in result.stderr

"""A partner in another language reads a refusal's reason with only the shipped protos (issue 12).

A Node.js client (``tests/node/read_error_info.js``, ``@grpc/grpc-js`` and
``@grpc/proto-loader`` installed from the npm registry into a temporary directory) calls the
broker over mTLS with the LICENSING purpose, decodes ``google.rpc.Status`` from the
``grpc-status-details-bin`` trailer with the protos of ``protos/`` (google.rpc vendored under
``protos/third_party``) and finds the ErrorInfo reason, the trace id and the audit reference.
Outside CI the test is skipped when node/npm are missing or the registry is unreachable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from meshkit import Mesh

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "node" / "read_error_info.js"
PACKAGES = ("@grpc/grpc-js@1", "@grpc/proto-loader@0")


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the Node.js client test: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are required")
    prefix = tmp_path_factory.mktemp("node-client")
    try:
        subprocess.run(
            [str(npm), "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(prefix), *PACKAGES],
            check=True,
            capture_output=True,
            timeout=180,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"npm install failed: {exc}")
    return prefix / "node_modules"


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path_factory.mktemp("mesh-node"), pki_dir, source_data, seed_registry).start()
    try:
        yield mesh
    finally:
        mesh.stop()


def _node_search(mesh: Mesh, node_modules: Path, purpose: str) -> dict[str, str]:
    pki = mesh.pki_dir
    argv = [
        "node",
        str(SCRIPT),
        mesh.address,
        str(ROOT / "protos"),
        str(pki / "ca.crt"),
        str(pki / "agency-ndex.crt"),
        str(pki / "agency-ndex.key"),
        purpose,
        "WVFBI9900",
    ]
    env = {**os.environ, "NODE_PATH": str(node_modules)}
    done = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60, env=env)
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_node_client_reads_the_error_info_reason(mesh: Mesh, node_modules: Path) -> None:
    refused = _node_search(mesh, node_modules, "PURPOSE_LICENSING")
    assert refused["code"] == "PERMISSION_DENIED"
    assert (refused["reason"], refused["domain"]) == ("PURPOSE_NOT_LAWFUL", "leis.dhs.gov")
    assert len(refused["trace_id"]) == 32
    assert refused["audit_reference"]


def test_node_client_is_served(mesh: Mesh, node_modules: Path) -> None:
    served = _node_search(mesh, node_modules, "PURPOSE_CRIMINAL_LAW_ENFORCEMENT")
    assert served["code"] == "OK"
    assert served["audit_reference"]

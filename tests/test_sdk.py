"""The partner SDK (``leis-api``): the error vocabulary, ``from_rpc_error``, and a partner's view of it.

The end-to-end test installs ``leis-api`` alone into a throwaway venv (as a partner would,
``pip install ./leis-api``), proves that venv cannot import the broker, type-checks a small
partner script under mypy strict against the installed stubs, and runs it with the async
client against a running mesh: a licensing query comes back as a typed ``PermissionDenied``
with reason ``PURPOSE_NOT_LAWFUL`` (issue 10, R-Q-3).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from meshkit import Mesh

import leis.common.errors as broker_errors
from leis.common.errors import REASONS, FieldViolation, LeisError, ResourceExhausted
from leis_api import (
    ErrorReason,
    InvalidArgument,
    LeisApiError,
    from_rpc_error,
    parse_reason,
    reason_name,
)
from leis_api.v1 import subject_pb2

ROOT = Path(__file__).resolve().parent.parent
NDEX_ORI = "WVFBI9900"
# The broker-side exception classes whose first argument is an ErrorInfo reason.
REFUSALS = {
    name
    for name, value in vars(broker_errors).items()
    if isinstance(value, type) and issubclass(value, LeisError)
}


def _emitted_reasons(path: Path) -> list[tuple[int, str]]:
    """Reason strings a module passes to a refusal: literals, or its own string constants."""
    tree = ast.parse(path.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name not in REFUSALS:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((node.lineno, first.value))
        elif isinstance(first, ast.Name) and first.id in constants:
            found.append((node.lineno, constants[first.id]))
    return found


def test_every_emitted_reason_is_in_the_contract() -> None:
    emitted = [
        (f"{path.relative_to(ROOT)}:{line}", reason)
        for package in ("leis", "leis_sim")
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, reason in _emitted_reasons(path)
    ]
    assert emitted == [], "refusals must use the reason constants of leis.common.errors"
    assert len(REASONS) == len(ErrorReason.values()) - 1
    assert all(getattr(broker_errors, reason) == reason for reason in REASONS)


def test_reason_names_round_trip() -> None:
    for value in ErrorReason.values():
        assert parse_reason(reason_name(value)) == value
    assert reason_name(ErrorReason.ERROR_REASON_PURPOSE_NOT_LAWFUL) == "PURPOSE_NOT_LAWFUL"
    assert parse_reason("") == ErrorReason.ERROR_REASON_UNSPECIFIED
    assert parse_reason("A_REASON_FROM_THE_FUTURE") == "A_REASON_FROM_THE_FUTURE"


def _received(status: grpc.Status) -> grpc.aio.AioRpcError:
    """The error a client receives when the server aborts with ``status``."""
    return grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
        debug_error_string="",
    )


def test_from_rpc_error_decodes_a_refusal() -> None:
    refusal = ResourceExhausted(
        broker_errors.USER_RATE_LIMITED,
        "per-user query rate limit reached; retry later",
        violations=[FieldViolation("end_user.user_id", "over the limit")],
        retry_after_seconds=1.5,
        metadata={"agency_id": "ndex"},
    )
    error = from_rpc_error(_received(refusal.to_status()))
    assert type(error).__name__ == "ResourceExhausted"
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == ErrorReason.ERROR_REASON_USER_RATE_LIMITED
    assert error.reason_name == "USER_RATE_LIMITED"
    assert (error.domain, error.metadata) == ("leis.dhs.gov", {"agency_id": "ndex"})
    assert error.message == "per-user query rate limit reached; retry later"
    assert error.field_violations == (FieldViolation("end_user.user_id", "over the limit"),)
    assert error.retry_delay == timedelta(seconds=1.5)


def test_unknown_reasons_and_details_are_kept() -> None:
    unknown = any_pb2.Any()
    unknown.Pack(subject_pb2.EndUser(user_id="u", ori=NDEX_ORI))
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="A_NEWER_REASON", domain="leis.dhs.gov"))
    status = status_pb2.Status(
        code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="no", details=[info, unknown]
    )
    error = from_rpc_error(_received(rpc_status.to_status(status)))
    assert isinstance(error, InvalidArgument)
    assert error.reason == "A_NEWER_REASON"
    assert error.details[1] == unknown
    assert error.retry_delay is None


def test_an_error_without_details_keeps_its_code() -> None:
    error = from_rpc_error(
        grpc.aio.AioRpcError(grpc.StatusCode.DATA_LOSS, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone", "")
    )
    assert isinstance(error, LeisApiError)
    assert (error.code, error.reason, error.message) == (
        grpc.StatusCode.DATA_LOSS,
        ErrorReason.ERROR_REASON_UNSPECIFIED,
        "gone",
    )


# --------------------------------------------------------------------------- an isolated partner

PARTNER_SCRIPT = '''
"""A partner system: capabilities, then a licensing search that LEIS must refuse."""

import asyncio
import json
import sys

from leis_api import AsyncLeisClient, ErrorReason, LeisApiError, PermissionDenied
from leis_api.v1.subject_pb2 import PURPOSE_LICENSING, NameCriteria, SubjectQuery


async def main(endpoint: str, ca: str, cert: str, key: str, ori: str) -> dict[str, object]:
    async with AsyncLeisClient(endpoint, ca=ca, cert=cert, key=key) as client:
        capabilities = await client.capabilities()
        try:
            await client.search(
                SubjectQuery(name=NameCriteria(first_name="Ana", last_name="Ruiz")),
                purpose=PURPOSE_LICENSING,
                user_id="det.sdk",
                ori=ori,
            )
        except PermissionDenied as refused:
            return {
                "agency": capabilities.agency_id,
                "refusal": type(refused).__name__,
                "code": refused.code.name,
                "reason": refused.reason_name,
                "typed": refused.reason == ErrorReason.ERROR_REASON_PURPOSE_NOT_LAWFUL,
            }
        except LeisApiError as error:
            return {"unexpected": str(error)}
    return {"refusal": None}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:6]))))
'''


@pytest.fixture(scope="session")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway venv with only ``pip install ./leis-api[typing]`` (non-editable)."""
    venv = tmp_path_factory.mktemp("sdk-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{ROOT / 'leis-api'}[typing]"],
        check=True,
        timeout=240,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
    )
    return python


@pytest.fixture
def mesh(tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str) -> Iterator[Mesh]:
    started = Mesh(tmp_path / "mesh", pki_dir, source_data, seed_registry).start()
    yield started
    started.stop()


@pytest.mark.timeout(300)
def test_a_partner_needs_only_leis_api(sdk_python: Path, mesh: Mesh, tmp_path: Path) -> None:
    work = tmp_path / "partner"
    work.mkdir()
    script = work / "partner.py"
    script.write_text(textwrap.dedent(PARTNER_SCRIPT).lstrip())

    # Only the SDK is installed: the broker and the simulators are not importable.
    probe = "import importlib.util as u; print([u.find_spec(m) is not None for m in %r])"
    modules = ("leis_api", "leis", "leis_sim")
    found = subprocess.run(
        [str(sdk_python), "-c", probe % (modules,)], cwd=work, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[True, False, False]"

    # The installed stubs type-check a partner's code under mypy --strict.
    (work / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            "--python-executable",
            str(sdk_python),
            "partner.py",
        ],
        check=False,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # Run against the mesh with the async client: a typed refusal, reason PURPOSE_NOT_LAWFUL.
    pki = mesh.pki_dir
    ran = subprocess.run(
        [
            str(sdk_python),
            str(script),
            mesh.address,
            str(pki / "ca.crt"),
            str(pki / "agency-ndex.crt"),
            str(pki / "agency-ndex.key"),
            NDEX_ORI,
        ],
        check=False,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {
        "agency": "ndex",
        "refusal": "PermissionDenied",
        "code": "PERMISSION_DENIED",
        "reason": "PURPOSE_NOT_LAWFUL",
        "typed": True,
    }

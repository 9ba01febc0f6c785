"""Agreement versions on reload (R-ID-2): a changed agreement must carry a higher version.

A reload whose agreement changed without a version increase (or whose version
went down) is refused: the registry in force stays, the refusal is logged and
reported to the refusal hook (the broker audits it) once per refused file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from meshkit import Mesh

from leis.common.tls import CA_CERT
from leis.registry.agreements import Registry, load_registry, seed_registry_text
from leis.registry.reload import Refusal, RegistryHolder, unversioned_changes
from leis_api.v1 import audit_service_pb2 as audit_pb
from leis_api.v1 import audit_service_pb2_grpc as audit_grpc

NLETS_PURPOSES = (
    'permitted_oris = ["AZNLT9900", "AZNLT9901"]\n'
    'permitted_purposes = ["CRIMINAL_LAW_ENFORCEMENT", "NATIONAL_SECURITY", "EMPLOYMENT_BACKGROUND_CHECK"]\n'
)
NARROWED = 'permitted_oris = ["AZNLT9900", "AZNLT9901"]\npermitted_purposes = ["CRIMINAL_LAW_ENFORCEMENT"]\n'
NLETS_VERSION = 'id = "nlets"\n'


def nlets_edited(text: str, *, version: int | None) -> str:
    assert NLETS_PURPOSES in text
    edited = text.replace(NLETS_PURPOSES, NARROWED)
    if version is not None:
        head, _, tail = edited.partition(NLETS_VERSION)
        tail = tail.replace("version = 1\n", f"version = {version}\n", 1)
        edited = head + NLETS_VERSION + tail
    return edited


def edit(path: Path, text: str) -> None:
    """Replace the registry file (a plain helper, so the async tests hold no blocking call)."""
    path.write_text(text)


class Hooks:
    def __init__(self) -> None:
        self.changes: list[tuple[int, int]] = []
        self.refusals: list[Refusal] = []

    async def change(self, old: Registry, new: Registry) -> None:
        self.changes.append((old.version, new.version))

    async def refuse(self, current: Registry, refusal: Refusal) -> None:
        self.refusals.append(refusal)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "agreements.toml"
    file.write_text(seed_registry_text())
    return file


async def test_a_change_without_a_version_increase_is_refused(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = Hooks()
    holder = RegistryHolder(path, on_change=hooks.change, on_refusal=hooks.refuse)
    before = holder.current()
    edit(path, nlets_edited(seed_registry_text(), version=None))
    with caplog.at_level(logging.ERROR, logger="leis.registry"):
        assert await holder.check_once() is False
    assert holder.current() is before
    nlets = holder.current().get("nlets")
    assert nlets is not None
    assert len(nlets.permitted_purposes) == 3
    assert hooks.changes == []
    assert [(r.reason, r.agreements) for r in hooks.refusals] == [
        ("AGREEMENT_VERSION_NOT_INCREASED", ("nlets",))
    ]
    assert "nlets" in caplog.text
    assert "version" in caplog.text
    # The same refused file is reported once, not on every poll.
    assert await holder.check_once() is False
    assert len(hooks.refusals) == 1


async def test_the_same_change_with_a_higher_version_takes_effect(path: Path) -> None:
    hooks = Hooks()
    holder = RegistryHolder(path, on_change=hooks.change, on_refusal=hooks.refuse)
    edit(path, nlets_edited(seed_registry_text(), version=2))
    assert await holder.check_once() is True
    nlets = holder.current().get("nlets")
    assert nlets is not None
    assert nlets.version == 2
    assert len(nlets.permitted_purposes) == 1
    assert hooks.refusals == []
    assert len(hooks.changes) == 1


async def test_a_version_going_down_is_refused(path: Path) -> None:
    edit(path, nlets_edited(seed_registry_text(), version=3))
    holder = RegistryHolder(path)
    edit(path, nlets_edited(seed_registry_text(), version=2))
    assert await holder.check_once() is False
    nlets = holder.current().get("nlets")
    assert nlets is not None
    assert nlets.version == 3


async def test_an_invalid_file_is_refused_and_reported(path: Path) -> None:
    hooks = Hooks()
    holder = RegistryHolder(path, on_refusal=hooks.refuse)
    edit(path, seed_registry_text().replace('status = "ACTIVE"', 'status = "MAYBE"', 1))
    assert await holder.check_once() is False
    assert [r.reason for r in hooks.refusals] == ["REGISTRY_INVALID"]


def test_unversioned_changes_compares_agreement_by_agreement(path: Path, tmp_path: Path) -> None:
    old = load_registry(path)
    other = tmp_path / "other.toml"
    other.write_text(seed_registry_text().replace("version = 1\n", "version = 7\n", 1))
    assert unversioned_changes(old, load_registry(other)) == ()  # the file version alone
    other.write_text(nlets_edited(seed_registry_text(), version=None))
    assert unversioned_changes(old, load_registry(other)) == ("nlets",)
    other.write_text(nlets_edited(seed_registry_text(), version=2))
    assert unversioned_changes(old, load_registry(other)) == ()


# --- end to end: the broker keeps the agreement in force and audits the refusal ----------------


@pytest.fixture
def mesh(tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path / "mesh-registry", pki_dir, source_data, seed_registry, registry_poll_seconds=0.1)
    mesh.start()
    yield mesh
    mesh.stop()


def _registry_events(mesh: Mesh) -> list[audit_pb.AuditEvent]:
    pki = mesh.pki_dir
    credentials = grpc.ssl_channel_credentials(
        (pki / CA_CERT).read_bytes(), (pki / "auditor.key").read_bytes(), (pki / "auditor.crt").read_bytes()
    )
    with grpc.secure_channel(mesh.address, credentials) as channel:
        request = audit_pb.SearchEventsRequest(event_type=audit_pb.AUDIT_EVENT_TYPE_REGISTRY_CHANGED)
        return list(audit_grpc.AuditServiceStub(channel).SearchEvents(request, timeout=10).events)


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _nlets_purposes(mesh: Mesh) -> tuple[int, int]:
    with mesh.partner("nlets") as client:
        caps = client.capabilities()
    return len(caps.permitted_purposes), caps.agreement_version


def test_broker_refuses_an_unversioned_agreement_change_and_audits_it(mesh: Mesh) -> None:
    path = mesh.home.agreements
    original = path.read_text()
    assert _nlets_purposes(mesh) == (3, 1)
    path.write_text(nlets_edited(original, version=None))
    _wait_for(lambda: any(e.outcome == audit_pb.AUDIT_OUTCOME_REFUSED for e in _registry_events(mesh)))
    assert _nlets_purposes(mesh) == (3, 1)  # the previous agreement stays in force
    refused = [e for e in _registry_events(mesh) if e.outcome == audit_pb.AUDIT_OUTCOME_REFUSED]
    assert [(e.reason, list(e.source_systems)) for e in refused] == [
        ("AGREEMENT_VERSION_NOT_INCREASED", ["nlets"])
    ]
    path.write_text(nlets_edited(original, version=2))
    _wait_for(lambda: _nlets_purposes(mesh) == (1, 2))

"""Partial results, hot reload, health, reflection and graceful shutdown (issue 4, R-Q-5, R-ID-2, R-OBS-4).

A slow or failing source gives a partial response with that source marked, and
never fails the others; an agreement change takes effect without restart.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from meshkit import Mesh

from leis_api import LeisApiError
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.synth.showcase import showcase

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
EID, TECS = records_pb2.SOURCE_SYSTEM_EID, records_pb2.SOURCE_SYSTEM_TECS


def _states(response: query_pb.SearchResponse) -> dict[int, int]:
    return {s.source: s.state for s in response.source_statuses}


def _search(mesh: Mesh, subject: subject_pb2.SubjectQuery, agency: str = "ndex") -> query_pb.SearchResponse:
    with mesh.partner(agency) as client:
        return client.search(subject, purpose=LAW, user_id="test.faults", ori="WVFBI9900")


def test_slow_source_gives_a_partial_response(
    tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str
) -> None:
    mesh = Mesh(
        tmp_path / "mesh",
        pki_dir,
        source_data,
        seed_registry,
        source_deadline_ms=400,
        source_faults={"tecs": {"latency_ms": 2000}},
    ).start()
    try:
        person = showcase("closed_suspect")
        started = time.monotonic()
        response = _search(mesh, person.name_query())
        elapsed = time.monotonic() - started
        assert _states(response)[TECS] == query_pb.SOURCE_STATE_TIMED_OUT
        assert _states(response)[EID] == query_pb.SOURCE_STATE_ANSWERED
        assert [ref.source for p in response.persons for ref in p.sources] == [EID]
        assert elapsed < 1.8  # bounded by the deadline (and one retry budget), not the latency
    finally:
        mesh.stop()


def test_source_down_gives_a_partial_response_and_all_down_is_unavailable(
    tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str
) -> None:
    mesh = Mesh(tmp_path / "mesh", pki_dir, source_data, seed_registry, source_deadline_ms=500).start()
    try:
        person = showcase("closed_suspect")
        mesh.call(mesh.sources["eid"].stop(0))
        response = _search(mesh, person.name_query())
        assert _states(response)[EID] == query_pb.SOURCE_STATE_UNAVAILABLE
        assert _states(response)[TECS] == query_pb.SOURCE_STATE_ANSWERED
        assert {ref.source for p in response.persons for ref in p.sources} == {TECS}
        mesh.call(mesh.sources["tecs"].stop(0))
        with pytest.raises(LeisApiError) as info:
            _search(mesh, person.name_query())
        assert (info.value.code, info.value.reason_name) == (
            grpc.StatusCode.UNAVAILABLE,
            "SOURCES_UNAVAILABLE",
        )
    finally:
        mesh.stop()


def test_registry_change_takes_effect_without_restart(
    tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str
) -> None:
    mesh = Mesh(tmp_path / "mesh", pki_dir, source_data, seed_registry).start()
    try:
        subject = showcase("closed_suspect").name_query()
        assert _search(mesh, subject).persons
        path = mesh.home.agreements
        head, tail = path.read_text().split('id = "ndex"', 1)
        suspended = tail.replace('status = "ACTIVE"', 'status = "SUSPENDED"', 1).replace(
            "version = 1\n", "version = 2\n", 1
        )  # a change carries a higher agreement version (R-ID-2)
        path.write_text(head + 'id = "ndex"' + suspended)
        deadline = time.monotonic() + 10
        reason = ""
        while time.monotonic() < deadline:
            try:
                _search(mesh, subject)
            except LeisApiError as exc:
                reason = exc.reason_name
                break
            time.sleep(0.1)
        assert reason == "AGREEMENT_SUSPENDED"
        path.write_text("this is = not [a registry")  # a broken file is refused; the last good one stays
        time.sleep(0.6)
        with pytest.raises(LeisApiError) as info:
            _search(mesh, subject)
        assert info.value.reason_name == "AGREEMENT_SUSPENDED"
    finally:
        mesh.stop()


def test_health_and_reflection(tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str) -> None:
    mesh = Mesh(tmp_path / "mesh", pki_dir, source_data, seed_registry).start()
    try:
        credentials = grpc.ssl_channel_credentials(
            (pki_dir / "ca.crt").read_bytes(),
            (pki_dir / "agency-ndex.key").read_bytes(),
            (pki_dir / "agency-ndex.crt").read_bytes(),
        )
        with grpc.secure_channel(mesh.address, credentials) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "leis.v1.QueryService", "leis.v1.FederatedSearchService"):
                reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            names = {s.name for r in replies for s in r.list_services_response.service}
        assert {"leis.v1.QueryService", "leis.v1.FederatedSearchService", "grpc.health.v1.Health"} <= names
    finally:
        mesh.stop()


def test_graceful_shutdown_finishes_in_flight_calls(
    tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str
) -> None:
    mesh = Mesh(
        tmp_path / "mesh", pki_dir, source_data, seed_registry, source_faults={"eid": {"latency_ms": 700}}
    ).start()
    outcome: dict[str, object] = {}

    def call() -> None:
        try:
            outcome["response"] = _search(mesh, showcase("closed_suspect").name_query())
        except LeisApiError as exc:
            outcome["error"] = exc.code

    worker = threading.Thread(target=call)
    try:
        worker.start()
        time.sleep(0.3)  # the call is now waiting on the slow source
    finally:
        mesh.stop()
        worker.join(10)
    assert "response" in outcome, outcome
    assert outcome["response"].persons  # type: ignore[attr-defined]


def test_revocation_takes_effect_without_restart(tmp_path: Path, source_data: Path) -> None:
    from leis.pki.ca import init_pki
    from leis.pki.pins import key_pins
    from leis.pki.revocation import revoke
    from leis.registry.agreements import pin_registry_text, seed_registry_text

    pki = tmp_path / "pki"  # a PKI of its own: the revocation must not touch the shared one
    init_pki(pki)
    registry = pin_registry_text(seed_registry_text(), key_pins(pki)).text  # pinned to its keys
    mesh = Mesh(tmp_path / "mesh", pki, source_data, registry).start()
    try:
        subject = showcase("closed_suspect").name_query()
        with mesh.partner("lasd") as client:
            client.search(subject, purpose=LAW, user_id="test.crl", ori="CA0199900")
        revoke(pki, "agency-lasd")
        deadline = time.monotonic() + 10
        reason = ""
        while not reason and time.monotonic() < deadline:
            time.sleep(0.3)
            with mesh.partner("lasd") as client:
                try:
                    client.search(subject, purpose=LAW, user_id="test.crl", ori="CA0199900")
                except LeisApiError as exc:
                    reason = exc.reason_name
        assert reason == "CERTIFICATE_REVOKED"
        _search(mesh, subject)  # other agencies are unaffected
    finally:
        mesh.stop()

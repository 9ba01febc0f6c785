"""The scheduling stage end to end (R-SEC-3, R-AUD-1): one agency's queue does not hold another's call.

The sources answer slowly (300 ms) and the broker runs one call at a time (``work_slots = 1``),
so every call of a burst waits its turn. A bystander's call that arrives behind a flooder's
burst is served next, not after the burst. A call whose wait outlasts its deadline is refused
``RESOURCE_EXHAUSTED`` in time, and one whose client cancels it while it waits is recorded as
cancelled: every call that reached the broker has its ``QUERY_RECEIVED`` and one closing event.
A call waiting for its closing event's commit, and an analyst's outbound search waiting on a
slow partner, do not hold the one slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from meshkit import Mesh

from leis.audit import AuditRecord, StoredEvent
from leis.audit.store import SearchFilter
from leis.broker.config import AdmissionConfig
from leis.common.tls import channel_credentials
from leis_api import from_rpc_error
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import subject_pb2
from leis_sim.partners.server import Fault

SOURCE_LATENCY_MS = 300
CLOSING_COMMIT_SECONDS = 2.0
BURST = 8
ORIS = {"agency-tdex": "TX2279900", "agency-ndex": "WVFBI9900"}


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    slow = {"latency_ms": SOURCE_LATENCY_MS}
    mesh = Mesh(
        tmp_path_factory.mktemp("mesh-scheduling"),
        pki_dir,
        source_data,
        seed_registry,
        source_faults={"eid": slow, "tecs": slow},
        source_deadline_ms=8000,
        admission=AdmissionConfig(work_slots=1, agency_concurrent_calls=BURST, max_queue_seconds=30),
    ).start()
    try:
        yield mesh
    finally:
        mesh.stop()


def _search(
    channel: grpc.Channel,
) -> grpc.UnaryUnaryMultiCallable[query_pb.SearchRequest, query_pb.SearchResponse]:
    return query_grpc.QueryServiceStub(channel).Search


def _request(cert: str, user_id: str) -> query_pb.SearchRequest:
    return query_pb.SearchRequest(
        subject=subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Ana", last_name="Ruiz")),
        purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
        end_user=subject_pb2.EndUser(user_id=user_id, ori=ORIS[cert]),
    )


def _closing_of(mesh: Mesh, user_id: str) -> list[str]:
    """The user's events as ``TYPE/STATUS``, waiting a little for a closing event being written."""
    assert mesh.audit_log is not None
    give_up = time.monotonic() + 5
    while True:
        rows = mesh.call(mesh.audit_log.search(SearchFilter(user_id=user_id), None, 10))
        events = sorted(f"{row.event_type}/{row.status_code or ''}" for row in rows)
        if len(events) >= 2 or time.monotonic() > give_up:
            return events
        time.sleep(0.1)


def test_a_bystander_is_served_next_not_after_the_flood(mesh: Mesh, pki_dir: Path) -> None:
    finished: list[str] = []
    with (
        grpc.secure_channel(mesh.address, channel_credentials(pki_dir, "agency-tdex")) as flood,
        grpc.secure_channel(mesh.address, channel_credentials(pki_dir, "agency-ndex")) as bystander,
    ):
        flood_calls = [
            _search(flood).future(_request("agency-tdex", f"sch.flood{i}"), timeout=30) for i in range(BURST)
        ]
        for call in flood_calls:
            call.add_done_callback(lambda _: finished.append("flood"))
        time.sleep(0.2)  # the burst is queued before the bystander calls
        reply = _search(bystander)(_request("agency-ndex", "sch.bystander"), timeout=30)
        finished.append("bystander")
        for call in flood_calls:
            call.result()
    assert reply.audit_reference
    # One slot: the flood call running when the bystander arrived, perhaps the one just
    # handed the slot, then the bystander; FIFO would have put it after all eight.
    assert finished.index("bystander") <= 2, finished


def test_a_call_whose_wait_outlasts_its_deadline_is_refused_in_time_and_audited(
    mesh: Mesh, pki_dir: Path
) -> None:
    with grpc.secure_channel(mesh.address, channel_credentials(pki_dir, "agency-tdex")) as channel:
        ahead = [
            _search(channel).future(_request("agency-tdex", f"sch.ahead{i}"), timeout=30) for i in range(4)
        ]
        time.sleep(0.2)
        with pytest.raises(grpc.RpcError) as refused:
            _search(channel)(_request("agency-tdex", "sch.late"), timeout=1.0)
        for call in ahead:
            call.result()
    error = from_rpc_error(refused.value)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason_name == "BROKER_CONCURRENCY_LIMITED"
    assert error.retry_delay is not None
    assert _closing_of(mesh, "sch.late") == ["QUERY_RECEIVED/", "REFUSED/RESOURCE_EXHAUSTED"]


def test_a_call_cancelled_while_it_waits_is_recorded_as_cancelled(mesh: Mesh, pki_dir: Path) -> None:
    with grpc.secure_channel(mesh.address, channel_credentials(pki_dir, "agency-tdex")) as channel:
        ahead = [
            _search(channel).future(_request("agency-tdex", f"sch.before{i}"), timeout=30) for i in range(3)
        ]
        time.sleep(0.2)
        gone = _search(channel).future(_request("agency-tdex", "sch.gone"), timeout=30)
        time.sleep(0.2)  # queued behind the three
        assert gone.cancel()  # type: ignore[no-untyped-call]
        for call in ahead:
            call.result()
    assert _closing_of(mesh, "sch.gone") == ["QUERY_RECEIVED/", "REFUSED/CANCELLED"]


def test_a_call_gives_its_slot_back_before_its_closing_event_is_committed(
    mesh: Mesh, pki_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting for the audit store to commit a closing event is the writer's work, not the
    call's: with one slot, another agency's call runs meanwhile (the answer still waits)."""
    log = mesh.audit_log
    assert log is not None
    append = log.append

    async def slow_commit(record: AuditRecord) -> StoredEvent:
        if record.event_type == "RESPONSE_SENT" and record.user_id == "sch.slowclose":
            await asyncio.sleep(CLOSING_COMMIT_SECONDS)
        return await append(record)

    monkeypatch.setattr(log, "append", slow_commit)
    with (
        grpc.secure_channel(mesh.address, channel_credentials(pki_dir, "agency-tdex")) as first,
        grpc.secure_channel(mesh.address, channel_credentials(pki_dir, "agency-ndex")) as second,
    ):
        closing = _search(first).future(_request("agency-tdex", "sch.slowclose"), timeout=30)
        time.sleep(2 * SOURCE_LATENCY_MS / 1000)  # its work done, its closing event being committed
        reply = _search(second)(_request("agency-ndex", "sch.meanwhile"), timeout=30)
        assert not closing.done()
        assert closing.result().audit_reference
    assert reply.audit_reference
    assert _closing_of(mesh, "sch.slowclose") == ["QUERY_RECEIVED/", "RESPONSE_SENT/OK"]


@pytest.fixture(scope="module")
def outbound_mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(
        tmp_path_factory.mktemp("mesh-scheduling-outbound"),
        pki_dir,
        source_data,
        seed_registry,
        with_partners=True,
        partner_faults={"azlink": Fault(latency_ms=2500)},
        outbound_deadline_ms=3000,
        admission=AdmissionConfig(work_slots=1),
    ).start()
    try:
        yield mesh
    finally:
        mesh.stop()


def test_a_slow_outbound_search_does_not_hold_the_broker(outbound_mesh: Mesh) -> None:
    subject = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Ana", last_name="Ruiz"))
    law = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
    with ThreadPoolExecutor(1) as pool, outbound_mesh.analyst() as analyst:
        federated = pool.submit(
            analyst.federated_search, subject, purpose=law, user_id="sch.analyst", ori="DCICE0000"
        )
        time.sleep(0.5)  # the outbound search is waiting on AZLINK
        with outbound_mesh.partner("ndex") as partner:
            reply = partner.search(subject, purpose=law, user_id="sch.partner", ori=ORIS["agency-ndex"])
        still_waiting = not federated.done()
        states = {p.agency_id: p.state for p in federated.result(timeout=30).partners}
    assert reply.audit_reference
    assert still_waiting, "the partner's search waited for the outbound search to end"
    assert len(states) > 1

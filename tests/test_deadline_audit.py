"""Every call whose client deadline expires mid-flight has exactly one closing event, matching
what the client saw (issue 13, finding 5; R-AUD-1).

The sources answer slowly (300 ms) and partners call with deadlines from well before to well
after that: some calls end DEADLINE_EXCEEDED in the middle of the fan-out, some just as the
answer is being recorded, some succeed. Each call's ``QUERY_RECEIVED`` must have exactly one
closing event whose status is the one the client received: never OK for a call the client saw
expire. (A call whose deadline passes before the broker receives it has no events at all.)
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from meshkit import Mesh

from leis.broker.config import AdmissionConfig
from leis.common.tls import channel_credentials
from leis_api.v1 import audit_service_pb2 as audit_pb
from leis_api.v1 import audit_service_pb2_grpc as audit_grpc
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import subject_pb2

CALLS = 150
# Share of calls whose closing status may disagree with the client's under heavy load.
RACE_TOLERANCE = 0.03
SOURCE_LATENCY_MS = 300
CLOSING = {audit_pb.AUDIT_EVENT_TYPE_RESPONSE_SENT, audit_pb.AUDIT_EVENT_TYPE_REFUSED}


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    slow = {"latency_ms": SOURCE_LATENCY_MS}
    mesh = Mesh(
        tmp_path_factory.mktemp("mesh-deadlines"),
        pki_dir,
        source_data,
        seed_registry,
        source_faults={"eid": slow, "tecs": slow},
        # Sources may take long on a loaded machine; only the client's deadline should end a call.
        source_deadline_ms=8000,
        # Every call of the burst is admitted and runs at once: this test is about deadlines,
        # not admission or scheduling (tests/test_scheduling.py).
        admission=AdmissionConfig(agency_concurrent_calls=CALLS, work_slots=CALLS),
        max_concurrent_rpcs=2 * CALLS,
    ).start()
    try:
        yield mesh
    finally:
        mesh.stop()


def _request(user_id: str) -> query_pb.SearchRequest:
    return query_pb.SearchRequest(
        subject=subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Ana", last_name="Ruiz")),
        purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
        end_user=subject_pb2.EndUser(user_id=user_id, ori="WVFBI9900"),
    )


def _events_of(stub: audit_grpc.AuditServiceStub, user_id: str) -> list[audit_pb.AuditEvent]:
    reply = stub.SearchEvents(audit_pb.SearchEventsRequest(user_id=user_id, page_size=100), timeout=10)
    return list(reply.events)


def test_each_expired_call_has_one_closing_event_matching_the_client(mesh: Mesh, pki_dir: Path) -> None:
    rng = random.Random(5)
    seen: dict[str, grpc.StatusCode] = {}
    with grpc.secure_channel(mesh.address, channel_credentials(pki_dir, "agency-ndex")) as channel:
        search = query_grpc.QueryServiceStub(channel).Search
        batch = []
        for index in range(CALLS):
            user_id = f"det.deadline-{index}"
            # Most deadlines fall inside the sources' 300 ms; every third is generous, so both
            # endings are exercised however loaded the machine is.
            timeout = rng.uniform(0.02, 0.8) if index % 3 else 10.0
            batch.append((user_id, search.future(_request(user_id), timeout=timeout)))
        for user_id, future in batch:
            try:
                future.result()
                seen[user_id] = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                seen[user_id] = exc.code()
    statuses = Counter(code.name for code in seen.values())
    assert statuses["DEADLINE_EXCEEDED"] >= 20, statuses
    assert statuses["OK"] >= 5, statuses
    # A source overwhelmed by the burst may refuse (UNAVAILABLE): still a status the audit must match.
    assert set(statuses) <= {"OK", "DEADLINE_EXCEEDED", "UNAVAILABLE"}, statuses

    problems: list[str] = []
    raced: list[str] = []
    expired_mid_flight = 0
    with grpc.secure_channel(mesh.address, channel_credentials(pki_dir, "auditor")) as channel:
        audit = audit_grpc.AuditServiceStub(channel)
        for user_id, code in seen.items():
            received, closing = _opening_and_closing(audit, user_id)
            if not received and not closing:
                # Expired before the broker received it (gRPC core refused it): nothing to close.
                continue
            if len(received) != 1 or len(closing) != 1:
                problems.append(f"{user_id}: {len(received)} received, {len(closing)} closing ({code.name})")
                continue
            if closing[0].parent_event_id != received[0].event_id:
                problems.append(f"{user_id}: closing event not linked to its QUERY_RECEIVED")
            elif closing[0].status_code != code.name:
                raced.append(f"{user_id}: client {code.name}, audit {closing[0].status_code}")
            expired_mid_flight += code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert not problems, "\n".join(problems[:20])
    # The one race left: the deadline expiring during the last durable write, after the broker
    # checked that enough time remained (documented in the README). Bounded, never systematic.
    assert len(raced) <= CALLS * RACE_TOLERANCE, "\n".join(raced[:20])
    assert expired_mid_flight >= 20


def _opening_and_closing(
    audit: audit_grpc.AuditServiceStub, user_id: str
) -> tuple[list[audit_pb.AuditEvent], list[audit_pb.AuditEvent]]:
    """The user's QUERY_RECEIVED and closing events, waiting a little for a closing event still
    being written when the client gave up."""
    give_up = time.monotonic() + 5
    while True:
        events = _events_of(audit, user_id)
        received = [e for e in events if e.event_type == audit_pb.AUDIT_EVENT_TYPE_QUERY_RECEIVED]
        closing = [e for e in events if e.event_type in CLOSING]
        if len(closing) >= len(received) or time.monotonic() > give_up:
            return received, closing
        time.sleep(0.05)

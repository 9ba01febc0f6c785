"""``AuditService`` over real grpc.aio with mTLS: auditor only, metadata search, audited reads (SPEC 6)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from test_audit_kit import CANARY_NAME, CANARY_SSN, fill, open_log

from leis.audit import AuditKeys, AuditLog, SearchFilter
from leis.audit.export import verify_export
from leis.audit.service import AuditServicer
from leis.common.tls import AUDITOR_IDENTITY, agency_client_name, channel_credentials, server_credentials
from leis_api import from_rpc_error
from leis_api.v1 import audit_service_pb2 as pb
from leis_api.v1 import audit_service_pb2_grpc


@dataclass
class Served:
    log: AuditLog
    keys: AuditKeys
    port: int
    pki_dir: Path

    def stub(
        self, client: str = "auditor"
    ) -> tuple[grpc.aio.Channel, audit_service_pb2_grpc.AuditServiceAsyncStub]:
        channel = grpc.aio.secure_channel(f"127.0.0.1:{self.port}", channel_credentials(self.pki_dir, client))
        return channel, audit_service_pb2_grpc.AuditServiceStub(channel)


@pytest.fixture
async def served(tmp_path: Path, pki_dir: Path) -> AsyncIterator[Served]:
    keys = AuditKeys.generate()
    log = await open_log(tmp_path / "audit.db", keys, every=4)
    server = grpc.aio.server()
    audit_service_pb2_grpc.add_AuditServiceServicer_to_server(
        AuditServicer(log, known_agencies=lambda: {"ndex", "nypd"}), server
    )
    port = server.add_secure_port("127.0.0.1:0", server_credentials(pki_dir, "broker"))
    await server.start()
    try:
        yield Served(log, keys, port, pki_dir)
    finally:
        await server.stop(0)
        await log.close()


async def _error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_auditor_pages_through_metadata_search(served: Served) -> None:
    await fill(served.log, 30)
    channel, stub = served.stub()
    async with channel:
        seen: list[str] = []
        token = ""
        while True:
            page = await stub.SearchEvents(
                pb.SearchEventsRequest(user_id="officer-1", page_size=4, page_token=token)
            )
            assert all(e.user_id == "officer-1" and e.agency_id == "ndex" for e in page.events)
            seen += [e.event_id for e in page.events]
            token = page.next_page_token
            if not token:
                break
        assert len(seen) == len(set(seen)) == 10
        first = (await stub.SearchEvents(pb.SearchEventsRequest(user_id="officer-1", page_size=1))).events[0]
        assert first.event_type == pb.AUDIT_EVENT_TYPE_RESPONSE_SENT
        assert first.outcome == pb.AUDIT_OUTCOME_OK
        assert first.released_fields == ["name", "dob"]
        assert first.seq == 29
        assert len(first.hash) == 64

        page = await stub.SearchEvents(pb.SearchEventsRequest(user_id="officer-1", page_size=4))
        other = await _error(
            stub.SearchEvents(pb.SearchEventsRequest(user_id="officer-2", page_token=page.next_page_token))
        )
        assert other.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert from_rpc_error(other).reason_name == "PAGE_TOKEN_FILTER_MISMATCH"
        bad = await _error(stub.SearchEvents(pb.SearchEventsRequest(page_token="garbage!")))
        assert from_rpc_error(bad).reason_name == "BAD_PAGE_TOKEN"
        big = await _error(stub.SearchEvents(pb.SearchEventsRequest(page_size=5000)))
        assert from_rpc_error(big).reason_name == "BAD_PAGE_SIZE"
        trace = await _error(stub.SearchEvents(pb.SearchEventsRequest(trace_id="not-a-trace")))
        assert [v.field for v in from_rpc_error(trace).field_violations] == ["trace_id"]
        when = timestamp_pb2.Timestamp(seconds=2_000_000_000)
        backwards = await _error(stub.SearchEvents(pb.SearchEventsRequest(start_time=when, end_time=when)))
        assert from_rpc_error(backwards).reason_name == "BAD_TIME_RANGE"


async def test_content_cannot_be_searched_through_the_api(served: Served) -> None:
    await fill(served.log, 6)
    channel, stub = served.stub()
    async with channel:
        for value in (CANARY_NAME, CANARY_SSN):
            for field in ("user_id", "agency_id", "ori"):
                filters: dict[str, Any] = {field: value}
                found = await stub.SearchEvents(pb.SearchEventsRequest(**filters))
                assert list(found.events) == []
    assert "content" not in pb.SearchEventsRequest.DESCRIPTOR.fields_by_name
    assert not any("subject" in f or "name" in f for f in pb.SearchEventsRequest.DESCRIPTOR.fields_by_name)


async def test_get_event_is_itself_audited_before_content_is_read(served: Served) -> None:
    stored = await fill(served.log, 3)
    channel, stub = served.stub()
    async with channel:
        reply = await stub.GetEvent(
            pb.GetEventRequest(event_id=stored[1].event_id, justification="case 42 review")
        )
        assert reply.event.event_id == stored[1].event_id
        assert json.loads(reply.content_json)["subject"]["ssn"] == CANARY_SSN
        reads = await served.log.search(SearchFilter(event_type="AUDIT_READ"), None, 10)
        assert len(reads) == 1
        assert (reads[0].parent_event_id, reads[0].user_id) == (stored[1].event_id, AUDITOR_IDENTITY)
        assert reads[0].cert_fingerprint
        opened = await served.log.get_event(reads[0].event_id)
        assert opened is not None
        assert opened[1]["justification"] == "case 42 review"

        missing = await _error(stub.GetEvent(pb.GetEventRequest(event_id=stored[0].event_id)))
        assert [v.field for v in from_rpc_error(missing).field_violations] == ["justification"]
        unknown = await _error(
            stub.GetEvent(
                pb.GetEventRequest(event_id="00000000-0000-4000-8000-000000000000", justification="x")
            )
        )
        assert unknown.code() == grpc.StatusCode.NOT_FOUND

        # Fail closed: when the read cannot be recorded, nothing is disclosed.
        writer = served.log.store._writer  # type: ignore[attr-defined]
        writer.execute("PRAGMA query_only = ON")
        try:
            refused = await _error(
                stub.GetEvent(pb.GetEventRequest(event_id=stored[2].event_id, justification="y"))
            )
        finally:
            writer.execute("PRAGMA query_only = OFF")
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
        assert CANARY_SSN not in (refused.details() or "")
        assert len(await served.log.search(SearchFilter(event_type="AUDIT_READ"), None, 10)) == 1


async def test_only_the_auditor_certificate_is_served(served: Served) -> None:
    stored = await fill(served.log, 2)
    channel, stub = served.stub(agency_client_name("ndex"))
    async with channel:
        for call in (
            stub.SearchEvents(pb.SearchEventsRequest()),
            stub.GetEvent(pb.GetEventRequest(event_id=stored[0].event_id, justification="curious")),
            stub.VerifyLog(pb.VerifyLogRequest()),
            stub.ExportAgencyEvents(pb.ExportAgencyEventsRequest(agency_id="ndex")),
            stub.GetReviewReport(pb.GetReviewReportRequest(start_time=timestamp_pb2.Timestamp(seconds=1))),
        ):
            error = await _error(call)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert from_rpc_error(error).reason_name == "NOT_AUDITOR"
    assert await served.log.search(SearchFilter(event_type="AUDIT_READ"), None, 10) == []
    channel, stub = served.stub("dhs-analyst")
    async with channel:
        assert (
            await _error(stub.VerifyLog(pb.VerifyLogRequest()))
        ).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_verify_export_and_review_over_the_api(served: Served) -> None:
    await fill(served.log, 8)
    await fill(
        served.log,
        3,
        agency_id="nypd",
        event_type="REFUSED",
        outcome="REFUSED",
        status_code="PERMISSION_DENIED",
    )
    channel, stub = served.stub()
    async with channel:
        verified = await stub.VerifyLog(pb.VerifyLogRequest())
        assert (verified.intact, verified.events_checked) == (True, 11)
        assert verified.checkpoints_checked >= 2

        export = await stub.ExportAgencyEvents(pb.ExportAgencyEventsRequest(agency_id="nypd"))
        assert export.event_count == 3
        check = verify_export(export.bundle, served.keys.trusted)
        assert check.ok, check.problem
        assert (check.agency_id, check.trusted_key) == ("nypd", True)
        unknown = await _error(stub.ExportAgencyEvents(pb.ExportAgencyEventsRequest(agency_id="nowhere")))
        assert from_rpc_error(unknown).reason_name == "UNKNOWN_AGENCY"

        review = await stub.GetReviewReport(
            pb.GetReviewReportRequest(start_time=timestamp_pb2.Timestamp(seconds=1_000_000_000))
        )
        report = json.loads(review.report_json)
        assert report["agencies"]["ndex"]["requests"] == 8
        assert report["agencies"]["nypd"]["refused"] == 3
        assert "Agency nypd" in review.report_text
        needs_start = await _error(stub.GetReviewReport(pb.GetReviewReportRequest()))
        assert from_rpc_error(needs_start).reason_name == "MISSING_START_TIME"

    served.log.store._writer.execute("DROP TRIGGER audit_event_append_only")  # type: ignore[attr-defined]
    served.log.store._writer.execute("UPDATE audit_event SET reason = 'edited' WHERE seq = 6")  # type: ignore[attr-defined]
    channel, stub = served.stub()
    async with channel:
        broken = await stub.VerifyLog(pb.VerifyLogRequest())
    assert (broken.intact, broken.broken_chain_id, broken.broken_seq) == (False, "broker-1", 6)
    assert "hash mismatch" in broken.problem

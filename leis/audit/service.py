"""``leis.v1.AuditService`` (grpc.aio): metadata search, audited content reads, verify, export, review.

Served by the broker to the auditor certificate only (R-AUD-3, R-AUD-6): every
call first passes ``authorize(context)``, which returns the auditor's name or
``None``; by default it accepts a verified client certificate naming one of
``auditor_identities`` (no certificate → UNAUTHENTICATED; any other certificate →
PERMISSION_DENIED with reason NOT_AUDITOR). Search takes metadata filters only,
with AIP-158 pagination; page tokens are bound to the filters. GetEvent records
an AUDIT_READ event before it decrypts anything, and refuses when it cannot.

Every call holds a bounded amount in memory however large the log (issue 13):
StreamAgencyEvents writes the export a page at a time (``context.write``, so the
interceptor chain awaits it as one call and audits how it ended), the one-reply
ExportAgencyEvents refuses above ``MAX_UNARY_EXPORT_EVENTS``, VerifyLog reads a
page at a time and, given ``max_events``, stops at a signed checkpoint with a
resume token, and GetReviewReport holds tallies for one page of agencies. At most
``LOG_PASSES`` of these passes over the log (verify, review, unary export) run at once, so
many auditors asking together do not multiply what the broker holds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from leis.audit.crypto import ContentKeyUnavailable
from leis.audit.errors import AuditUnavailable
from leis.audit.export import DEFAULT_STREAM_PAGE, ExportTooLarge, export_agency, stream_agency
from leis.audit.log import AuditLog, now_us
from leis.audit.model import AuditRecord, EventRow
from leis.audit.review import build_report_page, render_text
from leis.audit.store import Cursor, SearchFilter
from leis.audit.verify import CheckpointNotFound, VerifyReport, verify_store
from leis.common.errors import (
    AUDIT_UNAVAILABLE,
    BAD_AGENCY,
    BAD_FILTER,
    BAD_PAGE_SIZE,
    BAD_PAGE_TOKEN,
    BAD_REQUEST,
    BAD_TIME_RANGE,
    CHECKPOINT_NOT_FOUND,
    CONTENT_KEY_UNAVAILABLE,
    EVENT_NOT_FOUND,
    EXPORT_TOO_LARGE,
    MISSING_START_TIME,
    NO_CLIENT_CERTIFICATE,
    NOT_AUDITOR,
    PAGE_TOKEN_FILTER_MISMATCH,
    UNKNOWN_AGENCY,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    LeisError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    abort,
)
from leis.common.tls import AUDITOR_IDENTITY, peer_identity
from leis_api.v1 import audit_service_pb2 as pb
from leis_api.v1 import audit_service_pb2_grpc, subject_pb2

Context = grpc.aio.ServicerContext[Any, Any]
Authorize = Callable[[Any], str | None]
T = TypeVar("T")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_STREAM_PAGE = 1000
# Passes over the log (verify, review, unary export) at once; the others wait their turn.
LOG_PASSES = 2
MAX_UNARY_EXPORT_EVENTS = 10_000
DEFAULT_REVIEW_AGENCIES = 100
MAX_REVIEW_AGENCIES = 1000
MAX_VERIFY_EVENTS = 10_000_000
TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
AGENCY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def certificate_authorizer(auditor_identities: Collection[str] = (AUDITOR_IDENTITY,)) -> Authorize:
    """Accept a verified client certificate whose DNS name is an auditor identity."""
    allowed = frozenset(auditor_identities)

    def authorize(context: Any) -> str | None:
        identity = peer_identity(context)
        if identity is None:
            raise Unauthenticated(NO_CLIENT_CERTIFICATE, "a verified client certificate is required")
        for name in identity.dns_names:
            if name in allowed:
                return name
        return None

    return authorize


def _timestamp(micros: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def _enum(enum: Any, prefix: str, name: str) -> Any:
    full = f"{prefix}{name}"
    return enum.Value(full) if full in enum.keys() else 0  # noqa: SIM118 - an EnumTypeWrapper


def to_proto(row: EventRow) -> pb.AuditEvent:
    """One stored event as the API returns it (metadata only)."""
    return pb.AuditEvent(
        event_id=row.event_id,
        chain_id=row.chain_id,
        seq=row.seq,
        event_time=_timestamp(row.event_time_us),
        event_type=_enum(pb.AuditEventType, "AUDIT_EVENT_TYPE_", row.event_type),
        direction=_enum(pb.AuditDirection, "AUDIT_DIRECTION_", row.direction),
        agency_id=row.agency_id,
        ori=row.ori,
        user_id=row.user_id,
        cert_fingerprint=row.cert_fingerprint,
        purpose=_enum(subject_pb2.Purpose, "PURPOSE_", row.purpose),
        outcome=_enum(pb.AuditOutcome, "AUDIT_OUTCOME_", row.outcome),
        status_code=row.status_code,
        reason=row.reason,
        trace_id=row.trace_id,
        method=row.method,
        disclosed_count=row.disclosed_count,
        source_systems=row.source_systems,
        disclosed_record_ids=row.disclosed_record_ids,
        released_fields=row.released_fields,
        query_categories=[
            c
            for c in (_enum(subject_pb2.QueryCategory, "QUERY_CATEGORY_", n) for n in row.query_categories)
            if c
        ],
        hash=row.hash.hex(),
        parent_event_id=row.parent_event_id,
    )


def _micros(stamp: timestamp_pb2.Timestamp) -> int:
    return stamp.seconds * 1_000_000 + stamp.nanos // 1000


def _time_range(
    start: timestamp_pb2.Timestamp | None,
    end: timestamp_pb2.Timestamp | None,
    *,
    start_required: bool = False,
) -> tuple[int | None, int | None]:
    start_us = _micros(start) if start is not None else None
    end_us = _micros(end) if end is not None else None
    if start_required and start_us is None:
        raise InvalidArgument(
            MISSING_START_TIME,
            "start_time is required",
            violations=[FieldViolation("start_time", "required")],
        )
    if start_us is not None and end_us is not None and start_us >= end_us:
        raise InvalidArgument(
            BAD_TIME_RANGE,
            "start_time must be before end_time",
            violations=[FieldViolation("end_time", "must be after start_time")],
        )
    return start_us, end_us


def _enum_filter(enum: Any, prefix: str, value: int, field: str) -> str:
    if value == 0:
        return ""
    if value not in enum.values():
        raise InvalidArgument(
            BAD_FILTER, f"{field}: unknown value", violations=[FieldViolation(field, "unknown")]
        )
    return str(enum.Name(value)).removeprefix(prefix)


def encode_page_token(filters: SearchFilter, cursor: Cursor) -> str:
    """An opaque token naming the position after a page, bound to the filters."""
    body = {"v": 1, "f": filters.fingerprint(), "t": cursor.time_us, "c": cursor.chain_id, "s": cursor.seq}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_page_token(token: str, filters: SearchFilter) -> Cursor:
    """The cursor in ``token``; INVALID_ARGUMENT when malformed or issued for other filters."""
    violation = [FieldViolation("page_token", "not a token returned by SearchEvents with these filters")]
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = Cursor(int(body["t"]), str(body["c"]), int(body["s"]))
        bound = body["f"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(BAD_PAGE_TOKEN, "page_token is malformed", violations=violation) from exc
    if bound != filters.fingerprint():
        raise InvalidArgument(
            PAGE_TOKEN_FILTER_MISMATCH, "page_token was issued for different filters", violations=violation
        )
    return cursor


def _page_size(value: int, default: int, cap: int, field: str) -> int:
    size = value or default
    if not 1 <= size <= cap:
        raise InvalidArgument(
            BAD_PAGE_SIZE,
            f"{field} must be between 0 and {cap}",
            violations=[FieldViolation(field, f"must be between 0 and {cap}")],
        )
    return size


def encode_resume_token(chain_filter: str, chain_id: str, seq: int) -> str:
    """An opaque VerifyLog resume token: continue ``chain_id`` from its signed checkpoint ``seq``."""
    body = {"v": 1, "f": chain_filter, "c": chain_id, "s": seq}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_resume_token(token: str, chain_filter: str) -> tuple[str, int]:
    """``(chain, checkpoint seq)`` in a resume token; INVALID_ARGUMENT when malformed or for another chain."""
    violation = [FieldViolation("resume_token", "not a token returned by VerifyLog with this chain_id")]
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start = (str(body["c"]), int(body["s"]))
        bound = body["f"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(BAD_PAGE_TOKEN, "resume_token is malformed", violations=violation) from exc
    if bound != chain_filter or start[1] < 0:
        raise InvalidArgument(
            PAGE_TOKEN_FILTER_MISMATCH, "resume_token was issued for another chain_id", violations=violation
        )
    return start


def encode_review_token(period: str, last_agency: str) -> str:
    """An opaque GetReviewReport page token: the agencies after ``last_agency``, bound to the period."""
    body = {"v": 1, "p": period, "a": last_agency}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_review_token(token: str, period: str) -> str:
    """The last agency of the previous page; INVALID_ARGUMENT when malformed or for another period."""
    violation = [FieldViolation("page_token", "not a token returned by GetReviewReport for this period")]
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        last, bound = str(body["a"]), body["p"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(BAD_PAGE_TOKEN, "page_token is malformed", violations=violation) from exc
    if bound != period:
        raise InvalidArgument(
            PAGE_TOKEN_FILTER_MISMATCH, "page_token was issued for another period", violations=violation
        )
    return last


async def _fail(context: Context, error: LeisError) -> NoReturn:
    """Abort the call with the error's status and rich details."""
    await abort(context, error)
    raise error  # not reached: abort() raises; this tells the type checker


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    """The auditor's window on the audit log."""

    def __init__(
        self,
        log: AuditLog,
        *,
        authorize: Authorize | None = None,
        auditor_identities: Collection[str] = (AUDITOR_IDENTITY,),
        known_agencies: Callable[[], Collection[str]] | None = None,
        timezone: str = "UTC",
        log_passes: int = LOG_PASSES,
    ) -> None:
        self._log = log
        self._authorize = authorize or certificate_authorizer(auditor_identities)
        self._known_agencies = known_agencies
        self._timezone = timezone
        self._passes = asyncio.Semaphore(log_passes)

    async def _serve(self, context: Context, handler: Callable[[str], Awaitable[T]]) -> T:
        try:
            auditor = self._authorize(context)
            if not auditor:
                raise PermissionDenied(NOT_AUDITOR, "only the auditor may use the audit service")
            return await handler(auditor)
        except AuditUnavailable:
            await _fail(context, Unavailable(AUDIT_UNAVAILABLE, "the audit log is unavailable"))
        except LeisError as err:
            await _fail(context, err)

    async def _pass(self, func: Callable[[], T]) -> T:
        """``func``, one pass over the log (verify, review, unary export), once fewer than
        ``log_passes`` run: the memory they hold is bounded by that many passes, however many
        auditors ask at once. A call waiting here holds nothing; its deadline still applies."""
        async with self._passes:
            return await self._log.run(func)

    # ------------------------------------------------------------------ RPCs

    async def SearchEvents(
        self, request: pb.SearchEventsRequest, context: Context
    ) -> pb.SearchEventsResponse:
        async def handle(_: str) -> pb.SearchEventsResponse:
            filters = self._filters(request)
            size = _page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, "page_size")
            cursor = decode_page_token(request.page_token, filters) if request.page_token else None
            rows = await self._log.search(filters, cursor, size + 1)
            token = ""
            if len(rows) > size:
                rows = rows[:size]
                last = rows[-1]
                token = encode_page_token(filters, Cursor(last.event_time_us, last.chain_id, last.seq))
            return pb.SearchEventsResponse(events=[to_proto(r) for r in rows], next_page_token=token)

        return await self._serve(context, handle)

    @staticmethod
    def _filters(request: pb.SearchEventsRequest) -> SearchFilter:
        violations = []
        if request.trace_id and not TRACE_ID_RE.match(request.trace_id):
            violations.append(FieldViolation("trace_id", "must be 32 lowercase hex characters"))
        for name in ("user_id", "agency_id", "ori"):
            if len(getattr(request, name)) > 256:
                violations.append(FieldViolation(name, "longer than 256 characters"))
        if violations:
            raise InvalidArgument(BAD_FILTER, "malformed search filter", violations=violations)
        start, end = _time_range(
            request.start_time if request.HasField("start_time") else None,
            request.end_time if request.HasField("end_time") else None,
        )
        return SearchFilter(
            user_id=request.user_id,
            agency_id=request.agency_id,
            ori=request.ori,
            start_us=start,
            end_us=end,
            event_type=_enum_filter(pb.AuditEventType, "AUDIT_EVENT_TYPE_", request.event_type, "event_type"),
            outcome=_enum_filter(pb.AuditOutcome, "AUDIT_OUTCOME_", request.outcome, "outcome"),
            trace_id=request.trace_id,
        )

    async def GetEvent(self, request: pb.GetEventRequest, context: Context) -> pb.GetEventResponse:
        async def handle(auditor: str) -> pb.GetEventResponse:
            violations = []
            try:
                event_id = str(uuid.UUID(request.event_id))
            except ValueError:
                event_id = ""
                violations.append(FieldViolation("event_id", "must be a UUID"))
            if not 1 <= len(request.justification.strip()) <= 200:
                violations.append(FieldViolation("justification", "required, 1-200 characters"))
            if violations:
                raise InvalidArgument(BAD_REQUEST, "malformed GetEvent request", violations=violations)
            found = await self._log.run(self._log.store.get, event_id)
            if found is None:
                raise NotFound(EVENT_NOT_FOUND, "no audit event with this id")
            row, _ = found
            identity = peer_identity(context)
            await self._log.append(
                AuditRecord(
                    event_type="AUDIT_READ",
                    direction="INTERNAL",
                    method="/leis.v1.AuditService/GetEvent",
                    user_id=auditor,
                    cert_fingerprint=identity.fingerprint_sha256 if identity else "",
                    outcome="OK",
                    status_code="OK",
                    reason="CONTENT_READ",
                    parent_event_id=row.event_id,
                    content={"event_id": row.event_id, "justification": request.justification},
                )
            )
            try:
                opened = await self._log.get_event(event_id)
            except ContentKeyUnavailable as exc:
                raise FailedPrecondition(
                    CONTENT_KEY_UNAVAILABLE, "the event's content key is unavailable"
                ) from exc
            if opened is None:
                raise NotFound(EVENT_NOT_FOUND, "no audit event with this id")
            event, content = opened
            return pb.GetEventResponse(
                event=to_proto(event), content_json=json.dumps(content, ensure_ascii=False)
            )

        return await self._serve(context, handle)

    async def VerifyLog(self, request: pb.VerifyLogRequest, context: Context) -> pb.VerifyLogResponse:
        async def handle(_: str) -> pb.VerifyLogResponse:
            budget = (
                _page_size(request.max_events, 0, MAX_VERIFY_EVENTS, "max_events")
                if request.max_events
                else None
            )
            chain = request.chain_id
            start: tuple[str, int] | None = None
            if request.resume_token:
                start = decode_resume_token(request.resume_token, chain)
            elif request.from_checkpoint_seq:
                if not chain or request.from_checkpoint_seq < 0:
                    raise InvalidArgument(
                        BAD_FILTER,
                        "from_checkpoint_seq needs chain_id and a positive seq",
                        violations=[FieldViolation("from_checkpoint_seq", "needs chain_id; positive")],
                    )
                start = (chain, request.from_checkpoint_seq)
            try:
                report = await self._pass(
                    lambda: verify_store(
                        self._log.store, self._log.keys, chain_id=chain, start=start, max_events=budget
                    )
                )
            except CheckpointNotFound as exc:
                raise NotFound(CHECKPOINT_NOT_FOUND, str(exc)) from exc
            return _verify_response(report, chain)

        return await self._serve(context, handle)

    async def ExportAgencyEvents(
        self, request: pb.ExportAgencyEventsRequest, context: Context
    ) -> pb.ExportAgencyEventsResponse:
        async def handle(_: str) -> pb.ExportAgencyEventsResponse:
            agency = self._agency(request.agency_id)
            start, end = _time_range(
                request.start_time if request.HasField("start_time") else None,
                request.end_time if request.HasField("end_time") else None,
            )
            created = now_us()
            try:
                bundle, count = await self._pass(
                    lambda: export_agency(
                        self._log.store,
                        self._log.keys,
                        agency,
                        start_us=start or 0,
                        end_us=end or created + 1,
                        created_us=created,
                        max_events=MAX_UNARY_EXPORT_EVENTS,
                    )
                )
            except ExportTooLarge as exc:
                raise FailedPrecondition(
                    EXPORT_TOO_LARGE,
                    f"more than {MAX_UNARY_EXPORT_EVENTS} events: use StreamAgencyEvents",
                ) from exc
            return pb.ExportAgencyEventsResponse(bundle=bundle, event_count=count)

        return await self._serve(context, handle)

    async def StreamAgencyEvents(  # type: ignore[override] # read/write API: a coroutine, see the module doc
        self, request: pb.StreamAgencyEventsRequest, context: Context
    ) -> None:
        async def handle(_: str) -> None:
            agency = self._agency(request.agency_id)
            size = _page_size(request.page_size, DEFAULT_STREAM_PAGE, MAX_STREAM_PAGE, "page_size")
            start, end = _time_range(
                request.start_time if request.HasField("start_time") else None,
                request.end_time if request.HasField("end_time") else None,
            )
            created = now_us()
            chunks = stream_agency(
                self._log.store,
                self._log.keys,
                agency,
                start_us=start or 0,
                end_us=end or created + 1,
                created_us=created,
                page_size=size,
            )
            total = 0
            # Pages are read off the event loop; a cancelled call simply drops the generator.
            while (item := await self._log.run(next, chunks, None)) is not None:
                data, events = item
                total += events
                last = data.startswith(b'{"trailer"')
                await context.write(
                    pb.StreamAgencyEventsResponse(
                        data=data, page_event_count=events, event_count=total if last else 0
                    )
                )

        await self._serve(context, handle)

    def _agency(self, agency: str) -> str:
        if not AGENCY_RE.match(agency):
            raise InvalidArgument(
                BAD_AGENCY,
                "agency_id is required",
                violations=[FieldViolation("agency_id", "required: an agency id")],
            )
        if self._known_agencies is not None and agency not in self._known_agencies():
            raise InvalidArgument(
                UNKNOWN_AGENCY,
                "no agreement with this agency id",
                violations=[FieldViolation("agency_id", "unknown agency")],
            )
        return agency

    async def GetReviewReport(
        self, request: pb.GetReviewReportRequest, context: Context
    ) -> pb.GetReviewReportResponse:
        async def handle(_: str) -> pb.GetReviewReportResponse:
            start, end = _time_range(
                request.start_time if request.HasField("start_time") else None,
                request.end_time if request.HasField("end_time") else None,
                start_required=True,
            )
            end_us = end if end is not None else now_us()
            if start is None or start >= end_us:
                raise InvalidArgument(
                    BAD_TIME_RANGE,
                    "start_time must be in the past",
                    violations=[FieldViolation("start_time", "must be before end_time")],
                )
            size = _page_size(request.page_size, DEFAULT_REVIEW_AGENCIES, MAX_REVIEW_AGENCIES, "page_size")
            period = f"{start}-{request.end_time.seconds if request.HasField('end_time') else ''}"
            after = decode_review_token(request.page_token, period) if request.page_token else None
            report, last = await self._pass(
                lambda: build_report_page(
                    self._log.store,
                    start,
                    end_us,
                    timezone=self._timezone,
                    after_agency=after,
                    max_agencies=size,
                )
            )
            return pb.GetReviewReportResponse(
                report_json=json.dumps(report),
                report_text=render_text(report),
                next_page_token=encode_review_token(period, last) if last is not None else "",
            )

        return await self._serve(context, handle)


def _verify_response(report: VerifyReport, chain_filter: str) -> pb.VerifyLogResponse:
    first = report.first
    resume = report.resume_at if report.intact else None
    return pb.VerifyLogResponse(
        intact=report.intact,
        events_checked=report.events_checked,
        checkpoints_checked=report.checkpoints_checked,
        broken_chain_id=first.chain_id if first else "",
        broken_seq=first.seq if first else 0,
        problem=first.problem if first else "",
        next_resume_token=encode_resume_token(chain_filter, *resume) if resume else "",
        chains=[
            pb.VerifiedChain(
                chain_id=chain,
                from_seq=status.from_seq,
                head_seq=status.head_seq,
                last_checkpoint_seq=status.last_checkpoint_seq,
                events=status.events,
            )
            for chain, status in report.chains.items()
        ],
    )

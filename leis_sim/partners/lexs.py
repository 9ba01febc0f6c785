"""A partner simulator that speaks LEXS-SR (SOAP 1.1 ``doStructuredSearch``) instead of gRPC.

Same synthetic records, matching, faults and call log as the gRPC simulator
(``PartnerSimulator``); only the wire differs: an aiohttp server with mutual TLS (the
partners' server certificate, client certificates from the development CA, answering only the
LEIS broker), requests read and answers written with the LEXS-SR codec, in the dialect asked.
Answers are shaped like the DHS brokered sample: one ``SearchResultPackage`` per record.

Faults: ``latency_ms`` delays, ``error_rate`` answers a SOAP fault (``PARTNER_UNAVAILABLE``),
``garbage="malformed"`` sends bytes that are not XML, ``"oversize"`` a well-formed answer past
any sane size, ``"wrong_agency"`` an answer whose origin names another partner.

The codec (``leis.common.lexs.codec``/``xml``) is a pure wire-format module over ``leis_api`` and
``leis.common``; the simulator uses it as a partner would use its own LEXS library.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
from aiohttp import web
from lxml import etree
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from leis.common.errors import (
    CALLER_NOT_BROKER,
    PARTNER_UNAVAILABLE,
    UNSUPPORTED_OPERATION,
    InvalidArgument,
    LeisError,
    PermissionDenied,
    Unavailable,
)
from leis.common.lexs import codec
from leis.common.lexs.codec import LEXS_PATH
from leis.common.lexs.xml import XmlRefused, parse
from leis.common.redact import LEIS_PARTNER
from leis.common.tls import BROKER_CLIENT_IDENTITY, CA_CERT, identity_from_pem
from leis.common.tracing import extract_context
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.partners.matching import search
from leis_sim.partners.profiles import TWO_WAY_PARTNER_IDS, partner_profile
from leis_sim.partners.server import (
    MAX_REQUEST_BYTES,
    OVERSIZE_RESPONSE_BYTES,
    PARTNER_SERVER_CERT,
    CallLog,
    Fault,
    PartnerSimulator,
    to_partner_record,
)
from leis_sim.partners.validation import validate_request

_LOG = logging.getLogger(__name__)
MALFORMED_BODY = b"<soap:Envelope><soap:Body><truncated"
PURPOSE_OF_TEXT = {text.casefold(): name for name, text in codec.DEFAULT_REASON_TEXT.items()}


def _server_ssl(pki_dir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki_dir / CA_CERT))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(pki_dir / f"{PARTNER_SERVER_CERT}.crt", pki_dir / f"{PARTNER_SERVER_CERT}.key")
    return context


class LexsPartnerHandler:
    """``doStructuredSearch`` for one simulated partner."""

    def __init__(self, simulator: PartnerSimulator, tracer: trace.Tracer | None = None) -> None:
        self.simulator = simulator
        self._tracer = tracer or trace.get_tracer("leis.partners")
        self._oversize: bytes | None = None

    async def handle(self, request: web.Request) -> web.Response:
        parent = extract_context(request.headers.items())
        with self._tracer.start_as_current_span(
            "LEXS-SR/doStructuredSearch",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={LEIS_PARTNER: self.simulator.agency_id, "rpc.system": "soap"},
        ):
            return await self._handle(request)

    async def _handle(self, request: web.Request) -> web.Response:
        simulator = self.simulator
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        identity = identity_from_pem(ssl.DER_cert_to_PEM_cert(der).encode()) if der else None
        entry = simulator.calls.add(identity.dns_names[0] if identity and identity.dns_names else None)
        fault = simulator.fault
        try:
            if fault.latency_ms:
                await asyncio.sleep(fault.latency_ms / 1000)
            if identity is None or BROKER_CLIENT_IDENTITY not in identity.dns_names:
                raise PermissionDenied(CALLER_NOT_BROKER, "this service answers only the LEIS broker")
            search_request, dialect, max_items = _read(await request.read())
            validate_request(search_request)
            if fault.error_rate and simulator.fails_now():
                raise Unavailable(PARTNER_UNAVAILABLE, "the partner system is unavailable (simulated outage)")
            body, entry.records = self._answer(search_request, dialect, max_items)
        except LeisError as error:
            entry.code = error.code
            return web.Response(body=codec.encode_fault(error), status=500, content_type="text/xml")
        except asyncio.CancelledError:
            entry.code = grpc.StatusCode.CANCELLED
            raise
        entry.code = grpc.StatusCode.OK
        return web.Response(body=body, content_type="text/xml")

    def _answer(
        self, request: partner_pb.SearchRequest, dialect: codec.Dialect, max_items: int
    ) -> tuple[bytes, int]:
        garbage = self.simulator.fault.garbage
        if garbage == "malformed":
            return MALFORMED_BODY, 0
        if garbage == "oversize":
            if self._oversize is None:
                self._oversize = codec.envelope(
                    self._response([], dialect, request, max_items, self.simulator.agency_id)
                ).replace(b"</soap:Envelope>", b" " * OVERSIZE_RESPONSE_BYTES + b"</soap:Envelope>")
            return self._oversize, 1
        matches = search(self.simulator.dataset, request.subject, limit=max_items)
        records = [to_partner_record(m) for m in matches]
        agency = self.simulator.agency_id
        if garbage == "wrong_agency":
            agency = TWO_WAY_PARTNER_IDS[(TWO_WAY_PARTNER_IDS.index(agency) + 1) % len(TWO_WAY_PARTNER_IDS)]
        return codec.envelope(self._response(records, dialect, request, max_items, agency)), len(records)

    def _response(
        self,
        records: Sequence[records_pb2.PartnerRecord],
        dialect: codec.Dialect,
        request: partner_pb.SearchRequest,
        max_items: int,
        agency: str,
    ) -> etree._Element:
        return codec.encode_partner_response(
            records,
            dialect,
            owner=(agency, partner_profile(self.simulator.agency_id).name),
            in_reply_to=request.request_id,
            max_items=max_items,
            now=datetime.now(UTC),
            message_id=f"uuid:{uuid.uuid4()}",
        )


def _read(body: bytes) -> tuple[partner_pb.SearchRequest, codec.Dialect, int]:
    """The broker's ``doStructuredSearch`` as the partner contract's request."""
    try:
        payload = codec.body_of(parse(body, max_bytes=MAX_REQUEST_BYTES))
        operation, dialect = codec.operation_of(payload)
        if operation != "doStructuredSearch":
            raise InvalidArgument(UNSUPPORTED_OPERATION, "this simulator serves doStructuredSearch only")
        decoded = codec.decode_search(payload, dialect)
    except XmlRefused as refused:
        raise InvalidArgument(refused.reason, refused.message) from None
    except codec.DecodeRefused as refused:
        raise refused.error from None
    purpose = PURPOSE_OF_TEXT.get(decoded.purpose_text.casefold(), "UNSPECIFIED")
    request = partner_pb.SearchRequest(
        subject=decoded.request.subject,
        purpose=subject_pb2.Purpose.Value(f"PURPOSE_{purpose}"),
        requesting_user=decoded.request.end_user,
        request_id=decoded.message_id,
    )
    return request, dialect, min(decoded.max_items or 50, 50)


@dataclass(eq=False)
class RunningLexsPartner:
    """A started LEXS-SR simulator; the same surface as the gRPC ``RunningPartner`` where it matters."""

    agency_id: str
    runner: web.AppRunner
    port: int
    host: str
    simulator: PartnerSimulator
    protocol: str = "lexs-sr"
    stopped: bool = field(default=False, init=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def calls(self) -> CallLog:
        return self.simulator.calls

    @property
    def fault(self) -> Fault:
        return self.simulator.fault

    @fault.setter
    def fault(self, value: Fault) -> None:
        self.simulator.fault = value

    async def stop(self, grace: float | None = 1.0) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.runner.cleanup()


async def start_lexs_partner(
    simulator: PartnerSimulator,
    pki_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tracer: trace.Tracer | None = None,
) -> RunningLexsPartner:
    """Serve one simulator over LEXS-SR on ``host:port`` (0: a free port), mutual TLS required."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app.router.add_post(LEXS_PATH, LexsPartnerHandler(simulator, tracer).handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.create_server((host, port))
    await web.SockSite(runner, sock, ssl_context=_server_ssl(pki_dir)).start()
    bound = int(sock.getsockname()[1])
    _LOG.info("partner %s serving LEXS-SR on %s:%d", simulator.agency_id, host, bound)
    return RunningLexsPartner(simulator.agency_id, runner, bound, host, simulator)

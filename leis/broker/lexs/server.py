"""The inbound LEXS-SR endpoint: SOAP 1.1 over HTTPS with client certificates (R-EDGE-1).

HTTP stack: an aiohttp web server in the broker's own asyncio event loop, listening with an
``ssl.SSLContext`` that requires TLS 1.2+ and a client certificate chaining to the LEIS CA
(``CERT_REQUIRED``). Chosen because (1) it shares the loop, so each request calls the broker's
chain (``QueryPort``: the very interceptor instances gRPC uses: tracing, audit, identity with
the CRL and pinned agreements, policy and rate limits, then ``QueryService``) with no IPC and
no second copy of any rule or any state (rate buckets, registry, audit writer); (2) aiohttp
is a well-kept asyncio server with request-size bounds (``client_max_size``) and no WSGI
thread pool; (3) Python's ``ssl`` gives the verified peer certificate per connection, which
is all identity needs (revocation and the agreement are then checked by the chain, as for
gRPC). A sibling process would have needed its own audit writer and rate limiter, i.e.
second copies of shared state.

Operations: ``doStructuredSearch``, ``getDataItem`` (``QueryService.GetDataItem``: a person an
earlier search disclosed to the same end user, fetched again live), ``getCapabilities``,
``getAvailability``, in the dialect of the request (LEXS-SR 3.1 or ULEX 2.0). Every request
that reaches this handler goes through the chain, refusals included (hostile XML, wrong SOAP
action, forbidden field, unmapped purpose: recorded, traced, then answered with a SOAP fault
carrying the same UPPER_SNAKE reason gRPC would). A missing client certificate never gets past TLS.
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

from aiohttp import web
from google.protobuf.message import Message

from leis.common.errors import (
    NO_CLIENT_CERTIFICATE,
    SOAP_ACTION_MISMATCH,
    UNSUPPORTED_ENCODING,
    UNSUPPORTED_MEDIA_TYPE,
    XML_TOO_LARGE,
    InvalidArgument,
    LeisError,
    Unauthenticated,
)
from leis.common.lexs import codec
from leis.common.lexs.xml import DEFAULT_MAX_BYTES, XmlRefused, parse
from leis.common.tls import CA_CERT, CertIdentity, identity_from_pem
from leis.registry.agreements import Registry
from leis_api.v1 import query_service_pb2 as query_pb

log = logging.getLogger("leis.lexs")

SEARCH_METHOD = "/leis.v1.QueryService/Search"
CAPABILITIES_METHOD = "/leis.v1.QueryService/GetCapabilities"
DATA_ITEM_METHOD = "/leis.v1.QueryService/GetDataItem"
XML_TYPES = frozenset({"text/xml", "application/xml", "application/soap+xml"})
TRACE_HEADERS = ("traceparent", "tracestate")
AUDIT_HEADER = "X-LEIS-Audit-Reference"
TRACE_ID_HEADER = "X-LEIS-Trace-Id"


class Port(Protocol):
    """What the endpoint needs from the broker: ``QueryService`` through the one chain."""

    max_results: int

    async def search(
        self, request: Message, *, max_results: int, peer_pem: bytes, metadata: Sequence[tuple[str, str]]
    ) -> Any: ...

    async def data_item(
        self, request: Message, *, peer_pem: bytes, metadata: Sequence[tuple[str, str]]
    ) -> Any: ...

    async def capabilities(
        self, request: Message, *, peer_pem: bytes, metadata: Sequence[tuple[str, str]]
    ) -> Any: ...

    async def refuse(
        self,
        method: str,
        request: Message,
        error: LeisError,
        *,
        peer_pem: bytes,
        metadata: Sequence[tuple[str, str]],
    ) -> NoReturn: ...


def server_ssl_context(pki_dir: Path, name: str = "broker") -> ssl.SSLContext:
    """TLS 1.2+, the broker's certificate, and a client certificate from the LEIS CA required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki_dir / CA_CERT))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(pki_dir / f"{name}.crt", pki_dir / f"{name}.key")
    return context


@functools.lru_cache(maxsize=4096)
def _identity(pem: bytes) -> CertIdentity:
    return identity_from_pem(pem)


@dataclass(frozen=True)
class _Call:
    peer_pem: bytes
    metadata: tuple[tuple[str, str], ...]


class LexsEndpoint:
    """The aiohttp handler: SOAP in, the chain, SOAP out."""

    def __init__(
        self,
        port: Port,
        registry: Callable[[], Registry],
        *,
        max_request_bytes: int = DEFAULT_MAX_BYTES,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._port = port
        self._registry = registry
        self._max_bytes = max_request_bytes
        self._now = now

    async def handle(self, request: web.Request) -> web.Response:
        """One SOAP POST; always an envelope back (a fault with HTTP 500 when refused)."""
        try:
            call = _Call(
                _peer_pem(request),
                tuple((k, request.headers[k]) for k in TRACE_HEADERS if k in request.headers),
            )
            return await self._serve(request, call)
        except LeisError as error:
            return _fault(error)

    async def _serve(self, request: web.Request, call: _Call) -> web.Response:
        empty = query_pb.SearchRequest()
        problem = self._screen_http(request)
        if problem is not None:
            await self._refuse(SEARCH_METHOD, empty, problem, call)
        try:
            body = await request.read()
            root = parse(body, max_bytes=self._max_bytes)
        except web.HTTPRequestEntityTooLarge:
            await self._refuse(SEARCH_METHOD, empty, _too_large(self._max_bytes), call)
        except XmlRefused as refused:
            await self._refuse(SEARCH_METHOD, empty, InvalidArgument(refused.reason, refused.message), call)
        try:
            payload = codec.body_of(root)
            operation, dialect = codec.operation_of(payload)
        except LeisError as error:
            await self._refuse(SEARCH_METHOD, empty, error, call)
        action = codec.operation_of_action(request.headers.get("SOAPAction", ""))
        if action is not None and action != operation:
            mismatch = InvalidArgument(
                SOAP_ACTION_MISMATCH, f"the SOAPAction names {action!r} but the body is {operation}"
            )
            await self._refuse(_method_of(operation), empty, mismatch, call)
        if operation == "doStructuredSearch":
            return await self._search(payload, dialect, call)
        if operation == "getDataItem":
            return await self._data_item(payload, dialect, call)
        return await self._capabilities(operation, dialect, call)

    def _screen_http(self, request: web.Request) -> LeisError | None:
        if request.content_length is not None and request.content_length > self._max_bytes:
            return _too_large(self._max_bytes)
        if request.headers.get("Content-Encoding", "identity").lower() != "identity":
            return InvalidArgument(UNSUPPORTED_ENCODING, "compressed request bodies are refused")
        if request.content_type not in XML_TYPES:
            return InvalidArgument(UNSUPPORTED_MEDIA_TYPE, "send SOAP 1.1 as text/xml")
        return None

    async def _refuse(self, method: str, request: Message, error: LeisError, call: _Call) -> NoReturn:
        await self._port.refuse(method, request, error, peer_pem=call.peer_pem, metadata=call.metadata)

    async def _search(self, payload: Any, dialect: codec.Dialect, call: _Call) -> web.Response:
        try:
            search = codec.decode_search(payload, dialect)
        except codec.DecodeRefused as refused:
            await self._refuse(SEARCH_METHOD, refused.request, refused.error, call)
        named = self._registry().named_by(_identity(call.peer_pem))
        agreement = named[0] if len(named) == 1 else None
        try:
            # Labelling only: which table maps the purpose text. Identity decides in the chain.
            purpose = codec.resolve_purpose(search.purpose_text, agreement.lexs_purposes if agreement else ())
        except LeisError as error:
            await self._refuse(SEARCH_METHOD, search.request, error, call)
        cap = min(search.max_items or self._port.max_results, self._port.max_results)
        response = await self._port.search(
            search.with_purpose(purpose), max_results=cap, peer_pem=call.peer_pem, metadata=call.metadata
        )
        requester = ("", agreement.name, agreement.agency_id) if agreement is not None else ("", "", "")
        answer = codec.Answer(dialect, _message_id(), search.message_id, search.max_items, requester)
        root = codec.encode_search_response(response, answer, now=self._now())
        return _xml(codec.envelope(root), response.audit_reference, response.trace_id)

    async def _data_item(self, payload: Any, dialect: codec.Dialect, call: _Call) -> web.Response:
        try:
            asked = codec.decode_data_item(payload, dialect)
        except codec.DecodeRefused as refused:
            await self._refuse(DATA_ITEM_METHOD, refused.request, refused.error, call)
        named = self._registry().named_by(_identity(call.peer_pem))
        agreement = named[0] if len(named) == 1 else None
        try:
            purpose = codec.resolve_purpose(asked.purpose_text, agreement.lexs_purposes if agreement else ())
        except LeisError as error:
            await self._refuse(DATA_ITEM_METHOD, asked.request, error, call)
        response = await self._port.data_item(
            asked.with_purpose(purpose), peer_pem=call.peer_pem, metadata=call.metadata
        )
        requester = ("", agreement.name, agreement.agency_id) if agreement is not None else ("", "", "")
        answer = codec.Answer(dialect, _message_id(), asked.message_id, None, requester)
        root = codec.encode_data_item_response(response, answer, now=self._now())
        return _xml(codec.envelope(root), response.audit_reference, response.trace_id)

    async def _capabilities(self, operation: str, dialect: codec.Dialect, call: _Call) -> web.Response:
        capabilities = await self._port.capabilities(
            query_pb.GetCapabilitiesRequest(), peer_pem=call.peer_pem, metadata=call.metadata
        )
        now = self._now()
        if operation == "getAvailability":
            available = any(s.state == query_pb.SOURCE_STATE_ANSWERED for s in capabilities.source_statuses)
            root = codec.encode_availability(dialect, available, now=now, message_id=_message_id())
        else:
            root = codec.encode_capabilities(dialect, capabilities, now=now, message_id=_message_id())
        return _xml(codec.envelope(root), "", "")


def _method_of(operation: str) -> str:
    if operation == "doStructuredSearch":
        return SEARCH_METHOD
    return DATA_ITEM_METHOD if operation == "getDataItem" else CAPABILITIES_METHOD


def _too_large(limit: int) -> LeisError:
    return InvalidArgument(XML_TOO_LARGE, f"the request body is larger than {limit} bytes")


def _message_id() -> str:
    return f"uuid:{uuid.uuid4()}"


def _peer_pem(request: web.Request) -> bytes:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        # CERT_REQUIRED makes this unreachable; refuse rather than serve anonymously.
        raise Unauthenticated(NO_CLIENT_CERTIFICATE, "no verified client certificate on this connection")
    return ssl.DER_cert_to_PEM_cert(der).encode()


def _xml(body: bytes, audit_reference: str, trace_id: str, status: int = 200) -> web.Response:
    headers = {AUDIT_HEADER: audit_reference, TRACE_ID_HEADER: trace_id} if audit_reference else {}
    return web.Response(body=body, status=status, content_type="text/xml", charset="utf-8", headers=headers)


def _fault(error: LeisError) -> web.Response:
    return _xml(codec.encode_fault(error), "", "", status=500)


@dataclass
class LexsServer:
    """A running LEXS-SR endpoint."""

    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests, close."""
        await self.runner.cleanup()


async def start_lexs_server(
    listen: str,
    endpoint: LexsEndpoint,
    ssl_context: ssl.SSLContext,
    *,
    max_request_bytes: int = DEFAULT_MAX_BYTES,
    shutdown_seconds: float = 5.0,
    reuse_port: bool = False,
) -> LexsServer:
    """Serve ``endpoint`` on ``listen`` ("host:port"; port 0 picks a free port) over mutual TLS.

    ``reuse_port``: several worker processes share the port (``leis serve --workers``)."""
    host, _, port_text = listen.rpartition(":")
    app = web.Application(client_max_size=max_request_bytes + 1)
    app.router.add_post(codec.LEXS_PATH, endpoint.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_seconds)
    await runner.setup()
    sock = socket.create_server((host.strip("[]") or "127.0.0.1", int(port_text)), reuse_port=reuse_port)
    site = web.SockSite(runner, sock, ssl_context=ssl_context)
    await site.start()
    port = int(sock.getsockname()[1])
    log.info("LEXS-SR endpoint listening on https://%s:%d%s", host, port, codec.LEXS_PATH)
    return LexsServer(runner, port)

"""Outbound LEXS-SR: the broker asks a two-way partner's ISS with ``doStructuredSearch`` (R-EDGE-1).

One aiohttp client session per broker, mutual TLS with the broker's client certificate, a
total deadline per call, a W3C ``traceparent`` header from a CLIENT span, and a bounded
answer. Every way a partner can fail maps to the per-partner states and reasons the gRPC
path uses (``leis.broker.outbound``): a slow answer is ``PARTNER_TIMED_OUT``, an unreachable
one ``PARTNER_UNAVAILABLE``, an oversize one ``PARTNER_RESOURCE_EXHAUSTED``, bytes that are
not a ``doSearchResponse`` ``PARTNER_MALFORMED_RESPONSE``, a SOAP fault ``PARTNER_<STATUS>``
and too many packages ``PARTNER_TOO_MANY_RECORDS``; none of them affects another partner.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from leis.common.errors import LeisError
from leis.common.lexs import codec
from leis.common.lexs.codec import LEXS_PATH
from leis.common.lexs.xml import XmlRefused, parse
from leis.common.redact import LEIS_SOURCE
from leis.common.tls import BROKER_CLIENT_NAME, CA_CERT
from leis.common.tracing import inject_metadata
from leis.registry.agreements import Agreement
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.v1 import federated_search_service_pb2 as fed_pb
from leis_api.v1 import records_pb2, subject_pb2

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_PARTNER_RECORDS = 50
Outcome = tuple[fed_pb.PartnerState.ValueType, str, Sequence[records_pb2.PartnerRecord]]


def client_ssl_context(pki_dir: Path, name: str = BROKER_CLIENT_NAME) -> ssl.SSLContext:
    """Trust the LEIS CA, present ``<name>.crt``, TLS 1.2+."""
    context = ssl.create_default_context(cafile=str(pki_dir / CA_CERT))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki_dir / f"{name}.crt", pki_dir / f"{name}.key")
    return context


def reason_text(agreement: Agreement, purpose: subject_pb2.Purpose.ValueType) -> str:
    """The partner's own purpose text for a lawful purpose (its agreement's table, else N-DEx's)."""
    name = subject_pb2.Purpose.Name(purpose).removeprefix("PURPOSE_")
    for text, mapped in agreement.lexs_purposes:
        if mapped == name:
            return text
    return codec.DEFAULT_REASON_TEXT.get(name, name)


class LexsPartnerClient:
    """Sends ``doStructuredSearch`` to LEXS-SR partners; one pooled session, created on first use."""

    def __init__(
        self,
        pki_dir: Path,
        tracer: trace.Tracer | None = None,
        *,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._ssl = client_ssl_context(pki_dir)
        self._tracer = tracer or trace.get_tracer("leis.client")
        self._max_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=256)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()

    async def search(
        self, agreement: Agreement, request: partner_pb.SearchRequest, deadline_seconds: float
    ) -> Outcome:
        """One partner's answer as ``(state, reason, records)``, never raising for a partner fault."""
        assert agreement.endpoint is not None
        dialect = codec.LEXS_31 if agreement.protocol == "lexs-sr-3.1" else codec.ULEX_2
        body = codec.envelope(
            codec.encode_partner_request(
                request,
                dialect,
                reason_text=reason_text(agreement, request.purpose),
                destination=("", agreement.name, agreement.agency_id),
                max_items=MAX_PARTNER_RECORDS,
                now=datetime.now(UTC),
            )
        )
        span = self._tracer.start_span(
            "LEXS-SR/doStructuredSearch",
            kind=SpanKind.CLIENT,
            attributes={
                LEIS_SOURCE: agreement.agency_id,
                "rpc.system": "soap",
                "rpc.method": "doStructuredSearch",
            },
        )
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{codec.SOAP_ACTION_PREFIX}doStructuredSearch"',
            **dict(inject_metadata(trace.set_span_in_context(span))),
        }
        try:
            outcome = await self._exchange(agreement, body, headers, deadline_seconds)
        except BaseException:
            span.set_status(Status(StatusCode.ERROR, "CANCELLED"))
            span.end()
            raise
        state, reason, _ = outcome
        if reason:
            span.set_status(Status(StatusCode.ERROR, reason))
        span.set_attribute("leis.partner.state", fed_pb.PartnerState.Name(state))
        span.end()
        return outcome

    async def _exchange(
        self, agreement: Agreement, body: bytes, headers: dict[str, str], deadline_seconds: float
    ) -> Outcome:
        url = f"https://{agreement.endpoint}{LEXS_PATH}"
        try:
            async with asyncio.timeout(deadline_seconds):
                async with self._client().post(url, data=body, headers=headers) as reply:
                    if (reply.content_length or 0) > self._max_bytes:
                        return fed_pb.PARTNER_STATE_UNAVAILABLE, "PARTNER_RESOURCE_EXHAUSTED", ()
                    data = await self._read(reply)
        except TimeoutError:
            return fed_pb.PARTNER_STATE_TIMED_OUT, "PARTNER_TIMED_OUT", ()
        except (aiohttp.ClientError, OSError):
            return fed_pb.PARTNER_STATE_UNAVAILABLE, "PARTNER_UNAVAILABLE", ()
        if data is None:
            return fed_pb.PARTNER_STATE_UNAVAILABLE, "PARTNER_RESOURCE_EXHAUSTED", ()
        try:
            root = parse(data, max_bytes=self._max_bytes)
            fault = codec.read_fault(root)
            if fault is not None:
                return fed_pb.PARTNER_STATE_UNAVAILABLE, f"PARTNER_{fault.status or 'FAULT'}", ()
            records = codec.decode_partner_response(root, agreement.agency_id, MAX_PARTNER_RECORDS)
        except OverflowError:
            return fed_pb.PARTNER_STATE_UNAVAILABLE, "PARTNER_TOO_MANY_RECORDS", ()
        except (XmlRefused, ValueError, LeisError):
            return fed_pb.PARTNER_STATE_UNAVAILABLE, "PARTNER_MALFORMED_RESPONSE", ()
        if not records:
            return fed_pb.PARTNER_STATE_NO_MATCH, "", ()
        return fed_pb.PARTNER_STATE_ANSWERED, "", tuple(records)

    async def _read(self, reply: aiohttp.ClientResponse) -> bytes | None:
        """The body, or None past ``max_response_bytes`` (stops reading there)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in reply.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

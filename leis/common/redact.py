"""The PII guard (R-OBS-2): the only attribute keys that may leave a process, and the scrubbing every
exported span goes through (spans, the span store and the OTLP exporter alike).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status, StatusCode
from opentelemetry.util.types import AttributeValue

# --------------------------------------------------------------------------- attribute keys

RPC_SYSTEM: Final = "rpc.system"
RPC_SERVICE: Final = "rpc.service"
RPC_METHOD: Final = "rpc.method"
RPC_GRPC_STATUS_CODE: Final = "rpc.grpc.status_code"
LEIS_AGENCY_ID: Final = "leis.agency_id"
LEIS_PURPOSE: Final = "leis.purpose"
LEIS_QUERY_CATEGORIES: Final = "leis.query_categories"
LEIS_SOURCE: Final = "leis.source"
LEIS_SOURCE_OUTCOME: Final = "leis.source_outcome"
LEIS_RESULT_COUNT: Final = "leis.result_count"
LEIS_RECORD_COUNT: Final = "leis.record_count"
LEIS_PERSON_COUNT: Final = "leis.person_count"
LEIS_PHOTO_COUNT: Final = "leis.photo_count"
LEIS_REFUSAL_REASON: Final = "leis.refusal_reason"
LEIS_STATUS: Final = "leis.status"
LEIS_PARTNER: Final = "leis.partner"
LEIS_DIRECTION: Final = "leis.direction"
EXCEPTION_TYPE: Final = "exception.type"

ALLOWED_ATTRIBUTES: Final = frozenset(
    {
        RPC_SYSTEM,
        RPC_SERVICE,
        RPC_METHOD,
        RPC_GRPC_STATUS_CODE,
        LEIS_AGENCY_ID,
        LEIS_PURPOSE,
        LEIS_QUERY_CATEGORIES,
        LEIS_SOURCE,
        LEIS_SOURCE_OUTCOME,
        LEIS_RESULT_COUNT,
        LEIS_RECORD_COUNT,
        LEIS_PERSON_COUNT,
        LEIS_PHOTO_COUNT,
        LEIS_REFUSAL_REASON,
        LEIS_STATUS,
        LEIS_PARTNER,
        LEIS_DIRECTION,
        EXCEPTION_TYPE,
    }
)
"""The only span/event/link attribute keys that leave a process (R-OBS-2)."""

# Identifier-like values only: no spaces, so no free text, names with spaces or addresses.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:/-]{0,128}")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_./-]{1,128}")
_REASON_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
REDACTED: Final = "redacted"

TRACEPARENT: Final = "traceparent"
DEFAULT_SKIP_PREFIXES: Final = ("/grpc.health.", "/grpc.reflection.")


# --------------------------------------------------------------------------- PII guard


def _safe_value(value: object) -> AttributeValue | None:
    if isinstance(value, str):
        return value if _SAFE_VALUE.fullmatch(value) else None
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        if all(isinstance(item, str) and _SAFE_VALUE.fullmatch(item) for item in value):
            return tuple(value)
        if all(isinstance(item, bool | int | float) for item in value):
            return tuple(value)
    return None


def scrub_attributes(
    attributes: Mapping[str, AttributeValue] | None, allowed: frozenset[str] = ALLOWED_ATTRIBUTES
) -> dict[str, AttributeValue]:
    """Only allow-listed keys whose values look like identifiers, counts or statuses."""
    if not attributes:
        return {}
    kept: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if key in allowed:
            safe = _safe_value(value)
            if safe is not None:
                kept[key] = safe
    return kept


def scrub_name(name: str) -> str:
    """A span or event name, or ``redacted`` when it is not identifier-like."""
    return name if _SAFE_NAME.fullmatch(name) else REDACTED


def scrub_description(description: str | None) -> str | None:
    """A status description survives only as a reason code (``NOT_FOUND``, ``AUDIT_UNAVAILABLE``)."""
    return description if description is not None and _REASON_CODE.fullmatch(description) else None


def scrub_span(span: ReadableSpan, allowed: frozenset[str] = ALLOWED_ATTRIBUTES) -> ReadableSpan:
    """A copy of ``span`` with everything outside the allow-list removed (R-OBS-2)."""
    status = span.status
    description = scrub_description(status.description)
    events = [
        Event(scrub_name(event.name), scrub_attributes(event.attributes, allowed), event.timestamp)
        for event in span.events
    ]
    links = [Link(link.context, scrub_attributes(link.attributes, allowed)) for link in span.links]
    return ReadableSpan(
        name=scrub_name(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=scrub_attributes(span.attributes, allowed),
        events=events,
        links=links,
        kind=span.kind,
        status=Status(status.status_code, description) if status.status_code is StatusCode.ERROR else status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class PiiGuardExporter(SpanExporter):
    """Wraps an exporter so that only scrubbed spans reach it (runs in the export thread)."""

    def __init__(self, inner: SpanExporter, allowed: frozenset[str] = ALLOWED_ATTRIBUTES) -> None:
        self._inner = inner
        self._allowed = allowed

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([scrub_span(span, self._allowed) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

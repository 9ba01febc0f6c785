"""OpenTelemetry set-up for the broker and the sources (R-OBS-1..3).

W3C trace context crosses every gRPC hop in call metadata; span attributes
carry only method, agency id, purpose, categories, counts, statuses, source
names and timings — never a name, number, address or date of birth (R-OBS-2).
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def extract_context(metadata: Iterable[tuple[str, str | bytes]]) -> Context:
    """The remote parent context carried by ``traceparent``/``tracestate`` metadata."""
    carrier = {key: value for key, value in metadata if isinstance(value, str)}
    return _PROPAGATOR.extract(carrier)


def inject_metadata(context: Context | None = None) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying the current (or given) span context to the next hop."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return tuple(carrier.items())


def tracer_provider(service_name: str) -> TracerProvider:
    """An SDK tracer provider for one process; the sampler follows ``OTEL_TRACES_SAMPLER``."""
    return TracerProvider(resource=Resource.create({"service.name": service_name}))

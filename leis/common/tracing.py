"""OpenTelemetry tracing for every LEIS process: provider, gRPC hooks and the PII guard (R-OBS-1..3).

W3C trace context crosses every gRPC hop in call metadata. Spans go, through the
PII guard, to the embedded span store (``leis.tracestore``, R-OBS-3) and, when the
standard ``OTEL_EXPORTER_OTLP_ENDPOINT``/``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set,
to the SRE's collector over OTLP/gRPC. The sampler follows ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG`` (default ``parentbased_always_on``).

Span names and attributes carry only method, agency id, purpose, the categories used,
counts, statuses, source names and timings — never a name, number, address or date of
birth (R-OBS-2). :class:`PiiGuardExporter` enforces that on every exported span as
defence in depth: attributes outside :data:`ALLOWED_ATTRIBUTES` are dropped, string
values must look like identifiers, status descriptions must be reason codes, and
exception events keep only the exception type.

The gRPC hooks are deliberately lean (the stock opentelemetry-instrumentation-grpc
interceptors roughly double per-RPC CPU in Python): one span per call, constant
attribute keys, per-method attributes computed once.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from leis.common.redact import (
    ALLOWED_ATTRIBUTES,
    DEFAULT_SKIP_PREFIXES,
    EXCEPTION_TYPE,
    LEIS_SOURCE,
    RPC_GRPC_STATUS_CODE,
    RPC_METHOD,
    RPC_SERVICE,
    RPC_SYSTEM,
    PiiGuardExporter,
)

_PROPAGATOR = TraceContextTextMapPropagator()

# --------------------------------------------------------------------------- context propagation


def extract_context(metadata: Iterable[tuple[str, str | bytes]]) -> Context:
    """The remote parent context carried by ``traceparent``/``tracestate`` metadata."""
    carrier = {key: value for key, value in metadata if isinstance(value, str)}
    return _PROPAGATOR.extract(carrier)


def inject_metadata(context: Context) -> tuple[tuple[str, str], ...]:
    """``traceparent``/``tracestate`` for ``context``, as headers or call metadata."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return tuple(carrier.items())


# --------------------------------------------------------------------------- provider


def otlp_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard OTLP endpoint settings ask for trace export."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def tracer_provider(
    service_name: str,
    *,
    store_path: Path | None = None,
    store_max_bytes: int | None = None,
    otlp: bool | None = None,
    exporters: Sequence[SpanExporter] = (),
    allowed_attributes: frozenset[str] = ALLOWED_ATTRIBUTES,
    schedule_delay_millis: float = 500,
) -> TracerProvider:
    """An SDK tracer provider for one process of the mesh.

    - the sampler follows ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``
      (default ``parentbased_always_on``: every query traced);
    - ``store_path``: batch spans into the embedded SQLite store shared by the mesh
      (normally ``LeisHome.traces_db``), capped at ``store_max_bytes``; the store applies
      the same guard while building its rows (no intermediate copy of each span);
    - ``otlp``: also export over OTLP/gRPC with the standard ``OTEL_EXPORTER_OTLP_*``
      settings; ``None`` (default) means "when an OTLP endpoint is configured";
    - ``exporters``: further exporters (tests);
    every exporter sits behind :class:`PiiGuardExporter`.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    chosen: list[SpanExporter] = [PiiGuardExporter(exporter, allowed_attributes) for exporter in exporters]
    if store_path is not None:
        from leis.common.tracestore import DEFAULT_MAX_BYTES, SqliteSpanExporter

        chosen.append(
            SqliteSpanExporter(
                store_path, max_bytes=store_max_bytes or DEFAULT_MAX_BYTES, allowed=allowed_attributes
            )
        )
    if otlp if otlp is not None else otlp_configured():
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        chosen.append(PiiGuardExporter(OTLPSpanExporter(), allowed_attributes))
    for exporter in chosen:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=schedule_delay_millis))
    return provider


# --------------------------------------------------------------------------- gRPC hooks


def _split_method(full_method: str) -> tuple[str, str]:
    service, _, method = full_method.lstrip("/").partition("/")
    return service, method


class _MethodInfo:
    """Per-method constants, computed once: span name and attributes."""

    __slots__ = ("attributes", "name")

    def __init__(self, full_method: str, extra: Mapping[str, AttributeValue]) -> None:
        service, method = _split_method(full_method)
        self.name = full_method.lstrip("/")
        self.attributes: dict[str, AttributeValue] = {
            RPC_SYSTEM: "grpc",
            RPC_SERVICE: service,
            RPC_METHOD: method,
            **extra,
        }


def _status_of(code: grpc.StatusCode) -> Status:
    if code is grpc.StatusCode.OK:
        return Status(StatusCode.UNSET)
    return Status(StatusCode.ERROR, code.name)


Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class TracingServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """The SERVER span of each unary call, child of the caller's ``traceparent`` (R-OBS-1).

    For the sources and the partner simulators (the broker has its own outermost
    interceptor). Health and reflection are skipped. The span is current while the
    handler runs, so the handler's own spans (e.g. its lookup) nest under it; the
    status code is read from the context when the handler aborts or sets one.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        *,
        skip_prefixes: tuple[str, ...] = DEFAULT_SKIP_PREFIXES,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        self._tracer = tracer
        self._skip = skip_prefixes
        self._extra = dict(attributes or {})
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or method.startswith(self._skip):
            return handler
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            wrapped = self._wrapped[method] = grpc.unary_unary_rpc_method_handler(
                self._traced(cast(Handler, handler.unary_unary), _MethodInfo(method, self._extra)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return wrapped

    def _traced(self, behaviour: Handler, info: _MethodInfo) -> Handler:
        tracer = self._tracer

        async def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            parent = extract_context(context.invocation_metadata() or ())
            span = tracer.start_span(
                info.name, context=parent, kind=SpanKind.SERVER, attributes=info.attributes
            )
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            try:
                response = await behaviour(request, context)
            except BaseException as exc:
                code = context.code()
                if not isinstance(code, grpc.StatusCode):
                    code = grpc.StatusCode.UNKNOWN
                    span.set_attribute(EXCEPTION_TYPE, type(exc).__name__)
                _finish(span, code)
                raise
            finally:
                otel_context.detach(token)
            code = context.code()
            _finish(span, code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK)
            return response

        return traced


def _finish(span: trace.Span, code: grpc.StatusCode) -> None:
    if span.is_recording():
        span.set_attribute(RPC_GRPC_STATUS_CODE, code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(_status_of(code))
    span.end()


class ClientSpans:
    """CLIENT spans for the broker's own outgoing calls, created inline (no client interceptor).

    A grpc.aio client interceptor wraps every call in an extra task; creating the span
    around the stub call and passing ``traceparent`` as call metadata costs a fraction of
    that (issue 6: tracing overhead). One instance per peer; per-method constants cached.
    """

    def __init__(self, tracer: trace.Tracer, peer: str) -> None:
        self._tracer = tracer
        self._extra: dict[str, AttributeValue] = {LEIS_SOURCE: peer}
        self._methods: dict[str, _MethodInfo] = {}

    @contextmanager
    def call(self, method: str) -> Iterator[tuple[tuple[str, str], ...]]:
        """A CLIENT span around one call; yields the metadata carrying ``traceparent``."""
        info = self._methods.get(method)
        if info is None:
            info = self._methods[method] = _MethodInfo(method, self._extra)
        span = self._tracer.start_span(info.name, kind=SpanKind.CLIENT, attributes=info.attributes)
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        try:
            yield tuple(carrier.items())
        except grpc.aio.AioRpcError as exc:
            _finish(span, exc.code())
            raise
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, "CANCELLED"))
            span.set_attribute(EXCEPTION_TYPE, type(exc).__name__)
            span.end()
            raise
        _finish(span, grpc.StatusCode.OK)

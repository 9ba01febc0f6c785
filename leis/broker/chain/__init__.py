"""The broker's interceptor chain, declared once, in its one order: tracing → scheduling → audit →
identity → admission → policy.

- :mod:`~leis.broker.chain.tracing` (outermost): the SERVER span and request metrics;
  opens the :class:`~leis.broker.context.Call`.
- :mod:`~leis.broker.chain.scheduling`: identifies the caller and waits for one of the
  broker's work slots, shared fairly among agencies, before any other work (R-SEC-3).
- :mod:`~leis.broker.chain.audit`: records every message, refusals included, durable
  before the call goes on and before the response leaves; refuses service only when it
  cannot record (fail closed, R-AUD-2). It never changes a decision.
- :mod:`~leis.broker.chain.identity`: certificate → agreement → principal (R-ID-1, R-ID-3,
  R-SEC-2).
- :mod:`~leis.broker.chain.admission`: the agency's rate budget and its and the broker's
  concurrency budgets, before any work (R-SEC-3); refused calls and garbage spend the budget.
- :mod:`~leis.broker.chain.policy`: validation, the end user's ORI against the agreement,
  purpose and the per-user rate limit (R-Q-1..4, R-ID-3, R-SEC-3).

Audit sits outside identity, admission and policy so that it sees every message, including
the ones they refuse. Scheduling sits outside audit so that a flood waits in its agency's queue
before any of its calls costs a recording; a call that leaves the queue is recorded all the same.
Ahead of the chain, ``PeerObserver`` only counts connections for the TLS
handshake metrics. Health and reflection bypass the chain (they refuse malformed
requests themselves, see :mod:`~leis.broker.chain.malformed`). Each stage hands the next what
it established through :mod:`leis.broker.context`; every interceptor is built once here
and keeps no per-call state of its own.
"""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry import trace

from leis.audit import AuditLog
from leis.broker.chain.admission import AdmissionInterceptor
from leis.broker.chain.audit import AuditInterceptor
from leis.broker.chain.identity import IdentityInterceptor
from leis.broker.chain.malformed import MalformedRequest, service_handler
from leis.broker.chain.policy import PolicyInterceptor
from leis.broker.chain.scheduling import SchedulingInterceptor
from leis.broker.chain.tracing import TracingInterceptor
from leis.broker.config import AdmissionConfig
from leis.broker.identity import IdentityResolver
from leis.broker.limits import Limits
from leis.ops.metrics import Metrics, PeerObserver
from leis.rules.fairshare import FairShare

__all__ = ["MalformedRequest", "build_chain", "service_handler"]


def build_chain(
    *,
    tracer: trace.Tracer,
    metrics: Metrics,
    audit_log: AuditLog,
    identity: IdentityResolver,
    limits: Limits,
    admission: AdmissionConfig,
    broker_bound: int,
    max_request_bytes: int,
) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
    """The server interceptors, outermost first."""
    share = FairShare(admission.work_slots, total=broker_bound, pace_seconds=admission.retry_after_seconds)
    metrics.observe_waiting(share.waiting)
    scheduling = SchedulingInterceptor(
        share,
        identity.identify,
        agency_limit=admission.agency_concurrent_calls,
        max_queue_seconds=admission.max_queue_seconds,
    )
    return [
        PeerObserver(metrics.handshakes),
        TracingInterceptor(tracer, metrics),
        scheduling,
        AuditInterceptor(audit_log, metrics, max_request_bytes),
        IdentityInterceptor(identity),
        AdmissionInterceptor(limits, admission.retry_after_seconds),
        PolicyInterceptor(limits, max_request_bytes),
    ]

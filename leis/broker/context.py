"""Per-call state shared by the interceptor chain and the handlers.

The outermost interceptor (tracing) creates one ``CallState`` per RPC and puts
it in a ``ContextVar``; identity fills ``principal``, policy fills ``query`` and ``purpose``,
audit fills ``audit_reference``, and the handler fills ``disclosure`` so that
the audit interceptor can record what left, and to whom (R-AUD-1).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leis.broker.identity import Principal
    from leis.rules.policy import ValidatedQuery


@dataclass(frozen=True)
class Disclosure:
    """What a response disclosed: record ids, released field names, source systems."""

    record_ids: tuple[str, ...] = ()
    released_fields: tuple[str, ...] = ()
    source_systems: tuple[str, ...] = ()
    person_count: int = 0
    content: dict[str, object] = field(default_factory=dict)


@dataclass
class CallState:
    """Mutable state of one RPC, owned by the task serving it."""

    method: str
    trace_id: str = ""
    principal: Principal | None = None
    query: ValidatedQuery | None = None
    purpose: str = ""
    audit_reference: str = ""
    disclosure: Disclosure | None = None


CURRENT_CALL: ContextVar[CallState] = ContextVar("leis_current_call")


def current_call() -> CallState:
    """The state of the RPC being served (set by the outermost interceptor)."""
    return CURRENT_CALL.get()

"""What each stage of the chain establishes for one call, as typed values set once.

The chain (``leis.broker.chain``) runs tracing → scheduling → audit → identity →
admission → policy → handler. Each stage establishes one immutable value in its own ``ContextVar``
and the stages after it read that value as given, never as an Optional:

- tracing: the :class:`Call` (method, trace id, the client's deadline);
- scheduling: the :class:`Caller` the connection presents and the work
  :class:`~leis.rules.fairshare.Slot` its call got from the queue;
- audit: the audit reference of the ``QUERY_RECEIVED`` event;
- identity: the :class:`~leis.broker.identity.Principal` it accepted;
- policy: the :class:`Authorized` query and purpose (search methods only);
- handler: the :class:`Disclosure` of its response, for the ``RESPONSE_SENT``
  event (R-AUD-1).

A grpc.aio call runs in its own task, so these values live exactly as long as the
call. The inner stages run in the same task as the outer ones, so an outer stage
(tracing, audit) can read what an inner one established once it returns or raises,
through :meth:`Stage.established`, which is ``None`` when that stage never got so
far (e.g. identity refused).
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from leis.broker.identity import Caller, Principal
    from leis.rules.fairshare import Slot
    from leis.rules.validation import ValidatedQuery

T = TypeVar("T")

# Time kept back from the client's deadline to record the closing event and deliver the
# response: a response that would arrive later is not sent (the call ends DEADLINE_EXCEEDED,
# recorded as such), and sources and partners are given the rest less twice this.
DELIVERY_MARGIN_SECONDS = 0.1


@dataclass(frozen=True)
class Call:
    """The RPC being served, as the tracing stage opened it.

    ``deadline`` is the client's deadline on the ``time.monotonic`` clock (None: none given).
    """

    method: str
    trace_id: str
    deadline: float | None = None

    def remaining(self) -> float | None:
        """Seconds left before the client's deadline, None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def downstream_timeout(self, configured: float) -> float:
        """The timeout of a call to a source or partner: its configured deadline, cut so that the
        answer still comes back in time to be recorded and delivered (0 when no time is left)."""
        remaining = self.remaining()
        if remaining is None:
            return configured
        return max(0.0, min(configured, remaining - 2 * DELIVERY_MARGIN_SECONDS))

    def deadline_binds(self, configured: float) -> bool:
        """Whether the client's deadline, rather than ``configured``, now limits a downstream call."""
        return self.downstream_timeout(configured) < configured


@dataclass(frozen=True)
class Authorized:
    """A search the policy stage accepted: its validated query and lawful, permitted purpose."""

    query: ValidatedQuery
    purpose: str


@dataclass(frozen=True)
class Disclosure:
    """What a response disclosed: record ids, released field names, source systems."""

    record_ids: tuple[str, ...] = ()
    released_fields: tuple[str, ...] = ()
    source_systems: tuple[str, ...] = ()
    person_count: int = 0
    content: dict[str, object] = field(default_factory=dict)


NOTHING_DISCLOSED = Disclosure()


class Stage(Generic[T]):
    """One value a stage of the chain establishes once per call."""

    def __init__(self, name: str) -> None:
        self._var: ContextVar[T] = ContextVar(name)

    def establish(self, value: T) -> None:
        """Set by the stage that owns the value, once per call."""
        self._var.set(value)

    def get(self) -> T:
        """The value, for a stage that runs after its owner (a ``LookupError`` is a wiring bug)."""
        return self._var.get()

    def established(self) -> T | None:
        """The value if its owner got so far, for the outer stages reading after the call."""
        return self._var.get(None)


CALL: Stage[Call] = Stage("leis_call")
CALLER: Stage[Caller] = Stage("leis_caller")
SCHEDULED: Stage[Slot] = Stage("leis_scheduled")
AUDIT_REFERENCE: Stage[str] = Stage("leis_audit_reference")
PRINCIPAL: Stage[Principal] = Stage("leis_principal")
AUTHORIZED: Stage[Authorized] = Stage("leis_authorized")
DISCLOSURE: Stage[Disclosure] = Stage("leis_disclosure")


def downstream_timeout(configured: float) -> float:
    """The timeout of a call to a source or partner made while serving a call (see
    :meth:`Call.downstream_timeout`); ``configured`` outside any call."""
    call = CALL.established()
    return configured if call is None else call.downstream_timeout(configured)

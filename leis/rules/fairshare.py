"""Work slots shared fairly among agencies (R-SEC-3): a flood by one agency slows that agency.

The broker serves every call on one event loop, so calls in progress share one CPU: an agency
with many calls in flight would take nearly all of it, whatever its concurrency bound.
:class:`FairShare` bounds the calls *in progress* and queues the rest, each agency in its own
FIFO. When a slot frees it goes to the waiting agency that holds the fewest slots (the
longest-waiting of those on a tie), so an agency with one call waiting is served next even
while another has hundreds queued. An agency beyond its concurrency bound (it has calls
outstanding that arrived over it, to be refused) comes after every agency within its bound,
and is served no faster than a client honouring its refusals would call: ``limit`` calls per
``pace_seconds`` (the retry delay its refusals carry). Every call of a flood is still recorded
and answered, but at the flooder's pace, not the broker's. A waiting call costs no CPU.

A newcomer therefore waits for at most one of the calls already running, then shares the CPU
with ``slots - 1`` of them rather than with every call of the flood. The price is paid while
calls wait on sources and on the audit store's commit of their opening event, holding their
slots: few slots leave the CPU idle then (``[admission] work_slots`` weighs the two; see
``bench/bench_flood.py``).

Single event loop: no lock needed. Pure logic, no gRPC.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Ticket:
    """How a call came through the queue.

    ``over_budget``: when it arrived, its agency already had ``limit`` calls within its bound
    in progress or waiting; ``over_total``: the broker had ``total`` such calls, all agencies
    together. Either is to be refused, in its agency's turn, and does not count. ``slot``: it
    holds a slot (False when its wait ran out; such a call is to be refused without doing any
    work). ``cancelled``: its client went away while it waited.
    """

    over_budget: bool
    slot: bool
    over_total: bool = False
    cancelled: bool = False

    @property
    def counted(self) -> bool:
        """Whether the call counts against its agency's and the broker's bounds until released."""
        return not (self.over_budget or self.over_total or self.cancelled)


# A call whose client went away while it waited: it holds no slot and does no work.
CANCELLED_WHILE_WAITING = Ticket(over_budget=False, slot=False, cancelled=True)


class Slot:
    """What one call got from :meth:`FairShare.acquire`; :meth:`release` gives it back, once."""

    def __init__(self, share: FairShare, key: str, ticket: Ticket) -> None:
        self.ticket = ticket
        self._share = share
        self._key = key
        self._held = True

    def release(self) -> None:
        """Give the slot back (again: nothing)."""
        if self._held:
            self._held = False
            self._share.release(self._key, self.ticket)


class FairShare:
    """``slots`` calls in progress, handed out agency by agency (see the module), and at most
    ``total`` calls within their agencies' bounds in progress or waiting."""

    def __init__(
        self,
        slots: int,
        total: int,
        pace_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slots < 1 or total < 1 or pace_seconds <= 0:
            raise ValueError("slots and total must be at least 1, pace_seconds positive")
        self.slots = slots
        self.total = total
        self._pace = pace_seconds
        self._clock = clock
        self._limits: dict[str, int] = {}
        self._next_turn: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._counted = 0
        self._queued = 0
        self._busy = 0
        self._active: dict[str, int] = {}
        self._within: dict[str, int] = {}
        self._over: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def waiting(self) -> int:
        """Calls waiting for a slot, all agencies together."""
        return self._queued

    def within_budget(self, key: str) -> int:
        """Calls of ``key`` in progress or waiting that were within its bound when they arrived."""
        return self._within.get(key, 0)

    async def acquire(self, key: str, limit: int, wait_seconds: float | None) -> Ticket:
        """Wait for a slot for ``key`` (at most ``wait_seconds``, None: no bound).

        ``limit`` is the agency's concurrency bound (see :class:`Ticket`). A cancelled wait
        passes on a slot handed over meanwhile and re-raises.
        """
        self._limits[key] = limit
        over_budget = self._within.get(key, 0) >= limit
        over_total = not over_budget and self._counted >= self.total
        if over_budget:
            self._over[key] = self._over.get(key, 0) + 1
        elif not over_total:
            self._within[key] = self._within.get(key, 0) + 1
            self._counted += 1
        if not self._waiting and self._busy < self.slots and self._turn_due(key):
            self._take(key)
            return Ticket(over_budget, True, over_total)
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(granted)
        self._queued += 1
        self._dispatch()
        try:
            await asyncio.wait_for(asyncio.shield(granted), wait_seconds)
        except TimeoutError:
            if granted.done():
                return Ticket(over_budget, True, over_total)  # handed over just as the wait ran out
            self._forget(key, granted)
            return Ticket(over_budget, False, over_total)  # counted until released
        except asyncio.CancelledError:
            if granted.done():
                self.release(key, Ticket(over_budget, True, over_total))  # handed over meanwhile: pass it on
            else:
                self._forget(key, granted)
                self._leave(key, Ticket(over_budget, False, over_total))
            raise
        return Ticket(over_budget, True, over_total)

    def release(self, key: str, ticket: Ticket) -> None:
        """The call of ``key`` that got ``ticket`` is over: give back its slot, if it holds one,
        and hand the free slots to the waiting agencies."""
        self._leave(key, ticket)
        if not ticket.slot:
            return
        self._busy -= 1
        held = self._active[key] - 1
        if held:
            self._active[key] = held
        else:
            del self._active[key]
        self._dispatch()

    def _take(self, key: str) -> None:
        self._busy += 1
        self._active[key] = self._active.get(key, 0) + 1
        if key in self._over:
            self._next_turn[key] = self._clock() + self._pace / self._limits[key]

    def _turn_due(self, key: str) -> bool:
        """Whether ``key`` may take a slot now: always within its bound, else at its pace."""
        return key not in self._over or self._next_turn.get(key, 0.0) <= self._clock()

    def _dispatch(self) -> None:
        while self._busy < self.slots and self._waiting:
            due = [k for k in self._waiting if self._turn_due(k)]
            if not due:
                self._wake_at(min(self._next_turn[k] for k in self._waiting))
                return
            key = min(due, key=lambda k: (k in self._over, self._active.get(k, 0)))
            queue = self._waiting.pop(key)
            granted = queue.popleft()
            self._queued -= 1
            if queue:
                self._waiting[key] = queue  # to the back of the round
            granted.set_result(None)
            self._take(key)

    def _wake_at(self, when: float) -> None:
        """Dispatch again once the earliest paced turn is due (one timer at a time)."""
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, when - self._clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _leave(self, key: str, ticket: Ticket) -> None:
        if ticket.over_budget:
            over = self._over[key] - 1
            if over:
                self._over[key] = over
            else:
                del self._over[key]
                self._next_turn.pop(key, None)
        if not ticket.counted:
            return
        self._counted -= 1
        within = self._within[key] - 1
        if within:
            self._within[key] = within
        else:
            del self._within[key]

    def _forget(self, key: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting[key]
        queue.remove(granted)
        self._queued -= 1
        if not queue:
            del self._waiting[key]

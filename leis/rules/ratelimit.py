"""Rate and concurrency limits (R-Q-2, R-SEC-3): per-agency and per-user token buckets, and
the per-agency and broker-wide bounds on calls in flight.

Time is passed in (a clock), never read directly by the buckets: no I/O.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from leis.common.errors import (
    AGENCY_CONCURRENCY_LIMITED,
    AGENCY_RATE_LIMITED,
    BROKER_CONCURRENCY_LIMITED,
    USER_RATE_LIMITED,
    ResourceExhausted,
)

__all__ = [
    "AGENCY_CONCURRENCY_LIMITED",
    "AGENCY_RATE_LIMITED",
    "BROKER_CONCURRENCY_LIMITED",
    "USER_RATE_LIMITED",
    "ConcurrencyBudget",
    "RateLimiter",
    "RateSpec",
    "TokenBucket",
]

# ErrorInfo reasons (domain leis.dhs.gov).


@dataclass(frozen=True)
class RateSpec:
    """A token-bucket rate: ``rate_per_second`` sustained, ``burst`` at once."""

    rate_per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_per_second) and self.rate_per_second > 0):
            raise ValueError("rate_per_second must be a positive finite number")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")

    @classmethod
    def per_minute(cls, rate_per_minute: float, burst: int) -> RateSpec:
        """The spec for a rate given per minute (as in ``config.toml``)."""
        return cls(rate_per_minute / 60.0, burst)

    @property
    def refill_seconds(self) -> float:
        """Time an idle bucket takes to fill up again."""
        return self.burst / self.rate_per_second


class TokenBucket:
    """A token bucket that starts full; time is passed in, never read."""

    __slots__ = ("_spec", "_stamp", "_tokens")

    def __init__(self, spec: RateSpec, now: float) -> None:
        self._spec = spec
        self._tokens = float(spec.burst)
        self._stamp = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(float(self._spec.burst), self._tokens + elapsed * self._spec.rate_per_second)
        self._stamp = max(self._stamp, now)

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 when one is available now)."""
        self._refill(now)
        if self._tokens >= 1.0:
            return 0.0
        return (1.0 - self._tokens) / self._spec.rate_per_second

    def take(self, now: float) -> float:
        """Take one token if available: returns 0, else the seconds to wait (nothing taken)."""
        wait = self.wait_time(now)
        if wait == 0.0:
            self._tokens -= 1.0
        return wait

    def is_full(self, now: float) -> bool:
        """True when the bucket is full, i.e. indistinguishable from a new one."""
        self._refill(now)
        return self._tokens >= self._spec.burst


class _Buckets:
    """Buckets by key in least-recently-used order, bounded in number."""

    def __init__(self, spec: RateSpec, max_tracked: int) -> None:
        self.spec = spec
        self.max_tracked = max_tracked
        self.buckets: OrderedDict[tuple[str, ...], TokenBucket] = OrderedDict()

    def get(self, key: tuple[str, ...], now: float, spec: RateSpec | None = None) -> TokenBucket:
        """The key's bucket (new and full if untracked), evicting the least recently used above the cap."""
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(spec or self.spec, now)
            self.buckets[key] = bucket
        self.buckets.move_to_end(key)
        while len(self.buckets) > self.max_tracked:
            self.buckets.popitem(last=False)
        return bucket

    def sweep(self, now: float) -> None:
        """Drop full buckets from the idle end: a full bucket equals a new one, so nothing is lost."""
        while self.buckets:
            oldest_key = next(iter(self.buckets))
            if not self.buckets[oldest_key].is_full(now):
                break
            del self.buckets[oldest_key]


class RateLimiter:
    """Per-agency and per-user token buckets (R-Q-2, R-SEC-3).

    Every call of an identified agency takes one token from the agency's bucket before
    anything else is decided (:meth:`take_agency`): a call that is then refused, or whose
    bytes do not parse, has still spent it, so an agency sending garbage slows itself and no
    one else. A search also takes one from its end user's bucket (:meth:`take_user`, keyed by
    agency and user id: user ids are only unique within a partner), refused, taking nothing,
    when that one is empty. Memory is bounded: buckets that have refilled are dropped (a full
    bucket equals a new one) and at most ``max_users`` / ``max_agencies`` are tracked, least
    recently used first out.
    """

    def __init__(
        self,
        per_user: RateSpec,
        per_agency: RateSpec,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_users: int = 100_000,
        max_agencies: int = 10_000,
    ) -> None:
        if max_users < 1 or max_agencies < 1:
            raise ValueError("max_users and max_agencies must be at least 1")
        self._users = _Buckets(per_user, max_users)
        self._agencies = _Buckets(per_agency, max_agencies)
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def tracked(self) -> tuple[int, int]:
        """How many (user, agency) buckets are held right now."""
        return len(self._users.buckets), len(self._agencies.buckets)

    def take_agency(self, agency_id: str, agency_spec: RateSpec | None = None) -> None:
        """Take one token of the agency's bucket or raise ``ResourceExhausted`` with a retry delay.

        ``agency_spec`` is the agency's own limit from its agreement, when it has one.
        """
        with self._lock:
            now = self._clock()
            self._agencies.sweep(now)
            # The spec is part of the key, so a changed agreement limit starts a fresh bucket.
            agency_key = (agency_id, repr(agency_spec)) if agency_spec else (agency_id,)
            wait = self._agencies.get(agency_key, now, agency_spec).take(now)
        if wait > 0:
            raise ResourceExhausted(
                AGENCY_RATE_LIMITED,
                "per-agency query rate limit reached; retry later",
                retry_after_seconds=wait,
            )

    def take_user(self, agency_id: str, user_id: str) -> None:
        """Take one token of the end user's bucket or raise ``ResourceExhausted`` with a retry delay."""
        with self._lock:
            now = self._clock()
            self._users.sweep(now)
            wait = self._users.get((agency_id, user_id), now).take(now)
        if wait > 0:
            raise ResourceExhausted(
                USER_RATE_LIMITED, "per-user query rate limit reached; retry later", retry_after_seconds=wait
            )


class ConcurrencyBudget:
    """Bounds on calls in flight: per agency, and for the whole broker (R-SEC-3).

    :meth:`admit` holds one slot of the agency's budget (its agreement's
    ``max_concurrent_calls``, else ``per_agency``) and one of the broker's (``total``) for
    the duration of a call, or refuses at once: no queue, so a flood costs the flooder a
    refusal per call and never holds the slots another agency's calls need. ``total`` is
    kept above the sum of the agencies' budgets, so only a broker serving every agency at
    its bound can reach it. Single event loop: no lock needed.
    """

    def __init__(self, total: int, per_agency: int, retry_after_seconds: float) -> None:
        if total < 1 or per_agency < 1:
            raise ValueError("total and per_agency must be at least 1")
        if not (math.isfinite(retry_after_seconds) and retry_after_seconds > 0):
            raise ValueError("retry_after_seconds must be a positive finite number")
        self.total = total
        self.per_agency = per_agency
        self._retry_after = retry_after_seconds
        self._in_flight: dict[str, int] = {}
        self._all = 0

    def in_flight(self, agency_id: str | None = None) -> int:
        """Calls admitted and not yet finished, of one agency or of all."""
        return self._all if agency_id is None else self._in_flight.get(agency_id, 0)

    @contextmanager
    def admit(self, agency_id: str, limit: int | None = None) -> Iterator[None]:
        """Hold a slot of the agency's and the broker's budgets for the ``with`` block, or raise."""
        held = self._in_flight.get(agency_id, 0)
        if held >= (limit or self.per_agency):
            raise ResourceExhausted(
                AGENCY_CONCURRENCY_LIMITED,
                "too many calls of this agency in flight; retry later",
                retry_after_seconds=self._retry_after,
            )
        if self._all >= self.total:
            raise ResourceExhausted(
                BROKER_CONCURRENCY_LIMITED,
                "the broker is at its bound of calls in flight; retry later",
                retry_after_seconds=self._retry_after,
            )
        self._in_flight[agency_id] = held + 1
        self._all += 1
        try:
            yield
        finally:
            self._all -= 1
            remaining = self._in_flight[agency_id] - 1
            if remaining:
                self._in_flight[agency_id] = remaining
            else:
                del self._in_flight[agency_id]

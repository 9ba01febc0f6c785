"""Per-user and per-agency token buckets and concurrency budgets (R-Q-2, R-SEC-3)."""

from __future__ import annotations

import pytest

from leis.common.errors import ResourceExhausted
from leis.rules import ratelimit

# --- rate limits (R-Q-2, R-SEC-3) ----------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_spec_is_validated() -> None:
    with pytest.raises(ValueError, match="rate_per_second"):
        ratelimit.RateSpec(0, 1)
    with pytest.raises(ValueError, match="rate_per_second"):
        ratelimit.RateSpec(float("inf"), 1)
    with pytest.raises(ValueError, match="burst"):
        ratelimit.RateSpec(1, 0)
    assert ratelimit.RateSpec.per_minute(120, 5) == ratelimit.RateSpec(2.0, 5)


def test_token_bucket_burst_then_refill() -> None:
    bucket = ratelimit.TokenBucket(ratelimit.RateSpec(2.0, 3), now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0
    assert not bucket.is_full(0.5)
    assert bucket.is_full(2.0)


def test_token_bucket_ignores_clock_going_backwards() -> None:
    bucket = ratelimit.TokenBucket(ratelimit.RateSpec(1.0, 1), now=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) == pytest.approx(1.0)
    assert bucket.take(11.0) == 0.0


def _check(limiter: ratelimit.RateLimiter, agency: str, user: str) -> None:
    """One search call: admission takes the agency's token, then policy the user's."""
    limiter.take_agency(agency)
    limiter.take_user(agency, user)


def test_user_limit_with_retry_after() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(ratelimit.RateSpec(1.0, 2), ratelimit.RateSpec(100.0, 100), clock=clock)
    limiter.take_user("ndex", "u1")
    limiter.take_user("ndex", "u1")
    with pytest.raises(ResourceExhausted) as info:
        limiter.take_user("ndex", "u1")
    assert info.value.reason == ratelimit.USER_RATE_LIMITED
    assert info.value.retry_after_seconds == pytest.approx(1.0)
    limiter.take_user("ndex", "u2")
    limiter.take_user("linx", "u1")  # user ids are scoped by agency
    clock.now += 1.0
    limiter.take_user("ndex", "u1")


def test_agency_limit_across_users() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(ratelimit.RateSpec(10.0, 10), ratelimit.RateSpec(0.5, 3), clock=clock)
    for user in ("a", "b", "c"):
        _check(limiter, "nlets", user)
    with pytest.raises(ResourceExhausted) as info:
        _check(limiter, "nlets", "d")
    assert info.value.reason == ratelimit.AGENCY_RATE_LIMITED
    assert info.value.retry_after_seconds == pytest.approx(2.0)
    _check(limiter, "ndex", "d")


def test_agreement_rate_replaces_the_default() -> None:
    limiter = ratelimit.RateLimiter(
        ratelimit.RateSpec(10.0, 10), ratelimit.RateSpec(100.0, 100), clock=FakeClock()
    )
    own = ratelimit.RateSpec(1.0, 1)
    limiter.take_agency("slow", own)
    with pytest.raises(ResourceExhausted):
        limiter.take_agency("slow", own)
    limiter.take_agency("slow")  # the configured default is another bucket


def test_every_call_spends_the_agency_budget_refused_or_not() -> None:
    """A call the user limit refuses (or that later proves malformed) has spent its agency token."""
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(ratelimit.RateSpec(1.0, 1), ratelimit.RateSpec(1.0, 3), clock=clock)
    _check(limiter, "ndex", "u1")
    with pytest.raises(ResourceExhausted) as user:
        _check(limiter, "ndex", "u1")
    assert user.value.reason == ratelimit.USER_RATE_LIMITED
    limiter.take_agency("ndex")  # a malformed call: refused later, its token spent all the same
    with pytest.raises(ResourceExhausted) as agency:
        _check(limiter, "ndex", "u2")
    assert agency.value.reason == ratelimit.AGENCY_RATE_LIMITED
    _check(limiter, "azlink", "u2")  # others are not affected


def test_rate_limit_error_maps_to_retry_info() -> None:
    limiter = ratelimit.RateLimiter(
        ratelimit.RateSpec(0.25, 1), ratelimit.RateSpec(10.0, 10), clock=FakeClock()
    )
    _check(limiter, "ndex", "u1")
    with pytest.raises(ResourceExhausted) as info:
        _check(limiter, "ndex", "u1")
    status = info.value.to_status()
    assert status.code.name == "RESOURCE_EXHAUSTED"
    assert info.value.retry_after_seconds == pytest.approx(4.0)


def test_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(
        ratelimit.RateSpec(1.0, 5),
        ratelimit.RateSpec(1000.0, 1000),
        clock=clock,
        max_users=50,
        max_agencies=5,
    )
    for i in range(500):
        _check(limiter, f"agency{i % 7}", f"user{i}")
    users, agencies = limiter.tracked
    assert users <= 50
    assert agencies <= 5


def test_idle_buckets_are_evicted() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(ratelimit.RateSpec(1.0, 2), ratelimit.RateSpec(10.0, 20), clock=clock)
    for i in range(20):
        _check(limiter, "ndex", f"user{i}")
    assert limiter.tracked == (20, 1)
    clock.now += 10.0
    _check(limiter, "ndex", "fresh")
    assert limiter.tracked == (1, 1)


# --- concurrency (R-SEC-3) ---------------------------------------------------------------------


def test_concurrency_per_agency_and_overall() -> None:
    budget = ratelimit.ConcurrencyBudget(total=5, per_agency=2, retry_after_seconds=0.25)
    with budget.admit("tdex"), budget.admit("tdex"):
        with pytest.raises(ResourceExhausted) as agency, budget.admit("tdex"):
            pass
        assert agency.value.reason == ratelimit.AGENCY_CONCURRENCY_LIMITED
        assert agency.value.retry_after_seconds == 0.25
        assert budget.in_flight("tdex") == 2
        with budget.admit("ndex"), budget.admit("big", limit=4):
            assert budget.in_flight() == 4
            with (
                pytest.raises(ResourceExhausted) as broker,
                budget.admit("big", limit=4),
                budget.admit("big", limit=4),
            ):
                pass
            assert broker.value.reason == ratelimit.BROKER_CONCURRENCY_LIMITED
            assert budget.in_flight("big") == 1
    assert budget.in_flight() == 0
    assert budget.in_flight("tdex") == 0


def test_a_failing_call_gives_its_slot_back() -> None:
    budget = ratelimit.ConcurrencyBudget(total=1, per_agency=1, retry_after_seconds=1.0)
    with pytest.raises(RuntimeError), budget.admit("ndex"):
        raise RuntimeError
    with budget.admit("ndex"):
        assert budget.in_flight("ndex") == 1


def test_concurrency_bounds_are_validated() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ratelimit.ConcurrencyBudget(total=0, per_agency=1, retry_after_seconds=1.0)
    with pytest.raises(ValueError, match="retry_after_seconds"):
        ratelimit.ConcurrencyBudget(total=1, per_agency=1, retry_after_seconds=0.0)


def test_limiter_bounds_are_validated() -> None:
    with pytest.raises(ValueError, match="max_users"):
        ratelimit.RateLimiter(ratelimit.RateSpec(1, 1), ratelimit.RateSpec(1, 1), max_users=0)

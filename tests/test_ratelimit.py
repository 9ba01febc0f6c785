"""Per-user and per-agency token buckets (R-Q-2, R-SEC-3)."""

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


def test_user_limit_with_retry_after() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(ratelimit.RateSpec(1.0, 2), ratelimit.RateSpec(100.0, 100), clock=clock)
    limiter.check("ndex", "u1")
    limiter.check("ndex", "u1")
    with pytest.raises(ResourceExhausted) as info:
        limiter.check("ndex", "u1")
    assert info.value.reason == ratelimit.USER_RATE_LIMITED
    assert info.value.retry_after_seconds == pytest.approx(1.0)
    limiter.check("ndex", "u2")
    limiter.check("linx", "u1")  # user ids are scoped by agency
    clock.now += 1.0
    limiter.check("ndex", "u1")


def test_agency_limit_across_users() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(ratelimit.RateSpec(10.0, 10), ratelimit.RateSpec(0.5, 3), clock=clock)
    for user in ("a", "b", "c"):
        limiter.check("nlets", user)
    with pytest.raises(ResourceExhausted) as info:
        limiter.check("nlets", "d")
    assert info.value.reason == ratelimit.AGENCY_RATE_LIMITED
    assert info.value.retry_after_seconds == pytest.approx(2.0)
    limiter.check("ndex", "d")


def test_refused_call_takes_no_token() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(ratelimit.RateSpec(1.0, 1), ratelimit.RateSpec(1.0, 2), clock=clock)
    limiter.check("ndex", "u1")
    for _ in range(5):
        with pytest.raises(ResourceExhausted):
            limiter.check("ndex", "u1")
    limiter.check("ndex", "u2")  # the agency still had its second token


def test_rate_limit_error_maps_to_retry_info() -> None:
    limiter = ratelimit.RateLimiter(
        ratelimit.RateSpec(0.25, 1), ratelimit.RateSpec(10.0, 10), clock=FakeClock()
    )
    limiter.check("ndex", "u1")
    with pytest.raises(ResourceExhausted) as info:
        limiter.check("ndex", "u1")
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
        limiter.check(f"agency{i % 7}", f"user{i}")
    users, agencies = limiter.tracked
    assert users <= 50
    assert agencies <= 5


def test_idle_buckets_are_evicted() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(ratelimit.RateSpec(1.0, 2), ratelimit.RateSpec(10.0, 20), clock=clock)
    for i in range(20):
        limiter.check("ndex", f"user{i}")
    assert limiter.tracked == (20, 1)
    clock.now += 10.0
    limiter.check("ndex", "fresh")
    assert limiter.tracked == (1, 1)


def test_limiter_bounds_are_validated() -> None:
    with pytest.raises(ValueError, match="max_users"):
        ratelimit.RateLimiter(ratelimit.RateSpec(1, 1), ratelimit.RateSpec(1, 1), max_users=0)

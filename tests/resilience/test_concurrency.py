"""Adaptive concurrency limit (AIMD)."""

from __future__ import annotations

import pytest

from orchestrator.resilience.concurrency import AIMDConfig, AIMDLimiter


def test_defaults():
    limiter = AIMDLimiter()
    c = limiter.config
    assert (c.initial_limit, c.min_limit, c.max_limit, c.backoff_ratio, c.slow_latency_s) == (50, 5, 200, 0.9, 2.5)
    assert limiter.limit == 50 and limiter.in_flight == 0


def test_acquire_stops_at_the_limit():
    limiter = AIMDLimiter(AIMDConfig(initial_limit=5, min_limit=5))
    assert [limiter.try_acquire() for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.in_flight == 5 and limiter.rejected == 2
    limiter.release(None)
    assert limiter.in_flight == 4 and limiter.try_acquire()


def test_latency_spike_shrinks_the_limit():
    limiter = AIMDLimiter()
    for _ in range(10):
        assert limiter.try_acquire()
        limiter.release(3.0)  # slower than 2.5 s
    assert limiter.limit == int(50 * 0.9**10)  # 17
    for _ in range(100):
        limiter.try_acquire()
        limiter.release(0.2, dropped=True)
    assert limiter.limit == 5  # the floor


def test_drop_shrinks_even_when_fast():
    limiter = AIMDLimiter()
    limiter.try_acquire()
    limiter.release(0.01, dropped=True)
    assert limiter.limit == 45


def test_recovery_grows_the_limit_when_it_is_used():
    limiter = AIMDLimiter(AIMDConfig(initial_limit=10, min_limit=5, max_limit=20))
    # only a few calls in flight: the limit is not in use and does not grow
    for _ in range(50):
        limiter.try_acquire()
        limiter.release(0.1)
    assert limiter.limit == 10
    # keep the limit busy: every good sample adds one, up to the ceiling
    grown = []
    for _ in range(40):
        while limiter.try_acquire():
            pass
        limiter.release(0.1)
        grown.append(limiter.limit)
    assert grown[0] == 11
    assert max(grown) == 20 and limiter.limit == 20


def test_spike_then_recovery():
    limiter = AIMDLimiter()
    for _ in range(30):
        limiter.try_acquire()
        limiter.release(5.0)
    low = limiter.limit
    assert low < 10
    for _ in range(300):
        while limiter.try_acquire():
            pass
        limiter.release(0.1)
    assert limiter.limit > 100


def test_bounds_hold_and_release_never_goes_negative():
    limiter = AIMDLimiter(AIMDConfig(initial_limit=6, min_limit=5, max_limit=8))
    for i in range(1000):
        while limiter.try_acquire():
            pass
        limiter.release(0.1 if i % 3 else 9.0, dropped=(i % 7 == 0))
        assert 5 <= limiter.limit <= 8
        assert 0 <= limiter.in_flight <= 8
    for _ in range(20):
        limiter.release(0.1)
    assert limiter.in_flight == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"min_limit": 0}, {"initial_limit": 300}, {"backoff_ratio": 1.0}, {"slow_latency_s": 0.0}],
)
def test_invalid_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        AIMDConfig(**kwargs)

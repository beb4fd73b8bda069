"""Backoff with full jitter, bounded by the payment's deadline; the Deadline value."""

from __future__ import annotations

import math
import random

import pytest
import tenacity
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.resilience.backoff import Backoff, BackoffConfig, Deadline

ROOMY = 100.0  # a remaining deadline that never constrains the wait


def test_defaults():
    c = BackoffConfig()
    assert (c.base_s, c.cap_s, c.max_attempts, c.min_attempt_s) == (0.1, 1.0, 3, 1.0)


@pytest.mark.parametrize("attempt", range(1, 12))
def test_waits_within_zero_and_the_exponential_ceiling(attempt):
    config = BackoffConfig(base_s=0.1, cap_s=2.0, max_attempts=100, min_attempt_s=0.0)
    backoff = Backoff(config, rng=random.Random(attempt))
    ceiling = min(2.0, 0.1 * 2 ** (attempt - 1))
    assert backoff.ceiling(attempt) == pytest.approx(ceiling)
    waits = [backoff.next_wait(attempt, remaining_deadline_s=ROOMY) for _ in range(2000)]
    assert all(0.0 <= w <= ceiling for w in waits)
    # full jitter spreads over the whole interval, not just near the top or bottom
    assert min(waits) < 0.1 * ceiling and max(waits) > 0.9 * ceiling
    assert sum(waits) / len(waits) == pytest.approx(ceiling / 2, rel=0.1)


def test_matches_tenacity_full_jitter_bounds():
    config = BackoffConfig(base_s=0.05, cap_s=0.8, max_attempts=100, min_attempt_s=0.0)
    ours = Backoff(config, rng=random.Random(5))
    theirs = tenacity.wait_random_exponential(multiplier=0.05, max=0.8)

    class State:
        def __init__(self, n):
            self.attempt_number = n

    random.seed(5)
    for attempt in range(1, 10):
        a = [ours.next_wait(attempt, remaining_deadline_s=ROOMY) for _ in range(3000)]
        b = [theirs(State(attempt)) for _ in range(3000)]
        assert max(a) <= ours.ceiling(attempt) and max(b) <= ours.ceiling(attempt)
        assert max(a) == pytest.approx(max(b), rel=0.02)
        assert sum(a) / len(a) == pytest.approx(sum(b) / len(b), rel=0.1)


def test_seeded_rng_is_deterministic():
    config = BackoffConfig(max_attempts=10)
    first = Backoff(config, rng=random.Random(42))
    second = Backoff(config, rng=random.Random(42))
    seq1 = [first.next_wait(n, remaining_deadline_s=9.0) for n in range(1, 10)]
    seq2 = [second.next_wait(n, remaining_deadline_s=9.0) for n in range(1, 10)]
    assert seq1 == seq2
    other = Backoff(config, rng=random.Random(43))
    assert seq1 != [other.next_wait(n, remaining_deadline_s=9.0) for n in range(1, 10)]


def test_attempt_cap():
    backoff = Backoff(BackoffConfig(max_attempts=3), rng=random.Random(1))
    assert backoff.next_wait(1, remaining_deadline_s=9.0) is not None
    assert backoff.next_wait(2, remaining_deadline_s=9.0) is not None
    assert backoff.next_wait(3, remaining_deadline_s=9.0) is None
    assert backoff.next_wait(3, remaining_deadline_s=9.0, retry_after_s=0.1) is None


@settings(max_examples=300, deadline=None)
@given(
    attempt=st.integers(1, 60),
    remaining=st.floats(0.0, 20.0, allow_nan=False),
    retry_after=st.one_of(st.none(), st.floats(0.0, 30.0, allow_nan=False)),
    seed=st.integers(0, 1000),
)
def test_never_exceeds_the_remaining_deadline(attempt, remaining, retry_after, seed):
    config = BackoffConfig(max_attempts=1000)
    wait = Backoff(config, rng=random.Random(seed)).next_wait(
        attempt, remaining_deadline_s=remaining, retry_after_s=retry_after
    )
    if wait is None:
        return
    assert wait >= 0.0
    assert wait + config.min_attempt_s <= remaining + 1e-12
    if retry_after is None:
        assert wait <= config.cap_s


def test_no_retry_when_no_attempt_fits():
    backoff = Backoff(BackoffConfig(min_attempt_s=1.0), rng=random.Random(1))
    assert backoff.next_wait(1, remaining_deadline_s=0.99) is None
    assert backoff.next_wait(1, remaining_deadline_s=0.0) is None
    assert backoff.next_wait(1, remaining_deadline_s=1.0) == 0.0  # room for an attempt, none for a wait


def test_wait_is_shortened_to_leave_an_attempt():
    config = BackoffConfig(base_s=1.0, cap_s=1.0, min_attempt_s=1.0, max_attempts=10)
    backoff = Backoff(config, rng=random.Random(9))
    waits = [backoff.next_wait(5, remaining_deadline_s=1.25) for _ in range(500)]
    assert all(0.0 <= w <= 0.25 for w in waits)


def test_retry_after_honoured_within_the_deadline():
    backoff = Backoff(BackoffConfig(), rng=random.Random(1))
    assert backoff.next_wait(1, remaining_deadline_s=9.0, retry_after_s=2.0) == 2.0
    assert backoff.next_wait(1, remaining_deadline_s=3.0, retry_after_s=2.0) == 2.0  # 2 + 1 <= 3
    assert backoff.next_wait(1, remaining_deadline_s=2.9, retry_after_s=2.0) is None  # refused
    assert backoff.next_wait(1, remaining_deadline_s=9.0, retry_after_s=math.inf) is None
    assert backoff.next_wait(1, remaining_deadline_s=9.0, retry_after_s=0.0) == 0.0


def test_invalid_retry_after_falls_back_to_backoff():
    backoff = Backoff(BackoffConfig(), rng=random.Random(1))
    for bad in (math.nan, -1.0):
        wait = backoff.next_wait(1, remaining_deadline_s=9.0, retry_after_s=bad)
        assert wait is not None and 0.0 <= wait <= 0.1


class FakeClock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_deadline():
    clock = FakeClock()
    deadline = Deadline.after(10.0, clock=clock)
    assert deadline.expires_at == 20.0
    assert deadline.remaining() == 10.0 and not deadline.expired
    assert deadline.cap(3.0) == 3.0
    clock.now = 18.5
    assert deadline.remaining() == 1.5
    assert deadline.cap(3.0) == 1.5
    clock.now = 20.0
    assert deadline.expired and deadline.remaining() == 0.0 and deadline.cap(3.0) == 0.0
    clock.now = 25.0
    assert deadline.remaining() == 0.0
    assert Deadline(20.0, clock) == deadline  # compared by expiry only


def test_deadline_default_is_the_payment_deadline():
    clock = FakeClock()
    assert Deadline.after(clock=clock).remaining() == 10.0

"""Breaker conformance, ported in behaviour from Resilience4j's CircuitBreakerStateMachine tests."""

from __future__ import annotations

import random

import pytest

from orchestrator.resilience.breaker import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
)

S = BreakerState
FAST = 0.1  # seconds: a call well under the slow-call duration
SLOW = 3.0  # seconds: a call over the default 2.5 s slow-call duration


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(config: BreakerConfig | None = None, **kwargs):
    clock = FakeClock()
    events: list[tuple[S, S, str]] = []
    breaker = CircuitBreaker(
        config if config is not None else BreakerConfig(wait_jitter=0.0, **kwargs),
        clock=clock,
        rng=random.Random(7),
        on_transition=lambda old, new, reason: events.append((old, new, reason)),
    )
    return breaker, clock, events


def record(breaker: CircuitBreaker, failures: int = 0, successes: int = 0, duration: float = FAST) -> None:
    """Successes first, then failures."""
    for _ in range(successes):
        assert breaker.try_acquire()
        breaker.on_success(duration)
    for _ in range(failures):
        assert breaker.try_acquire()
        breaker.on_failure(duration)


def trip(breaker: CircuitBreaker) -> None:
    record(breaker, failures=breaker.config.effective_minimum_calls)
    assert breaker.state is S.OPEN


def to_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    snap = breaker.snapshot()
    clock.now = snap.open_until
    assert breaker.state is S.HALF_OPEN


# --- closed ------------------------------------------------------------------------------------------


def test_defaults_are_payment_sized():
    c = BreakerConfig()
    assert (c.window_type, c.window_size, c.window_duration_s, c.minimum_calls) == ("count", 20, 30, 10)
    assert c.failure_rate_threshold == 0.5
    assert c.slow_call_duration_s == 2.5
    assert c.permitted_calls_in_half_open == 3
    assert c.wait_in_open_s == 5.0 and c.max_wait_in_open_s == 60.0
    assert [s.value for s in S] == ["closed", "open", "half_open", "forced_open", "disabled"]


def test_below_minimum_calls_nothing_trips():
    breaker, _, events = make()
    record(breaker, failures=9)  # 100% failures, but one call short of the minimum of 10
    snap = breaker.snapshot()
    assert snap.state is S.CLOSED
    assert snap.failure_rate is None and snap.slow_call_rate is None
    assert snap.calls == 9 and snap.failed_calls == 9
    assert events == []
    breaker.on_failure(FAST)  # the tenth
    assert breaker.state is S.OPEN


def test_minimum_calls_clamped_to_count_window():
    breaker, _, _ = make(window_size=5, minimum_calls=10)
    assert breaker.config.effective_minimum_calls == 5
    record(breaker, failures=5)
    assert breaker.state is S.OPEN


def test_failure_threshold_is_inclusive():
    breaker, _, events = make()
    record(breaker, successes=10, failures=9)  # 9/19 < 50%
    assert breaker.state is S.CLOSED
    assert breaker.snapshot().failure_rate == pytest.approx(9 / 19)
    breaker.on_failure(FAST)  # 10/20 = exactly 50%
    assert breaker.state is S.OPEN
    assert events == [(S.CLOSED, S.OPEN, "failure_rate")]


def test_exactly_threshold_at_minimum_trips():
    breaker, _, _ = make()
    record(breaker, successes=5, failures=5)  # 5/10 = 50% at exactly the minimum
    assert breaker.state is S.OPEN


def test_below_threshold_stays_closed():
    breaker, _, _ = make()
    record(breaker, successes=11, failures=9)  # 45%
    assert breaker.state is S.CLOSED
    assert breaker.snapshot().failure_rate == pytest.approx(0.45)


def test_success_that_completes_the_minimum_can_trip():
    breaker, _, _ = make()
    record(breaker, failures=9)
    assert breaker.state is S.CLOSED
    record(breaker, successes=1)  # 9/10 failed, now measurable
    assert breaker.state is S.OPEN


def test_slow_successes_trip_the_slow_call_rate():
    breaker, _, events = make()
    record(breaker, successes=2, duration=FAST)
    record(breaker, successes=7, duration=SLOW)  # 7/9, below the minimum
    assert breaker.state is S.CLOSED
    record(breaker, successes=1, duration=SLOW)  # 8/10 = 80%, inclusive
    snap = breaker.snapshot()
    assert snap.state is S.OPEN
    assert snap.failure_rate == 0.0 and snap.slow_call_rate == pytest.approx(0.8)
    assert events == [(S.CLOSED, S.OPEN, "slow_call_rate")]


def test_slow_means_strictly_longer_than_the_duration():
    breaker, _, _ = make()
    record(breaker, successes=10, duration=2.5)  # exactly the threshold: not slow
    assert breaker.state is S.CLOSED
    assert breaker.snapshot().slow_call_rate == 0.0


def test_slow_failures_count_for_both_rates():
    breaker, _, _ = make(failure_rate_threshold=1.0)
    record(breaker, successes=2)
    record(breaker, failures=8, duration=SLOW)
    assert breaker.state is S.OPEN
    snap = breaker.snapshot()
    assert snap.slow_call_rate == pytest.approx(0.8) and snap.failure_rate == pytest.approx(0.8)


def test_count_window_forgets_the_oldest_call():
    breaker, _, _ = make()
    record(breaker, failures=9, successes=11)  # 45% over 20
    record(breaker, successes=20)  # the 9 failures slide out
    snap = breaker.snapshot()
    assert snap.calls == 20 and snap.failed_calls == 0
    record(breaker, failures=9)  # 9 of the last 20 again
    assert breaker.state is S.CLOSED
    breaker.on_failure(FAST)  # 10/20
    assert breaker.state is S.OPEN


# --- open --------------------------------------------------------------------------------------------


def test_open_rejects_without_calling():
    breaker, clock, _ = make()
    trip(breaker)
    for _ in range(100):
        assert breaker.try_acquire() is False
    clock.advance(4.99)
    assert breaker.try_acquire() is False
    assert breaker.state is S.OPEN


def test_open_turns_half_open_only_after_the_wait():
    breaker, clock, events = make()
    trip(breaker)
    snap = breaker.snapshot()
    assert snap.open_until == pytest.approx(clock.now + 5.0)
    clock.advance(5.0 - 1e-6)
    assert breaker.state is S.OPEN
    clock.advance(1e-6)
    assert breaker.try_acquire() is True
    assert breaker.state is S.HALF_OPEN
    assert events[-1] == (S.OPEN, S.HALF_OPEN, "wait_elapsed")


def test_results_arriving_in_open_count_for_nothing():
    breaker, clock, _ = make()
    trip(breaker)
    for _ in range(50):
        breaker.on_success(FAST)  # in-flight calls from before the trip
    assert breaker.state is S.OPEN
    assert breaker.snapshot().failed_calls == 10


# --- half open ---------------------------------------------------------------------------------------


def test_exactly_n_probes_allowed_in_half_open():
    breaker, clock, _ = make(permitted_calls_in_half_open=3)
    to_half_open(breaker, clock)
    assert [breaker.try_acquire() for _ in range(5)] == [True, True, True, False, False]
    clock.advance(1000)  # time alone does not grant more probes
    assert breaker.try_acquire() is False
    assert breaker.state is S.HALF_OPEN


def test_successful_probes_close_and_reset():
    breaker, clock, events = make()
    to_half_open(breaker, clock)
    for _ in range(3):
        assert breaker.try_acquire()
    breaker.on_success(FAST)
    breaker.on_failure(FAST)  # 1/3 < 50%
    assert breaker.state is S.HALF_OPEN  # not before all three are in
    breaker.on_success(FAST)
    snap = breaker.snapshot()
    assert snap.state is S.CLOSED
    assert snap.calls == 0 and snap.consecutive_trips == 0
    assert events[-1] == (S.HALF_OPEN, S.CLOSED, "probes_passed")


def test_failed_probes_reopen():
    breaker, clock, events = make()
    to_half_open(breaker, clock)
    for _ in range(3):
        assert breaker.try_acquire()
    breaker.on_failure(FAST)
    breaker.on_success(FAST)
    breaker.on_failure(FAST)  # 2/3 >= 50%
    snap = breaker.snapshot()
    assert snap.state is S.OPEN
    assert snap.consecutive_trips == 2
    assert snap.failure_rate == pytest.approx(2 / 3)
    assert events[-1] == (S.HALF_OPEN, S.OPEN, "probe_failure_rate")
    assert breaker.try_acquire() is False


def test_slow_probes_reopen():
    breaker, clock, events = make()
    to_half_open(breaker, clock)
    for _ in range(3):
        assert breaker.try_acquire()
        breaker.on_success(SLOW)  # 3/3 slow >= 80%
    assert breaker.state is S.OPEN
    assert events[-1] == (S.HALF_OPEN, S.OPEN, "probe_slow_call_rate")


def test_on_ignored_frees_a_probe_permit():
    breaker, clock, _ = make()
    to_half_open(breaker, clock)
    for _ in range(3):
        assert breaker.try_acquire()
    assert breaker.try_acquire() is False
    breaker.on_ignored()  # e.g. the probe's card was declined: says nothing about the provider
    assert breaker.try_acquire() is True
    assert breaker.try_acquire() is False
    for _ in range(3):
        breaker.on_success(FAST)
    assert breaker.state is S.CLOSED


def test_on_ignored_counts_for_nothing_in_closed():
    breaker, _, _ = make()
    for _ in range(30):
        assert breaker.try_acquire()
        breaker.on_ignored()
    assert breaker.snapshot().calls == 0


def test_late_results_without_outstanding_probe_are_dropped():
    breaker, clock, _ = make()
    to_half_open(breaker, clock)
    for _ in range(10):
        breaker.on_failure(FAST)  # results of calls let through before the trip
    assert breaker.state is S.HALF_OPEN
    assert breaker.snapshot().calls == 0


def test_max_wait_in_half_open_reopens():
    breaker, clock, events = make(max_wait_in_half_open_s=2.0)
    to_half_open(breaker, clock)
    assert breaker.try_acquire()
    clock.advance(1.9)
    assert breaker.state is S.HALF_OPEN
    clock.advance(0.1)
    assert breaker.state is S.OPEN
    assert events[-1] == (S.HALF_OPEN, S.OPEN, "half_open_timeout")
    assert breaker.snapshot().consecutive_trips == 2


# --- open wait growth --------------------------------------------------------------------------------


def test_repeated_trips_lengthen_the_wait_up_to_the_cap():
    breaker, clock, _ = make()
    waits = []
    trip(breaker)
    for _ in range(8):
        snap = breaker.snapshot()
        waits.append(snap.open_until - clock.now)
        clock.now = snap.open_until
        for _ in range(3):
            assert breaker.try_acquire()
            breaker.on_failure(FAST)
    assert waits == pytest.approx([5, 10, 20, 40, 60, 60, 60, 60])


def test_safe_fast_failures_keep_the_base_wait_and_a_costly_one_resumes_growth():
    breaker, clock, _ = make()
    record(breaker, failures=0)
    for _ in range(10):
        assert breaker.try_acquire()
        breaker.on_failure(FAST, safe=True)
    waits = []
    for probe_failure in ("safe", "safe", "slow", "safe", "ambiguous", "safe"):
        snap = breaker.snapshot()
        assert snap.state is S.OPEN
        waits.append(snap.open_until - clock.now)
        clock.now = snap.open_until
        for _ in range(3):
            assert breaker.try_acquire()
            if probe_failure == "safe":
                breaker.on_failure(FAST, safe=True)
            elif probe_failure == "slow":  # a slow failure is costly even when the provider says it is safe
                breaker.on_failure(SLOW, safe=True)
            else:
                breaker.on_failure(FAST)
    assert waits == pytest.approx([5, 5, 5, 10, 10, 20])
    assert breaker.snapshot().consecutive_trips == 7


def test_open_wait_jitter_stays_in_bounds_and_still_grows():
    config = BreakerConfig()  # default jitter 0.2
    for seed in range(50):
        clock = FakeClock()
        breaker = CircuitBreaker(config, clock=clock, rng=random.Random(seed))
        trip(breaker)
        previous = 0.0
        for trips in range(1, 9):
            snap = breaker.snapshot()
            wait = snap.open_until - clock.now
            ceiling = config.open_wait_ceiling(trips)
            assert ceiling * 0.8 - 1e-9 <= wait <= min(60.0, ceiling * 1.2) + 1e-9
            assert wait <= 60.0
            if ceiling < 40:
                assert wait > previous
            previous = wait
            clock.now = snap.open_until
            for _ in range(3):
                assert breaker.try_acquire()
                breaker.on_failure(FAST)


def test_closing_resets_the_wait():
    breaker, clock, _ = make()
    to_half_open(breaker, clock)
    for _ in range(3):
        breaker.try_acquire()
        breaker.on_failure(FAST)
    assert breaker.snapshot().consecutive_trips == 2
    clock.now = breaker.snapshot().open_until
    for _ in range(3):
        breaker.try_acquire()
        breaker.on_success(FAST)
    assert breaker.state is S.CLOSED
    trip(breaker)
    assert breaker.snapshot().open_until - clock.now == pytest.approx(5.0)


# --- operator states ---------------------------------------------------------------------------------


def test_forced_open_never_leaves_by_itself():
    breaker, clock, events = make()
    breaker.force_open()
    for _ in range(20):
        clock.advance(3600)
        assert breaker.try_acquire() is False
        breaker.on_success(FAST)
        assert breaker.state is S.FORCED_OPEN
    assert events == [(S.CLOSED, S.FORCED_OPEN, "forced_open")]
    breaker.reset()
    assert breaker.state is S.CLOSED and breaker.try_acquire()


def test_disabled_lets_everything_through_and_never_trips():
    breaker, clock, events = make()
    breaker.disable()
    for _ in range(500):
        assert breaker.try_acquire() is True
        breaker.on_failure(SLOW)
    assert breaker.state is S.DISABLED
    assert events == [(S.CLOSED, S.DISABLED, "disabled")]


def test_reset_clears_the_window():
    breaker, _, events = make()
    record(breaker, failures=9)
    breaker.reset()  # already closed: no event
    assert events == []
    record(breaker, failures=9)
    assert breaker.state is S.CLOSED
    assert breaker.snapshot().calls == 9


def test_no_event_for_same_state():
    breaker, clock, events = make()
    breaker.reset()
    breaker.force_open()
    breaker.force_open()
    breaker.disable()
    breaker.disable()
    breaker.reset()
    breaker.reset()
    assert [(o.value, n.value) for o, n, _ in events] == [
        ("closed", "forced_open"), ("forced_open", "disabled"), ("disabled", "closed")
    ]


def test_operator_can_leave_open_state():
    breaker, _, events = make()
    trip(breaker)
    breaker.reset()
    assert breaker.state is S.CLOSED and breaker.try_acquire()
    assert events[-1] == (S.OPEN, S.CLOSED, "reset")


# --- time-based window -------------------------------------------------------------------------------


def test_time_window_forgets_old_calls():
    breaker, clock, _ = make(window_type="time", window_duration_s=30)
    record(breaker, failures=9)
    clock.advance(29.0)  # still inside the window
    assert breaker.snapshot().calls == 9
    clock.advance(1.0)  # the bucket of those calls has slid out
    assert breaker.snapshot().calls == 0
    record(breaker, failures=1, successes=9)  # 10% over the window now
    assert breaker.state is S.CLOSED


def test_time_window_trips_on_calls_within_the_window():
    breaker, clock, _ = make(window_type="time", window_duration_s=30)
    for _ in range(9):
        record(breaker, failures=1)
        clock.advance(3.0)  # 9 failures over 27 s
    assert breaker.state is S.CLOSED
    record(breaker, failures=1)
    assert breaker.state is S.OPEN


def test_time_window_partial_slide():
    breaker, clock, _ = make(window_type="time", window_duration_s=10)
    record(breaker, failures=4)
    clock.advance(5.0)
    record(breaker, successes=4)
    assert breaker.snapshot().calls == 8
    clock.advance(5.0)  # the failures' second slid out, the successes' did not
    snap = breaker.snapshot()
    assert (snap.calls, snap.failed_calls) == (4, 0)
    clock.advance(100.0)
    assert breaker.snapshot().calls == 0


def test_time_window_minimum_is_not_clamped():
    breaker, _, _ = make(window_type="time", window_size=5, minimum_calls=10)
    record(breaker, failures=9)
    assert breaker.state is S.CLOSED


# --- config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_rate_threshold": 0.0},
        {"slow_call_rate_threshold": 1.5},
        {"window_size": 0},
        {"window_type": "sliding"},
        {"permitted_calls_in_half_open": 0},
        {"wait_jitter": 1.0},
        {"wait_in_open_s": 90.0},
        {"max_wait_in_half_open_s": 0.0},
    ],
)
def test_invalid_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        BreakerConfig(**kwargs)

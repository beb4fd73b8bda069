"""Property tests: random call sequences against the breaker's invariants."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.resilience.breaker import BreakerConfig, BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


duration = st.floats(min_value=0.0, max_value=6.0, allow_nan=False)
step = st.one_of(
    st.tuples(st.just("advance"), st.floats(min_value=0.0, max_value=40.0, allow_nan=False)),
    st.tuples(st.just("acquire"), st.just(0.0)),
    st.tuples(st.just("success"), duration),
    st.tuples(st.just("failure"), duration),
    st.tuples(st.just("ignore"), st.just(0.0)),
    st.tuples(st.just("operator"), st.sampled_from([0.0, 1.0, 2.0, 3.0])),
)

configs = st.builds(
    BreakerConfig,
    window_type=st.sampled_from(["count", "time"]),
    window_size=st.integers(1, 12),
    window_duration_s=st.integers(1, 20),
    minimum_calls=st.integers(1, 12),
    failure_rate_threshold=st.floats(0.05, 1.0),
    slow_call_rate_threshold=st.floats(0.05, 1.0),
    slow_call_duration_s=st.floats(0.1, 5.0),
    wait_in_open_s=st.floats(0.0, 10.0),
    permitted_calls_in_half_open=st.integers(1, 5),
    max_wait_in_half_open_s=st.one_of(st.none(), st.floats(0.5, 30.0)),
)


def run(config: BreakerConfig, steps: list[tuple[str, float]], seed: int, operators: bool) -> None:
    clock = FakeClock()
    episode = {"granted": 0, "released": 0}
    events: list[tuple[BreakerState, BreakerState]] = []

    def on_transition(old: BreakerState, new: BreakerState, reason: str) -> None:
        assert old is not new
        events.append((old, new))
        if new is BreakerState.HALF_OPEN:
            episode["granted"] = episode["released"] = 0

    breaker = CircuitBreaker(config, clock=clock, rng=random.Random(seed), on_transition=on_transition)
    n = config.permitted_calls_in_half_open
    outstanding = 0  # permits granted and not yet answered with a result

    for kind, value in steps:
        if kind == "advance":
            clock.now += value
        elif kind == "acquire":
            before = breaker.snapshot()
            granted = breaker.try_acquire()
            after = breaker.state
            if before.state is BreakerState.OPEN and clock.now < before.open_until:
                assert not granted, "an open breaker let a call through before its wait"
            if before.state is BreakerState.FORCED_OPEN:
                assert not granted
            if before.state in (BreakerState.CLOSED, BreakerState.DISABLED):
                assert granted
            if granted:
                outstanding += 1
                if after is not BreakerState.CLOSED and after is not BreakerState.DISABLED:
                    assert after is BreakerState.HALF_OPEN, "only probes pass a breaker that is not closed"
                    episode["granted"] += 1
        elif kind in ("success", "failure", "ignore"):
            if outstanding == 0:
                continue
            outstanding -= 1
            if kind == "success":
                breaker.on_success(value)
            elif kind == "failure":
                breaker.on_failure(value)
            else:
                if breaker.state is BreakerState.HALF_OPEN:
                    episode["released"] += 1
                breaker.on_ignored()
        elif operators:
            [breaker.reset, breaker.force_open, breaker.disable, lambda: None][int(value)]()

        snap = breaker.snapshot()
        assert snap.state in set(BreakerState)
        assert isinstance(snap.state.value, str)
        for rate in (snap.failure_rate, snap.slow_call_rate):
            assert rate is None or 0.0 <= rate <= 1.0
        assert 0 <= snap.failed_calls <= snap.calls and 0 <= snap.slow_calls <= snap.calls
        if snap.state is BreakerState.HALF_OPEN:
            # never more than N probes at once: each ignored one frees exactly one permit
            assert episode["granted"] - episode["released"] <= n
            assert snap.calls <= n
        if snap.state is BreakerState.OPEN:
            assert snap.open_until is not None
            assert snap.open_until - clock.now <= config.max_wait_in_open_s + 1e-9
        else:
            assert snap.open_until is None
        if snap.state is BreakerState.CLOSED and snap.failure_rate is not None:
            assert snap.failure_rate < config.failure_rate_threshold or snap.calls == 0
            assert snap.slow_call_rate < config.slow_call_rate_threshold


@settings(max_examples=300, deadline=None)
@given(config=configs, steps=st.lists(step, max_size=120), seed=st.integers(0, 2**32 - 1))
def test_invariants_hold_on_random_sequences(config, steps, seed):
    run(config, steps, seed, operators=False)


@settings(max_examples=150, deadline=None)
@given(config=configs, steps=st.lists(step, max_size=120), seed=st.integers(0, 2**32 - 1))
def test_invariants_hold_with_operator_actions(config, steps, seed):
    run(config, steps, seed, operators=True)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(["acquire", "advance", "result"]), st.booleans()), max_size=200),
    seed=st.integers(0, 2**32 - 1),
)
def test_open_never_passes_more_than_the_probes(steps, seed):
    """Count every call let through while the breaker was not closed: per half-open episode, at most N."""
    config = BreakerConfig(permitted_calls_in_half_open=3)
    clock = FakeClock()
    passed_since_open: list[int] = [0]

    def on_transition(old, new, reason):
        if new in (BreakerState.OPEN, BreakerState.HALF_OPEN):
            passed_since_open.append(0)

    breaker = CircuitBreaker(config, clock=clock, rng=random.Random(seed), on_transition=on_transition)
    pending = 0
    for kind, flag in steps:
        if kind == "advance":
            clock.now += 6.0 if flag else 0.5
        elif kind == "acquire":
            not_closed = breaker.state is not BreakerState.CLOSED
            if breaker.try_acquire():
                pending += 1
                if not_closed or breaker.state is BreakerState.HALF_OPEN:
                    passed_since_open[-1] += 1
                    assert passed_since_open[-1] <= 3
        elif pending:
            pending -= 1
            if flag:
                breaker.on_failure(0.1)
            else:
                breaker.on_success(0.1)


@settings(max_examples=300, deadline=None)
@given(
    window_type=st.sampled_from(["count", "time"]),
    size=st.integers(1, 8),
    calls=st.lists(
        st.tuples(st.floats(0.0, 4.0, allow_nan=False), st.booleans(), st.booleans()), max_size=150
    ),
)
def test_window_matches_a_naive_model(window_type, size, calls):
    """The window's counts equal a brute-force recount over the calls it should still hold."""
    clock = FakeClock()
    config = BreakerConfig(
        window_type=window_type,
        window_size=size,
        window_duration_s=size,
        minimum_calls=1000 if window_type == "time" else size,
        failure_rate_threshold=1.0,
        slow_call_rate_threshold=1.0,
        slow_call_duration_s=1.0,
    )
    breaker = CircuitBreaker(config, clock=clock)
    history: list[tuple[float, bool, bool]] = []
    for gap, failed, slow in calls:
        clock.now += gap
        if not breaker.try_acquire():
            return  # tripped (only possible at 100%): the window is frozen from here on
        (breaker.on_failure if failed else breaker.on_success)(2.0 if slow else 0.5)
        history.append((clock.now, failed, slow))
        if breaker.state is not BreakerState.CLOSED:
            return
        if window_type == "count":
            kept = history[-size:]
        else:
            newest = int(clock.now // 1)
            kept = [h for h in history if int(h[0] // 1) > newest - size]
        snap = breaker.snapshot()
        assert snap.calls == len(kept)
        assert snap.failed_calls == sum(1 for h in kept if h[1])
        assert snap.slow_calls == sum(1 for h in kept if h[2])

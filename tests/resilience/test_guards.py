"""Guards: admission, results, and the last-resort probe when every circuit is open."""

from orchestrator.resilience.breaker import BreakerConfig, BreakerState
from orchestrator.resilience.guards import FAULT, IGNORED, OK, Guards, ResiliencePolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tripped(clock: Clock):
    policy = ResiliencePolicy(breaker=BreakerConfig(window_size=4, minimum_calls=4, wait_in_open_s=30,
                                                    max_wait_in_open_s=60, wait_jitter=0.0))
    guard = Guards(policy, clock=clock).get("stripe", "EU")
    for _ in range(4):
        assert guard.admit() is None
        guard.record(FAULT, 0.01)
    assert guard.breaker.state is BreakerState.OPEN
    return guard


def test_declines_teach_the_breaker_nothing():
    clock = Clock()
    guard = Guards(ResiliencePolicy(breaker=BreakerConfig(window_size=4, minimum_calls=4)), clock=clock).get("a", "EU")
    for _ in range(10):
        assert guard.admit() is None
        guard.record(IGNORED, 0.01)
    assert guard.breaker.state is BreakerState.CLOSED and guard.breaker.snapshot().calls == 0


def test_an_open_circuit_allows_one_last_resort_probe_per_second():
    clock = Clock()
    guard = tripped(clock)
    assert guard.admit() == "breaker_open"
    assert guard.admit_last_resort() is True
    guard.record(FAULT, 0.01, last_resort=True)
    assert guard.admit_last_resort() is False  # within the interval
    clock.now += 1.0
    assert guard.admit_last_resort() is True
    guard.record(FAULT, 0.01, last_resort=True)
    assert guard.breaker.state is BreakerState.OPEN  # failed probes change nothing
    assert guard.limiter.in_flight == 0


def test_a_successful_last_resort_probe_closes_the_circuit():
    clock = Clock()
    guard = tripped(clock)
    assert guard.admit_last_resort() is True
    guard.record(OK, 0.01, last_resort=True)
    assert guard.breaker.state is BreakerState.CLOSED
    assert guard.admit() is None


def test_an_operators_forced_open_is_never_probed():
    clock = Clock()
    guard = Guards(clock=clock).get("stripe", "EU")
    guard.breaker.force_open()
    assert guard.admit() == "breaker_open"
    assert guard.admit_last_resort() is False

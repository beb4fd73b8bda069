"""Guards: admission, results, and the last-resort probe when every circuit is open."""

from orchestrator.resilience.breaker import BreakerConfig, BreakerState
from orchestrator.resilience.guards import FAULT, IGNORED, OK, SAFE_FAULT, Guards, ResiliencePolicy


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


def test_an_open_circuit_allows_one_last_resort_probe_per_interval():
    clock = Clock()
    guard = tripped(clock)
    assert guard.admit() == "breaker_open"
    assert guard.admit_last_resort() is True
    guard.record(FAULT, 0.01, last_resort=True)
    clock.now += 0.2
    assert guard.admit_last_resort() is False  # within the default 0.25 s interval
    clock.now += 0.05
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


def test_the_last_resort_interval_is_configurable():
    clock = Clock()
    policy = ResiliencePolicy(breaker=BreakerConfig(window_size=4, minimum_calls=4, wait_in_open_s=30,
                                                    max_wait_in_open_s=60, last_resort_probe_interval_s=2.0))
    guard = Guards(policy, clock=clock).get("stripe", "EU")
    for _ in range(4):
        guard.admit()
        guard.record(FAULT, 0.01)
    assert guard.admit_last_resort() is True
    guard.record(FAULT, 0.01, last_resort=True)
    clock.now += 1.9
    assert guard.admit_last_resort() is False
    clock.now += 0.1
    assert guard.admit_last_resort() is True


def test_safe_faults_trip_the_breaker_but_do_not_lengthen_its_wait():
    """A provider that refuses fast and certainly (503, nothing charged) is probed again after the base
    wait every time; one whose failures leave charges in doubt waits longer after each trip."""
    def waits(verdict: str) -> list[float]:
        clock = Clock()
        policy = ResiliencePolicy(breaker=BreakerConfig(window_size=4, minimum_calls=4, wait_in_open_s=5,
                                                        max_wait_in_open_s=60, wait_jitter=0.0))
        guard = Guards(policy, clock=clock).get("stripe", "EU")
        seen = []
        for _ in range(4):
            assert guard.admit() is None
            guard.record(verdict, 0.01)
        for _ in range(4):
            snapshot = guard.breaker.snapshot()
            assert snapshot.state is BreakerState.OPEN
            seen.append(snapshot.open_until - clock.now)
            clock.now = snapshot.open_until
            for _ in range(3):  # the half-open probes fail the same way
                assert guard.admit() is None
                guard.record(verdict, 0.01)
        return seen

    assert waits(SAFE_FAULT) == [5, 5, 5, 5]
    assert waits(FAULT) == [5, 10, 20, 40]


def open_on_safe_faults() -> tuple[Clock, Guards, object]:
    """Guards whose Stripe EU circuit just opened on fast, safe refusals (window 10, verdict from 4)."""
    clock = Clock()
    guards = Guards(ResiliencePolicy(breaker=BreakerConfig(window_size=10, minimum_calls=4, wait_in_open_s=5,
                                                           wait_jitter=0.0)), clock=clock)
    guard = guards.get("stripe", "EU")
    for _ in range(4):
        guard.admit()
        guard.record(SAFE_FAULT, 0.01)
    return clock, guards, guard


def test_a_breaker_that_closes_on_passed_probes_marks_a_fresh_recovery_proven_by_later_calls():
    clock, guards, guard = open_on_safe_faults()
    assert guards.recovered_within(60, 0.1) == {}
    clock.now += 5
    for _ in range(3):
        assert guard.admit() is None
        guard.record(OK, 0.01)
    assert guard.breaker.state is BreakerState.CLOSED
    assert guards.recovered_within(60, 0.1) == {("stripe", "EU"): False}  # three probes prove little
    for _ in range(4):  # the breaker's minimum number of calls since the close, all fine
        guard.admit()
        guard.record(OK, 0.01)
    assert guards.recovered_within(60, 0.1) == {("stripe", "EU"): True}
    clock.now += 59
    assert guards.recovered_within(60, 0.1) == {("stripe", "EU"): True}
    clock.now += 2
    assert guards.recovered_within(60, 0.1) == {}  # the table's window has moved past the outage


def test_a_relapse_ends_the_recovery_even_short_of_a_trip():
    _clock, guards, guard = open_on_safe_faults()
    assert guard.admit_last_resort() is True
    guard.record(OK, 0.01, last_resort=True)  # a successful last-resort probe is a recovery too
    assert guards.recovered_within(60, 0.1) == {("stripe", "EU"): False}
    for verdict in (OK, OK, OK, SAFE_FAULT):  # 25 % failures: under the breaker's 50 %, over 10 %
        guard.admit()
        guard.record(verdict, 0.01)
    assert guard.breaker.state is BreakerState.CLOSED
    assert guards.recovered_within(60, 0.1) == {}

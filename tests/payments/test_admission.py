"""Which candidate a payment's next call goes to when breakers and concurrency limits refuse some."""

from __future__ import annotations

from types import SimpleNamespace

from orchestrator.observability.telemetry import Telemetry
from orchestrator.payments.service import PaymentService
from orchestrator.resilience.breaker import BreakerConfig, BreakerState
from orchestrator.resilience.concurrency import AIMDConfig
from orchestrator.resilience.guards import OK, SAFE_FAULT, Guards, ResiliencePolicy


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def service_with(guards: Guards) -> PaymentService:
    service = PaymentService.__new__(PaymentService)
    service.guards = guards
    service.telemetry = Telemetry()
    return service


def payment() -> SimpleNamespace:
    return SimpleNamespace(id="pay_test", region="APAC", route={})


def open_circuit(guards: Guards, provider: str) -> None:
    guard = guards.get(provider, "APAC")
    for _ in range(guard.breaker.config.effective_minimum_calls):
        assert guard.admit() is None
        guard.record(SAFE_FAULT, 0.01)
    assert guard.breaker.state is BreakerState.OPEN


def stripe_open_adyen_busy() -> tuple[Clock, Guards]:
    """APAC guards with one permit each: Stripe's circuit open, Adyen's one permit in use."""
    clock = Clock()
    guards = Guards(ResiliencePolicy(breaker=BreakerConfig(window_size=4, minimum_calls=4, wait_in_open_s=30),
                                     concurrency=AIMDConfig(initial_limit=1, min_limit=1, max_limit=10)),
                    clock=clock)
    open_circuit(guards, "stripe")
    assert guards.get("adyen", "APAC").admit() is None  # its one permit is in use
    return clock, guards


def test_a_provider_at_its_concurrency_limit_beside_open_circuits_does_not_cost_the_payment():
    _clock, guards = stripe_open_adyen_busy()
    service = service_with(guards)
    first = payment()
    provider, guard = service._admit_next(first, iter(["adyen", "stripe"]))
    assert provider == "stripe" and first.route["last_resort_probe"] == "stripe"
    assert first.route["skipped"] == [{"provider": "adyen", "reason": "concurrency_limit"},
                                      {"provider": "stripe", "reason": "breaker_open"}]
    guard.record(OK, 0.01, last_resort=True)  # Stripe is back: its circuit closes at once
    assert guards.get("stripe", "APAC").breaker.state is BreakerState.CLOSED


def test_probes_of_open_circuits_stay_rate_limited_and_nothing_else_is_forced():
    clock, guards = stripe_open_adyen_busy()
    service = service_with(guards)
    provider, probe = service._admit_next(payment(), iter(["adyen", "stripe"]))
    assert provider == "stripe"
    probe.record(SAFE_FAULT, 0.01, last_resort=True)  # still down: the circuit stays open
    assert service._admit_next(payment(), iter(["adyen", "stripe"])) is None  # within 0.25 s of the last probe
    clock.now += 0.25
    assert service._admit_next(payment(), iter(["adyen", "stripe"]))[0] == "stripe"
    # Only a concurrency limit in the way, no open circuit: the payment is refused, nothing is probed.
    assert service._admit_next(payment(), iter(["adyen"])) is None

"""Retry budget: retries stay a bounded share of calls when a provider is down, and come back after."""

from __future__ import annotations

import random

import pytest

from orchestrator.resilience.budget import RetryBudget, RetryBudgetConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_defaults():
    c = RetryBudgetConfig()
    assert (c.budget_percent, c.capacity, c.retry_cost, c.timeout_cost) == (0.2, 10.0, 1.0, 2.0)
    assert (c.min_retries, c.min_retry_period_s) == (3, 10.0)


def test_total_outage_grants_only_the_bank_and_the_minimum():
    clock = FakeClock()
    budget = RetryBudget(clock=clock)
    granted = 0
    calls = 1000
    for i in range(calls):
        budget.record_call()
        if budget.try_spend_retry():
            granted += 1
        clock.now += 0.01  # 100 calls a second, 10 s in all
    # nothing earned: the full bank (10) plus the minimum (3 at once, then 3 per 10 s)
    assert granted <= 10 + 3 + 3
    assert granted <= 0.2 * calls + 10 + 3 + 3
    assert granted >= 10
    snap = budget.snapshot()
    assert snap.retries_granted == granted and snap.retries_denied == calls - granted
    assert snap.calls == calls and snap.successes == 0


def test_retries_stay_within_budget_share_plus_minimum_over_a_long_outage():
    clock = FakeClock()
    config = RetryBudgetConfig()
    budget = RetryBudget(config, clock=clock)
    rng = random.Random(3)
    calls = granted = 0
    duration_s = 600.0
    while clock.now < 50.0 + duration_s:
        calls += 1
        budget.record_call()
        if budget.try_spend_retry("timeout" if rng.random() < 0.3 else "transient"):
            granted += 1
        clock.now += 0.05
    minimum = config.min_retries * (1 + duration_s / config.min_retry_period_s)
    assert granted <= config.capacity + minimum
    assert granted <= 0.2 * calls + config.min_retries


@pytest.mark.parametrize("failure_rate", [0.3, 0.5, 0.9])
def test_brownout_retries_bounded_by_share_of_successes(failure_rate):
    clock = FakeClock()
    config = RetryBudgetConfig(min_retries=0)
    budget = RetryBudget(config, clock=clock)
    rng = random.Random(11)
    calls = granted = 0
    for _ in range(5000):
        calls += 1
        budget.record_call()
        if rng.random() < failure_rate:
            if budget.try_spend_retry():
                granted += 1
                if rng.random() >= failure_rate:
                    budget.record_success()
        else:
            budget.record_success()
    assert granted <= 0.2 * budget.snapshot().successes + config.capacity + 1e-9
    assert granted <= 0.2 * calls + config.capacity


def test_recovers_after_successes():
    budget = RetryBudget(RetryBudgetConfig(min_retries=0), clock=FakeClock())
    while budget.try_spend_retry():
        pass
    assert budget.try_spend_retry() is False
    for _ in range(4):
        budget.record_success()
    assert budget.try_spend_retry() is False  # 0.8 of a retry earned
    budget.record_success()
    assert budget.try_spend_retry() is True  # five successes pay for one retry
    assert budget.try_spend_retry() is False
    for _ in range(1000):
        budget.record_success()
    assert budget.tokens == pytest.approx(10.0)  # capped at capacity
    assert sum(budget.try_spend_retry() for _ in range(20)) == 10


def test_timeout_costs_more():
    budget = RetryBudget(RetryBudgetConfig(capacity=4.0, min_retries=0), clock=FakeClock())
    assert budget.try_spend_retry("timeout")
    assert budget.try_spend_retry("timeout")
    assert budget.try_spend_retry("timeout") is False
    budget2 = RetryBudget(RetryBudgetConfig(capacity=4.0, min_retries=0), clock=FakeClock())
    assert sum(budget2.try_spend_retry("transient") for _ in range(10)) == 4


def test_minimum_refills_with_time_for_a_quiet_provider():
    clock = FakeClock()
    budget = RetryBudget(RetryBudgetConfig(capacity=0.0, min_retries=3, min_retry_period_s=10.0), clock=clock)
    assert [budget.try_spend_retry() for _ in range(4)] == [True, True, True, False]
    clock.now += 3.0  # 0.9 of a retry back
    assert budget.try_spend_retry() is False
    clock.now += 0.4
    assert budget.try_spend_retry() is True
    clock.now += 1000.0  # the minimum does not bank beyond min_retries
    assert sum(budget.try_spend_retry() for _ in range(10)) == 3


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        RetryBudget(clock=FakeClock()).try_spend_retry("declined")  # type: ignore[arg-type]

"""Retry budget per provider and region: a token bucket, so that an outage does not multiply the load.

Design (docs/resilience.md has the comparison):

* The bucket holds retry tokens, at most `capacity`, and starts full: a healthy provider can absorb a
  short burst of retries.
* Each success at the provider earns `budget_percent` of a retry (0.2 by default: five successes pay
  for one retry). This is the AWS SDK retry quota's refill on success (1 token against a retry cost of
  5), and it gives Envoy's budget_percent ratio: over any stretch, retries <= 20% of successful calls
  (so of calls) + what the bucket held. A sick provider earns nothing, so its retries dry up.
* A retry costs 1 token; a retry after a timeout costs `timeout_cost` (2 by default, as the AWS SDK
  charges 10 against 5): a timeout held a connection for the whole attempt and hints at overload.
* A minimum, in the spirit of Envoy's min_retry_concurrency (3): `min_retries` retries per
  `min_retry_period_s` are always allowed, whatever the bucket holds, so a provider with little traffic
  still gets a retry for its rare transient errors. Envoy counts retries in flight; we count them per
  period, because the budget never sees a retry finish.

Report every first attempt with `record_call()`, every success with `record_success()`, and ask
`try_spend_retry(kind)` before retrying the same provider. A failover to another provider is a first
attempt there, not a retry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Literal

Clock = Callable[[], float]
RetryKind = Literal["transient", "timeout"]


@dataclass(frozen=True, slots=True)
class RetryBudgetConfig:
    budget_percent: float = 0.2
    """Retry tokens earned per success: retries stay within this share of calls."""
    capacity: float = 10.0
    """Most tokens the bucket holds (and starts with)."""
    retry_cost: float = 1.0
    timeout_cost: float = 2.0
    min_retries: int = 3
    """Retries always allowed per `min_retry_period_s`, whatever the bucket holds."""
    min_retry_period_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.budget_percent <= 1.0:
            raise ValueError("budget_percent must be in [0, 1]")
        if self.capacity < 0 or self.retry_cost <= 0 or self.timeout_cost <= 0:
            raise ValueError("need capacity >= 0 and positive costs")
        if self.min_retries < 0 or self.min_retry_period_s <= 0:
            raise ValueError("need min_retries >= 0 and min_retry_period_s > 0")


@dataclass(frozen=True, slots=True)
class RetryBudgetSnapshot:
    tokens: float
    capacity: float
    calls: int
    successes: int
    retries_granted: int
    retries_denied: int


class RetryBudget:
    __slots__ = (
        "config", "_clock", "_tokens", "_capacity", "_earn", "_retry_cost", "_timeout_cost",
        "_min_tokens", "_min_rate", "_min_at", "calls", "successes", "retries_granted", "retries_denied",
    )

    def __init__(self, config: RetryBudgetConfig | None = None, *, clock: Clock = time.monotonic) -> None:
        self.config = config = config if config is not None else RetryBudgetConfig()
        self._clock = clock
        self._capacity = config.capacity
        self._tokens = config.capacity
        self._earn = config.budget_percent * config.retry_cost
        self._retry_cost = config.retry_cost
        self._timeout_cost = config.timeout_cost
        # the minimum: a second small bucket of whole retries, refilled with time
        self._min_tokens = float(config.min_retries)
        self._min_rate = config.min_retries / config.min_retry_period_s
        self._min_at = clock()
        self.calls = self.successes = self.retries_granted = self.retries_denied = 0

    def record_call(self) -> None:
        """A first attempt at this provider (not a retry)."""
        self.calls += 1

    def record_success(self) -> None:
        """An attempt at this provider succeeded (first attempt or retry)."""
        self.successes += 1
        tokens = self._tokens + self._earn
        self._tokens = tokens if tokens < self._capacity else self._capacity

    def try_spend_retry(self, kind: RetryKind = "transient") -> bool:
        """True, and the cost is spent, if the same provider may be retried now."""
        if kind == "transient":
            cost = self._retry_cost
        elif kind == "timeout":
            cost = self._timeout_cost
        else:
            raise ValueError(f"unknown retry kind {kind!r}")
        if self._tokens >= cost:
            self._tokens -= cost
            self.retries_granted += 1
            return True
        if self._min_rate:
            now = self._clock()
            cap = self.config.min_retries
            self._min_tokens = min(cap, self._min_tokens + max(0.0, now - self._min_at) * self._min_rate)
            self._min_at = now
            if self._min_tokens >= 1.0:
                self._min_tokens -= 1.0
                self.retries_granted += 1
                return True
        self.retries_denied += 1
        return False

    @property
    def tokens(self) -> float:
        return self._tokens

    def snapshot(self) -> RetryBudgetSnapshot:
        return RetryBudgetSnapshot(
            tokens=self._tokens,
            capacity=self._capacity,
            calls=self.calls,
            successes=self.successes,
            retries_granted=self.retries_granted,
            retries_denied=self.retries_denied,
        )

"""One breaker, retry budget and concurrency limit per provider and region, made on first use.

Pure: plain values in and out, an injectable clock and random source, no I/O. The attempt loop asks
`admit` before a call and reports the call's result with `record`; replays that resolve an ambiguous
charge bypass both (resolving a possible charge is never refused) and count for nothing.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

from orchestrator.resilience.backoff import Backoff, BackoffConfig
from orchestrator.resilience.breaker import (
    REASON_PROBES_PASSED,
    REASON_RESET,
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
)
from orchestrator.resilience.budget import RetryBudget, RetryBudgetConfig
from orchestrator.resilience.concurrency import AIMDConfig, AIMDLimiter

TransitionListener = Callable[[str, str, BreakerState, BreakerState, str], None]


@dataclass(frozen=True, slots=True)
class ResiliencePolicy:
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    budget: RetryBudgetConfig = field(default_factory=RetryBudgetConfig)
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    concurrency: AIMDConfig = field(default_factory=AIMDConfig)


# What a call's outcome means to the breaker: provider faults fail, declines and our own
# configuration errors are ignored (the provider did its job), successes succeed. A safe fault is a
# provider fault known to have done nothing (a transient refusal): probing again soon costs little.
FAULT = "fault"
SAFE_FAULT = "safe_fault"

_RECOVERY_REASONS = frozenset({REASON_PROBES_PASSED, REASON_RESET})
OK = "ok"
IGNORED = "ignored"


class ProviderGuard:
    __slots__ = ("provider", "region", "breaker", "budget", "limiter", "_clock", "_probe_interval_s",
                 "_last_probe_at")

    def __init__(self, provider: str, region: str, breaker: CircuitBreaker, budget: RetryBudget,
                 limiter: AIMDLimiter, *, clock: Callable[[], float] = time.monotonic,
                 last_resort_probe_interval_s: float = 0.25) -> None:
        self.provider = provider
        self.region = region
        self.breaker = breaker
        self.budget = budget
        self.limiter = limiter
        self._clock = clock
        self._probe_interval_s = last_resort_probe_interval_s
        self._last_probe_at = float("-inf")

    def admit(self) -> str | None:
        """Take a permit for one call; None when admitted, else why not ("breaker_open", "concurrency_limit")."""
        if not self.breaker.try_acquire():
            return "breaker_open"
        if not self.limiter.try_acquire():
            self.breaker.on_ignored()  # give a half-open probe permit back
            return "concurrency_limit"
        self.budget.record_call()
        return None

    def admit_last_resort(self) -> bool:
        """When no candidate at all admits a call, an open breaker still lets one probe through per
        interval: the payment would fail anyway, and a success shows at once that the provider is back
        (instead of failing payments fast until a lengthening open wait runs out). Operators' forced_open
        is never probed."""
        if self.breaker.state is not BreakerState.OPEN:
            return False
        now = self._clock()
        if now - self._last_probe_at < self._probe_interval_s or not self.limiter.try_acquire():
            return False
        self._last_probe_at = now
        self.budget.record_call()
        return True

    def record(self, verdict: str, duration_s: float, *, last_resort: bool = False) -> None:
        """Report the result of an admitted call, releasing its permits. A last-resort probe that
        succeeds closes the breaker."""
        fault = verdict == FAULT or verdict == SAFE_FAULT
        self.limiter.release(duration_s, dropped=fault)
        if last_resort:
            if verdict == OK and self.breaker.state is BreakerState.OPEN:
                self.breaker.reset()
                self.budget.record_success()
            return
        if fault:
            self.breaker.on_failure(duration_s, safe=verdict == SAFE_FAULT)
        elif verdict == OK:
            self.breaker.on_success(duration_s)
            self.budget.record_success()
        else:
            self.breaker.on_ignored()

    def cancel(self) -> None:
        """Release an admitted call's permits without a result (it was never made)."""
        self.limiter.release(None)
        self.breaker.on_ignored()


class Guards:
    def __init__(self, policy: ResiliencePolicy | None = None, *, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, on_transition: TransitionListener | None = None) -> None:
        self.policy = policy or ResiliencePolicy()
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_transition = on_transition
        self._guards: dict[tuple[str, str], ProviderGuard] = {}
        self.backoff = Backoff(self.policy.backoff, rng=self._rng)
        # (provider, region) -> when its breaker closed again on passed probes: fresh evidence that
        # the provider works, newer than the failures still in the routing table's window.
        self._recovered: dict[tuple[str, str], float] = {}

    def get(self, provider: str, region: str) -> ProviderGuard:
        guard = self._guards.get((provider, region))
        if guard is None:
            notify = self._on_transition
            recovered = self._recovered
            clock = self._clock

            def listener(old: BreakerState, new: BreakerState, reason: str) -> None:
                if new is BreakerState.CLOSED and reason in _RECOVERY_REASONS:
                    recovered[(provider, region)] = clock()
                else:
                    recovered.pop((provider, region), None)
                if notify is not None:
                    notify(provider, region, old, new, reason)

            breaker = CircuitBreaker(self.policy.breaker, clock=self._clock, rng=self._rng, on_transition=listener)
            guard = ProviderGuard(provider, region, breaker, RetryBudget(self.policy.budget, clock=self._clock),
                                  AIMDLimiter(self.policy.concurrency), clock=self._clock,
                                  last_resort_probe_interval_s=self.policy.breaker.last_resort_probe_interval_s)
            self._guards[(provider, region)] = guard
        return guard

    def all(self) -> list[ProviderGuard]:
        return list(self._guards.values())

    def breaker_states(self) -> dict[tuple[str, str], str]:
        return {key: guard.breaker.state.value for key, guard in self._guards.items()}

    def recovered_within(self, seconds: float, max_failure_rate: float) -> dict[tuple[str, str], bool]:
        """Providers whose breaker closed on passed probes (or a successful last-resort probe) less than
        `seconds` ago and has not tripped since, each with whether the calls since then prove it: at
        least the breaker's minimum number of calls, failing at most at `max_failure_rate`. More
        failures than that end the recovery (a relapse short of a trip)."""
        recovered = self._recovered
        if not recovered:
            return {}
        since = self._clock() - seconds
        verdicts: dict[tuple[str, str], bool] = {}
        for key, at in list(recovered.items()):
            failure_rate = self._guards[key].breaker.snapshot().failure_rate
            if at < since or (failure_rate is not None and failure_rate > max_failure_rate):
                del recovered[key]
            else:
                verdicts[key] = failure_rate is not None
        return verdicts

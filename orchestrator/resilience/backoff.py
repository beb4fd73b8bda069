"""Deadlines and retry waits: exponential backoff with full jitter, bounded by the payment's deadline.

The ceiling of the wait after attempt n (1-based) is tenacity's `wait_exponential`:
min(cap, base * 2 ** (n - 1)). The wait itself is full jitter, U(0, ceiling), which is what tenacity's
`wait_random_exponential` draws; we draw it from an injected `random.Random` (tenacity draws from the
global one) so that a seeded run is repeatable.

A retry is only worth it if, after the wait, an attempt still has `min_attempt_s` before the deadline:
an attempt cut shorter than that would likely time out, and a timeout after the request was sent is an
ambiguous payment, the costliest outcome we have.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

from tenacity import wait_exponential

Clock = Callable[[], float]

DEFAULT_PAYMENT_DEADLINE_S = 10.0


@dataclass(frozen=True, slots=True)
class Deadline:
    """An absolute expiry on the monotonic clock, shared by every attempt of one payment."""

    expires_at: float
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, timeout_s: float = DEFAULT_PAYMENT_DEADLINE_S, *, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + timeout_s, clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.expires_at

    def cap(self, timeout_s: float) -> float:
        """A per-attempt timeout (connect, read) that does not outlive the deadline."""
        return min(timeout_s, self.remaining())


@dataclass(frozen=True, slots=True)
class BackoffConfig:
    base_s: float = 0.1
    """Ceiling of the first wait. A provider's transient 5xx is often gone 100 ms later."""
    cap_s: float = 1.0
    """No wait's ceiling goes above this: past a second, another provider is the better bet."""
    max_attempts: int = 3
    """Attempts at one provider for one payment, the first included (the AWS SDK's standard mode)."""
    min_attempt_s: float = 1.0
    """Time an attempt needs after the wait to be worth starting (a healthy authorisation's p99)."""

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError("need 0 <= base_s <= cap_s")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.min_attempt_s < 0:
            raise ValueError("min_attempt_s must be >= 0")


class _Attempt:
    """The one field of tenacity's RetryCallState that its wait strategies read."""

    __slots__ = ("attempt_number",)

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number


class Backoff:
    """Decides whether to retry a provider after a failed attempt, and how long to wait first."""

    __slots__ = ("config", "_rng", "_ceiling")

    def __init__(self, config: BackoffConfig | None = None, *, rng: random.Random | None = None) -> None:
        self.config = config if config is not None else BackoffConfig()
        self._rng = rng if rng is not None else random.Random()
        self._ceiling = wait_exponential(multiplier=self.config.base_s, max=self.config.cap_s, exp_base=2)

    def ceiling(self, attempt: int) -> float:
        """min(cap, base * 2 ** (attempt - 1)): the upper bound of the wait after `attempt`."""
        return self._ceiling(_Attempt(attempt))  # type: ignore[arg-type]

    def next_wait(
        self, attempt: int, *, remaining_deadline_s: float, retry_after_s: float | None = None
    ) -> float | None:
        """The wait before the next attempt, or None when there should be no next attempt.

        `attempt` is the number of attempts made so far (1 after the first failure). None when the
        attempts are used up, or when the wait plus `min_attempt_s` does not fit in the time left. A
        `Retry-After` (seconds) from a 429 or 503 is used as the wait if it fits, and refused (None) if
        not; a negative or NaN value is treated as absent.
        """
        config = self.config
        if attempt >= config.max_attempts:
            return None
        room = remaining_deadline_s - config.min_attempt_s  # the longest wait that still leaves an attempt
        if room < 0:
            return None
        if retry_after_s is not None and retry_after_s >= 0:  # NaN fails the comparison
            return retry_after_s if retry_after_s <= room else None
        wait = self._rng.uniform(0.0, self._ceiling(_Attempt(attempt)))
        return wait if wait <= room else room


"""Adaptive concurrency limit per provider and region: AIMD, as in Netflix's concurrency-limits.

The limit is how many calls may wait on one provider endpoint at once. When the provider slows down
the limit shrinks, `try_acquire()` starts saying no, and the attempt loop moves on to the next
candidate instead of piling more payments onto a sick endpoint.

* A call that was dropped (timed out, reset, refused) or slower than `slow_latency_s`: limit x 0.9.
* A good call while the limit is in use (in flight >= half the limit): limit + 1. A limit that is far
  from used does not grow, so a quiet night cannot build a limit that a morning spike would then fill.
* Bounds `min_limit`..`max_limit`.

AIMD rather than a gradient (Gradient2, Envoy's adaptive concurrency): a gradient compares the recent
latency with a long-term baseline, and a payment provider's latency moves with card mix and 3-D Secure
for reasons that are not overload; an explicit latency threshold, the same one the breaker uses for
slow calls, is predictable and easy to explain to an operator. docs/resilience.md has the details.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AIMDConfig:
    initial_limit: int = 50
    min_limit: int = 5
    """Never below this: a few calls must still reach a slow provider to see it recover."""
    max_limit: int = 200
    backoff_ratio: float = 0.9
    slow_latency_s: float = 2.5
    """A call slower than this counts like a drop (the breaker's slow-call duration)."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("need 1 <= min_limit <= initial_limit <= max_limit")
        if not 0.0 < self.backoff_ratio < 1.0:
            raise ValueError("backoff_ratio must be in (0, 1)")
        if self.slow_latency_s <= 0:
            raise ValueError("slow_latency_s must be > 0")


class AIMDLimiter:
    """`try_acquire()` before a call; `release(latency_s, dropped=...)` exactly once after it."""

    __slots__ = ("config", "_limit", "_in_flight", "_min", "_max", "_ratio", "_slow_s", "rejected")

    def __init__(self, config: AIMDConfig | None = None) -> None:
        self.config = config = config if config is not None else AIMDConfig()
        self._limit = float(config.initial_limit)
        self._min = float(config.min_limit)
        self._max = float(config.max_limit)
        self._ratio = config.backoff_ratio
        self._slow_s = config.slow_latency_s
        self._in_flight = 0
        self.rejected = 0

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def try_acquire(self) -> bool:
        if self._in_flight < int(self._limit):
            self._in_flight += 1
            return True
        self.rejected += 1
        return False

    def release(self, latency_s: float | None, *, dropped: bool = False) -> None:
        """End a call. `latency_s=None` (e.g. a cancelled call) frees the slot without a sample."""
        in_flight = self._in_flight
        self._in_flight = in_flight - 1 if in_flight > 0 else 0
        if latency_s is None:
            return
        limit = self._limit
        if dropped or latency_s > self._slow_s:
            limit *= self._ratio
            self._limit = limit if limit > self._min else self._min
        elif in_flight * 2 >= limit:
            limit += 1.0
            self._limit = limit if limit < self._max else self._max

"""Sliding-window circuit breaker, one per provider and region.

A small pure state machine: plain values in, plain values out, an injectable monotonic clock and an
injectable `random.Random` for the jitter of the open wait. It follows Resilience4j's
CircuitBreakerStateMachine in behaviour:

* closed: every call goes through and its result lands in a sliding window (the last N calls, or the
  calls of the last N seconds in one-second buckets). Once the window holds at least `minimum_calls`
  results, the breaker opens when the failure rate or the slow-call rate reaches its threshold
  (inclusive). A call strictly longer than `slow_call_duration_s` is slow, whether it succeeded or not.
* open: calls are refused without being made. Once the open wait has elapsed, the next permission
  request (or a read of `state`) moves the breaker to half_open. The wait grows on consecutive trips.
* half_open: exactly `permitted_calls_in_half_open` probe calls are let through; when all their results
  are in, their failure and slow-call rates decide: open again (with a longer wait) or closed (a fresh
  window, the trip count reset).
* forced_open and disabled: operator states that only `reset()` (or another operator call) leaves.

What counts as a failure is the caller's business: only provider faults (transient, ambiguous, slow)
should be reported with `on_failure`; declines and our own validation errors go to `on_ignored` (they
release a half-open permit and count for nothing).

No locks: the service runs on one asyncio loop, and no method awaits.
"""

from __future__ import annotations

import enum
import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Literal

Clock = Callable[[], float]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


TransitionListener = Callable[[BreakerState, BreakerState, str], None]
"""Called as `listener(old, new, reason)` on every change of state, never for a same-state change."""

# Reasons passed to the transition listener.
REASON_FAILURE_RATE = "failure_rate"
REASON_SLOW_CALL_RATE = "slow_call_rate"
REASON_WAIT_ELAPSED = "wait_elapsed"
REASON_PROBES_PASSED = "probes_passed"
REASON_PROBE_FAILURE_RATE = "probe_failure_rate"
REASON_PROBE_SLOW_CALL_RATE = "probe_slow_call_rate"
REASON_HALF_OPEN_TIMEOUT = "half_open_timeout"
REASON_FORCED_OPEN = "forced_open"
REASON_DISABLED = "disabled"
REASON_RESET = "reset"

_FAILED = 1  # result code bits, one small int per recorded call
_SLOW = 2


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Breaker settings. The defaults are sized for card payments; docs/resilience.md gives the reasons."""

    window_type: Literal["count", "time"] = "count"
    window_size: int = 20
    """Calls kept by a count window: small enough to react within seconds at a few payments per second."""
    window_duration_s: int = 30
    """Seconds kept by a time window (one bucket per second)."""
    minimum_calls: int = 10
    """Results needed before any verdict; clamped to `window_size` for a count window."""
    failure_rate_threshold: float = 0.5
    """Open when failed / calls >= this (inclusive)."""
    slow_call_rate_threshold: float = 0.8
    """Open when slow / calls >= this (inclusive)."""
    slow_call_duration_s: float = 2.5
    """A call strictly longer than this is slow: well above a healthy authorisation's p99 (about 1-1.5 s),
    and four such calls still fit in the 10 s payment deadline."""
    wait_in_open_s: float = 5.0
    """Open wait after the first trip."""
    wait_multiplier: float = 2.0
    """The open wait is wait_in_open_s * wait_multiplier ** (costly_trips - 1): it grows only over
    consecutive trips whose failures included a costly one (slow, or not known to be safe), because a
    probe of a provider that fails fast and safely costs a payment only a failover of milliseconds,
    while a probe that hangs or leaves a charge in doubt costs it much more."""
    wait_jitter: float = 0.2
    """The open wait is multiplied by a uniform factor in [1 - jitter, 1 + jitter], so that the breakers of
    several replicas do not probe a recovering provider in lockstep."""
    max_wait_in_open_s: float = 60.0
    """Cap on the open wait, jitter included."""
    permitted_calls_in_half_open: int = 3
    """Probe calls let through in half_open; their results decide open or closed."""
    max_wait_in_half_open_s: float | None = None
    """If set, a half_open breaker whose probes have not all come back by then opens again."""
    last_resort_probe_interval_s: float = 0.25
    """When every candidate of a payment has an open breaker, one call per this interval is still let
    through to each (the payment would fail anyway): recovery is seen within a fraction of a second."""

    def __post_init__(self) -> None:
        if self.window_type not in ("count", "time"):
            raise ValueError(f"window_type must be 'count' or 'time', not {self.window_type!r}")
        if self.window_size < 1 or self.window_duration_s < 1 or self.minimum_calls < 1:
            raise ValueError("window_size, window_duration_s and minimum_calls must be >= 1")
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], not {value}")
        if self.slow_call_duration_s <= 0:
            raise ValueError("slow_call_duration_s must be > 0")
        if self.wait_in_open_s < 0 or self.max_wait_in_open_s < self.wait_in_open_s:
            raise ValueError("need 0 <= wait_in_open_s <= max_wait_in_open_s")
        if self.wait_multiplier < 1.0:
            raise ValueError("wait_multiplier must be >= 1")
        if not 0.0 <= self.wait_jitter < 1.0:
            raise ValueError("wait_jitter must be in [0, 1)")
        if self.permitted_calls_in_half_open < 1:
            raise ValueError("permitted_calls_in_half_open must be >= 1")
        if self.max_wait_in_half_open_s is not None and self.max_wait_in_half_open_s <= 0:
            raise ValueError("max_wait_in_half_open_s must be > 0 or None")
        if self.last_resort_probe_interval_s < 0:
            raise ValueError("last_resort_probe_interval_s must be >= 0")

    @property
    def effective_minimum_calls(self) -> int:
        if self.window_type == "count":
            return min(self.minimum_calls, self.window_size)
        return self.minimum_calls

    def open_wait_ceiling(self, costly_trips: int) -> float:
        """The open wait before jitter after the given number of costly trips (>= 1), capped."""
        try:
            wait = self.wait_in_open_s * self.wait_multiplier ** (costly_trips - 1)
        except OverflowError:
            return self.max_wait_in_open_s
        return min(wait, self.max_wait_in_open_s)


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """What the breaker looks like now. Rates are None below the minimum number of calls.

    In closed (and forced_open, disabled) the figures are the sliding window's; in half_open they are the
    probes'; in open they are the ones that caused the trip.
    """

    state: BreakerState
    failure_rate: float | None
    slow_call_rate: float | None
    calls: int
    failed_calls: int
    slow_calls: int
    open_until: float | None
    """Monotonic time at which an open breaker will let probes through; None when not open."""
    consecutive_trips: int


class _CountWindow:
    """The last `size` results, in a ring of result codes; O(1) record."""

    __slots__ = ("_codes", "_size", "_pos", "calls", "failed", "slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._codes = bytearray(size)
        self._pos = 0
        self.calls = self.failed = self.slow = 0

    def record(self, code: int, now: float) -> None:
        pos = self._pos
        if self.calls == self._size:
            old = self._codes[pos]
            self.failed -= old & _FAILED
            self.slow -= old >> 1
        else:
            self.calls += 1
        self._codes[pos] = code
        self.failed += code & _FAILED
        self.slow += code >> 1
        pos += 1
        self._pos = 0 if pos == self._size else pos

    def refresh(self, now: float) -> None:
        pass

    def clear(self) -> None:
        self._codes = bytearray(self._size)
        self._pos = 0
        self.calls = self.failed = self.slow = 0


class _TimeWindow:
    """The results of the last `seconds` seconds, in one bucket per second; O(1) amortised record."""

    __slots__ = ("_n", "_calls", "_failed", "_slow", "_head", "calls", "failed", "slow")

    def __init__(self, seconds: int) -> None:
        self._n = seconds
        self._calls = [0] * seconds
        self._failed = [0] * seconds
        self._slow = [0] * seconds
        self._head: int | None = None  # the second the newest bucket stands for
        self.calls = self.failed = self.slow = 0

    def refresh(self, now: float) -> None:
        """Drop the buckets that have slid out of the window by `now`."""
        sec = math.floor(now)
        head = self._head
        if head is None:
            self._head = sec
            return
        if sec <= head:  # same second (or a clock that stepped back: keep using the newest bucket)
            return
        if sec - head >= self._n:
            self._zero()
        else:
            n = self._n
            for s in range(head + 1, sec + 1):
                i = s % n
                if self._calls[i]:
                    self.calls -= self._calls[i]
                    self.failed -= self._failed[i]
                    self.slow -= self._slow[i]
                    self._calls[i] = self._failed[i] = self._slow[i] = 0
        self._head = sec

    def record(self, code: int, now: float) -> None:
        self.refresh(now)
        i = self._head % self._n  # type: ignore[operator]  # refresh() set it
        self._calls[i] += 1
        self.calls += 1
        if code & _FAILED:
            self._failed[i] += 1
            self.failed += 1
        if code & _SLOW:
            self._slow[i] += 1
            self.slow += 1

    def _zero(self) -> None:
        n = self._n
        self._calls = [0] * n
        self._failed = [0] * n
        self._slow = [0] * n
        self.calls = self.failed = self.slow = 0

    def clear(self) -> None:
        self._zero()
        self._head = None


def _rates(calls: int, failed: int, slow: int, minimum: int) -> tuple[float | None, float | None]:
    if calls < minimum or calls == 0:
        return None, None
    return failed / calls, slow / calls


class CircuitBreaker:
    """One breaker. Ask `try_acquire()` before a call; report its end with exactly one of
    `on_success(duration_s)`, `on_failure(duration_s)` or `on_ignored()`.

    Reading `state` (or `snapshot()`) applies the transitions that are due by time (open to half_open
    once the wait is over, half_open to open after `max_wait_in_half_open_s`), so a router that only
    reads the state still sees a breaker become half_open.

    Results that arrive in open, forced_open or disabled (calls let through before the change) count for
    nothing. In half_open a result counts as a probe result only while a probe is outstanding.
    """

    __slots__ = (
        "config", "_clock", "_rng", "_listener", "_state", "_window", "_timed", "_min_calls",
        "_slow_s", "_fail_thr", "_slow_thr", "_permitted", "_open_until", "_trips",
        "_half_open_since", "_probes_granted", "_probe_calls", "_probe_failed", "_probe_slow",
        "_trip_figures", "_costly_trips", "_costly_failure",
    )

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self.config = config = config if config is not None else BreakerConfig()
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._listener = on_transition
        self._state = BreakerState.CLOSED
        self._timed = config.window_type == "time"
        self._window: _CountWindow | _TimeWindow = (
            _TimeWindow(config.window_duration_s) if self._timed else _CountWindow(config.window_size)
        )
        self._min_calls = config.effective_minimum_calls
        self._slow_s = config.slow_call_duration_s
        self._fail_thr = config.failure_rate_threshold
        self._slow_thr = config.slow_call_rate_threshold
        self._permitted = config.permitted_calls_in_half_open
        self._open_until = 0.0
        self._trips = 0
        self._half_open_since = 0.0
        self._probes_granted = 0
        self._probe_calls = self._probe_failed = self._probe_slow = 0
        self._trip_figures = (0, 0, 0)
        self._costly_trips = 0  # consecutive trips after a costly failure: the open wait's exponent
        self._costly_failure = False  # a costly failure since the last trip or close

    # --- permission -------------------------------------------------------------------------------

    def try_acquire(self) -> bool:
        """True if a call may be made now. In half_open this consumes one of the probe permits."""
        state = self._state
        if state is BreakerState.CLOSED or state is BreakerState.DISABLED:
            return True
        if state is BreakerState.FORCED_OPEN:
            return False
        self._apply_due()
        if self._state is BreakerState.HALF_OPEN and self._probes_granted < self._permitted:
            self._probes_granted += 1
            return True
        return False

    # --- results ----------------------------------------------------------------------------------

    def on_success(self, duration_s: float) -> None:
        self._record(_SLOW if duration_s > self._slow_s else 0)

    def on_failure(self, duration_s: float, *, safe: bool = False) -> None:
        """`safe`: the provider answered that nothing was done (a fast, certain refusal), so probing it
        again soon costs little. A failure that is slow, or not known to be safe, lengthens the next open
        wait."""
        slow = duration_s > self._slow_s
        if not safe or slow:
            self._costly_failure = True
        self._record((_FAILED | _SLOW) if slow else _FAILED)

    def on_ignored(self) -> None:
        """A call that counts for nothing (a decline, our own error); frees its half-open permit."""
        if self._state is BreakerState.HALF_OPEN and self._probes_granted > self._probe_calls:
            self._probes_granted -= 1

    def _record(self, code: int) -> None:
        state = self._state
        if state is BreakerState.CLOSED:
            window = self._window
            now = self._clock() if self._timed else 0.0
            window.record(code, now)
            calls = window.calls
            if calls >= self._min_calls:
                if window.failed / calls >= self._fail_thr:
                    self._trip(REASON_FAILURE_RATE, calls, window.failed, window.slow)
                elif window.slow / calls >= self._slow_thr:
                    self._trip(REASON_SLOW_CALL_RATE, calls, window.failed, window.slow)
        elif state is BreakerState.HALF_OPEN:
            if self._probe_calls >= self._probes_granted:
                return  # no probe outstanding: a late result from before the trip
            self._probe_calls += 1
            self._probe_failed += code & _FAILED
            self._probe_slow += code >> 1
            n = self._probe_calls
            if n >= self._permitted:
                if self._probe_failed / n >= self._fail_thr:
                    self._trip(REASON_PROBE_FAILURE_RATE, n, self._probe_failed, self._probe_slow)
                elif self._probe_slow / n >= self._slow_thr:
                    self._trip(REASON_PROBE_SLOW_CALL_RATE, n, self._probe_failed, self._probe_slow)
                else:
                    self._close(REASON_PROBES_PASSED)
        # open, forced_open, disabled: the result counts for nothing

    # --- operator controls ------------------------------------------------------------------------

    def force_open(self) -> None:
        """Refuse every call until `reset()` (or `disable()`)."""
        self._transition(BreakerState.FORCED_OPEN, REASON_FORCED_OPEN)

    def disable(self) -> None:
        """Let every call through and never trip, until `reset()` (or `force_open()`)."""
        self._transition(BreakerState.DISABLED, REASON_DISABLED)

    def reset(self) -> None:
        """Back to closed with an empty window and no trip history."""
        self._close(REASON_RESET)

    # --- reading ----------------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        self._apply_due()
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        self._apply_due()
        state = self._state
        if state is BreakerState.HALF_OPEN:
            calls, failed, slow = self._probe_calls, self._probe_failed, self._probe_slow
            minimum = self._permitted
        elif state is BreakerState.OPEN:
            calls, failed, slow = self._trip_figures
            minimum = 1
        else:
            window = self._window
            window.refresh(self._clock())
            calls, failed, slow = window.calls, window.failed, window.slow
            minimum = self._min_calls
        failure_rate, slow_rate = _rates(calls, failed, slow, minimum)
        return BreakerSnapshot(
            state=state,
            failure_rate=failure_rate,
            slow_call_rate=slow_rate,
            calls=calls,
            failed_calls=failed,
            slow_calls=slow,
            open_until=self._open_until if state is BreakerState.OPEN else None,
            consecutive_trips=self._trips,
        )

    # --- transitions ------------------------------------------------------------------------------

    def _apply_due(self) -> None:
        state = self._state
        if state is BreakerState.OPEN:
            now = self._clock()
            if now >= self._open_until:
                self._probes_granted = self._probe_calls = self._probe_failed = self._probe_slow = 0
                self._half_open_since = now
                self._transition(BreakerState.HALF_OPEN, REASON_WAIT_ELAPSED)
        elif state is BreakerState.HALF_OPEN:
            limit = self.config.max_wait_in_half_open_s
            if limit is not None and self._clock() - self._half_open_since >= limit:
                self._costly_failure = True  # a probe that hangs is as costly as a slow failure
                self._trip(
                    REASON_HALF_OPEN_TIMEOUT, self._probe_calls, self._probe_failed, self._probe_slow
                )

    def _open_wait(self, trips: int) -> float:
        config = self.config
        wait = config.open_wait_ceiling(trips)
        jitter = config.wait_jitter
        if jitter:
            wait *= 1.0 + jitter * (2.0 * self._rng.random() - 1.0)
        return min(wait, config.max_wait_in_open_s)

    def _trip(self, reason: str, calls: int, failed: int, slow: int) -> None:
        self._trips += 1
        if self._costly_failure or self._costly_trips == 0:
            self._costly_trips += 1
        self._costly_failure = False
        self._open_until = self._clock() + self._open_wait(self._costly_trips)
        self._trip_figures = (calls, failed, slow)
        self._transition(BreakerState.OPEN, reason)

    def _close(self, reason: str) -> None:
        self._window.clear()
        self._trips = self._costly_trips = 0
        self._costly_failure = False
        self._open_until = 0.0
        self._probes_granted = self._probe_calls = self._probe_failed = self._probe_slow = 0
        self._transition(BreakerState.CLOSED, reason)

    def _transition(self, new: BreakerState, reason: str) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        if self._listener is not None:
            self._listener(old, new, reason)

"""Cost of the resilience layer for one provider attempt, in process.

One attempt's work: breaker try_acquire + on_success, retry budget record_call + try_spend_retry +
record_success, backoff next_wait, concurrency limiter try_acquire + release. The whole-attempt figure
includes the retry decision (budget spend and backoff) on every iteration, as a failed attempt makes
it, so it is an upper bound. Each part and the whole
are timed with time.perf_counter_ns over ITERATIONS iterations, in ROUNDS rounds; the median round is
reported, in nanoseconds per attempt.

    python bench/bench_resilience.py [--iterations N] [--rounds R]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.resilience.backoff import Backoff, BackoffConfig  # noqa: E402
from orchestrator.resilience.breaker import BreakerConfig, CircuitBreaker  # noqa: E402
from orchestrator.resilience.budget import RetryBudget  # noqa: E402
from orchestrator.resilience.concurrency import AIMDLimiter  # noqa: E402


def make_parts(window_type: str) -> dict[str, Callable[[int], None]]:
    clock = time.monotonic
    breaker = CircuitBreaker(BreakerConfig(window_type=window_type), clock=clock, rng=random.Random(1))  # type: ignore[arg-type]
    budget = RetryBudget(clock=clock)
    backoff = Backoff(BackoffConfig(max_attempts=3), rng=random.Random(1))
    limiter = AIMDLimiter()

    def breaker_part(n: int) -> None:
        acquire, success = breaker.try_acquire, breaker.on_success
        for _ in range(n):
            if acquire():
                success(0.05)

    def budget_part(n: int) -> None:
        record_call, spend, record_success = budget.record_call, budget.try_spend_retry, budget.record_success
        for _ in range(n):
            record_call()
            spend("transient")
            record_success()

    def backoff_part(n: int) -> None:
        next_wait = backoff.next_wait
        for _ in range(n):
            next_wait(1, remaining_deadline_s=8.0)

    def concurrency_part(n: int) -> None:
        acquire, release = limiter.try_acquire, limiter.release
        for _ in range(n):
            if acquire():
                release(0.05, dropped=False)

    def whole_attempt(n: int) -> None:
        b_acquire, b_success = breaker.try_acquire, breaker.on_success
        record_call, spend, record_success = budget.record_call, budget.try_spend_retry, budget.record_success
        next_wait = backoff.next_wait
        l_acquire, l_release = limiter.try_acquire, limiter.release
        for _ in range(n):
            if b_acquire() and l_acquire():
                record_call()
                l_release(0.05, dropped=False)
                b_success(0.05)
                record_success()
            spend("transient")
            next_wait(1, remaining_deadline_s=8.0)

    return {
        "breaker (try_acquire + on_success)": breaker_part,
        "budget (record_call + try_spend_retry + record_success)": budget_part,
        "backoff (next_wait)": backoff_part,
        "concurrency (try_acquire + release)": concurrency_part,
        "one attempt, all of the above": whole_attempt,
    }


def empty_loop(n: int) -> None:
    for _ in range(n):
        pass


def median_ns(fn: Callable[[int], None], iterations: int, rounds: int) -> float:
    fn(min(iterations, 10_000))  # warm up
    samples = []
    for _ in range(rounds):
        gc.disable()
        start = time.perf_counter_ns()
        fn(iterations)
        elapsed = time.perf_counter_ns() - start
        gc.enable()
        samples.append(elapsed / iterations)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    loop_ns = median_ns(empty_loop, args.iterations, args.rounds)
    print(f"python {sys.version.split()[0]}, {args.iterations} iterations x {args.rounds} rounds, median round")
    print(f"(an empty loop iteration costs {loop_ns:.0f} ns and is included below)")
    total = 0.0
    for window_type in ("count", "time"):
        print(f"\nbreaker window: {window_type}")
        for name, fn in make_parts(window_type).items():
            ns = median_ns(fn, args.iterations, args.rounds)
            print(f"  {name:58s} {ns:8.0f} ns")
            total = max(total, ns) if name.startswith("one attempt") else total
    print(f"\nmedian per attempt (worst window type): {total:.0f} ns = {total / 1000:.2f} us (target <= 10 us)")


if __name__ == "__main__":
    main()

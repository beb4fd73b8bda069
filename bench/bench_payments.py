"""End-to-end payment latency and throughput on Postgres, against calling the Stripe sandbox directly.

Both paths are measured in the same run, alternating in rounds, on the same machine and sandbox:
- direct:       POST /eu/v1/payment_intents on the Stripe sandbox (what a single integration does);
- orchestrated: POST /v1/payments on `orchestrator serve` (auth, validation, write-ahead on Postgres,
                routing, the Stripe call, the final write).
Latency: an open loop at a fixed rate (default 100 payments/s), so queueing shows in the tail.
Throughput: a closed loop with a fixed number of concurrent clients.

    python bench/bench_payments.py [--rate 100] [--seconds 10] [--rounds 3] [--concurrency 32]

Needs PostgreSQL (ORCH_BENCH_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test);
a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.devstack import (  # noqa: E402
    DEFAULT_POSTGRES_URL, postgres_admin, orchestrator_env, run_cli, scratch_postgres_database, start_server)
from orchestrator.kit.migrate import upgrade  # noqa: E402
from sandbox_gateways.runner import start_sandboxes  # noqa: E402

POSTGRES = DEFAULT_POSTGRES_URL


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Target:
    def __init__(self, name: str, client: httpx.AsyncClient, make_request):
        self.name = name
        self.client = client
        self.make_request = make_request

    async def one(self, n: int) -> tuple[float, bool]:
        started = time.perf_counter()
        response = await self.make_request(self.client, n)
        elapsed = time.perf_counter() - started
        return elapsed, response.status_code in (200, 201) and '"succeeded"' in response.text


async def open_loop(target: Target, rate: float, seconds: float) -> tuple[list[float], int]:
    """Send at a fixed rate regardless of answers; returns latencies (s) and failures."""
    tasks = []
    interval = 1.0 / rate
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(target.one(n)))
    results = await asyncio.gather(*tasks)
    return [r[0] for r in results], sum(1 for r in results if not r[1])


async def closed_loop(target: Target, concurrency: int, seconds: float) -> float:
    """Each worker sends its next request as soon as the previous answers; returns completed/s."""
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        n = w * 1_000_000
        while time.perf_counter() < stop_at:
            await target.one(n)
            n += 1
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / (time.perf_counter() - started)


async def measure(args, stripe_url: str, orchestrator_url: str, api_key: str) -> dict:
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(limits=limits, timeout=30) as direct_client, \
            httpx.AsyncClient(limits=limits, timeout=30, base_url=orchestrator_url,
                              headers={"Authorization": f"Bearer {api_key}"}) as orch_client:

        async def direct(client, n):
            return await client.post(
                f"{stripe_url}/eu/v1/payment_intents",
                data={"amount": "1099", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true",
                      "payment_method_types[]": "card", "metadata[payment_id]": f"bench_{run}_{n}"},
                headers={"Authorization": "Bearer sk_test_bench", "Idempotency-Key": f"bench-{run}-{n}"})

        async def orchestrated(client, n):
            return await client.post("/v1/payments", json={
                "amount": 1099, "currency": "EUR", "country": "DE", "payment_method": "pm_card_visa"})

        targets = [Target("direct", direct_client, direct), Target("orchestrated", orch_client, orchestrated)]
        for target in targets:  # warm connections, caches and the JIT-less interpreter paths
            await open_loop(target, 50, 1)

        latency: dict[str, list[dict]] = {t.name: [] for t in targets}
        throughput: dict[str, list[float]] = {t.name: [] for t in targets}
        for round_no in range(args.rounds):
            for target in targets:
                values, failures = await open_loop(target, args.rate, args.seconds)
                latency[target.name].append({"p50": percentile(values, 50) * 1000,
                                             "p99": percentile(values, 99) * 1000, "failures": failures})
            for target in targets:
                throughput[target.name].append(await closed_loop(target, args.concurrency, args.seconds / 2))
            print(f"round {round_no + 1}: " + ", ".join(
                f"{name} p50 {latency[name][-1]['p50']:.2f} ms p99 {latency[name][-1]['p99']:.2f} ms "
                f"{throughput[name][-1]:.0f}/s" for name in latency), file=sys.stderr)
        return {"latency": latency, "throughput": throughput}


def summarise(result: dict, args) -> str:
    med = {name: {k: statistics.median(r[k] for r in rounds) for k in ("p50", "p99")}
           for name, rounds in result["latency"].items()}
    failures = {name: sum(r["failures"] for r in rounds) for name, rounds in result["latency"].items()}
    tput = {name: statistics.median(values) for name, values in result["throughput"].items()}
    added_p50 = med["orchestrated"]["p50"] - med["direct"]["p50"]
    added_p99 = med["orchestrated"]["p99"] - med["direct"]["p99"]
    ratio = tput["orchestrated"] / tput["direct"]
    lines = [
        f"Open loop at {args.rate:g} payments/s, {args.seconds:g} s per path per round, {args.rounds} rounds "
        f"(medians of the rounds); closed loop with {args.concurrency} clients, {args.seconds / 2:g} s per path "
        f"per round.",
        "",
        "| path | p50 latency | p99 latency | failed | throughput |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in ("direct", "orchestrated"):
        lines.append(f"| {name} | {med[name]['p50']:.2f} ms | {med[name]['p99']:.2f} ms | {failures[name]} | "
                     f"{tput[name]:.0f}/s |")
    lines += ["", f"Added latency: p50 {added_p50:.2f} ms (target ≤ 3), p99 {added_p99:.2f} ms (target ≤ 15). "
              f"Throughput ratio orchestrated/direct: {ratio:.2f} (target ≥ 0.5)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--async-commit", action="store_true",
                        help="diagnostic only: the scratch database commits without waiting for the disk, to "
                             "show how much of the added latency is the write-ahead fsync")
    args = parser.parse_args()

    import os

    base = os.environ.get("ORCH_BENCH_POSTGRES_URL", POSTGRES)


    scratch = scratch_postgres_database(base, "orch_bench")
    database_url = scratch.__enter__()
    if args.async_commit:
        name = database_url.rpartition("/")[2]
        postgres_admin(base, f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        upgrade(database_url)
        with start_sandboxes(host="127.0.0.1", base_port=None, seed=0) as gateways, \
                tempfile.TemporaryDirectory() as logs:
            env = orchestrator_env(database_url, gateways.urls, ORCH_LOG_LEVEL="WARNING")
            server = start_server(env, Path(logs))
            try:
                api_key = run_cli(["merchant", "create", "bench"], env)["api_key"]
                result = asyncio.run(measure(args, gateways.urls["stripe"], server.base_url, api_key))
            finally:
                server.stop()
        print(summarise(result, args))
    finally:
        scratch.__exit__(None, None, None)


if __name__ == "__main__":
    main()

"""Cost of full tracing per payment: throughput with OTLP export on against off, in one run.

Three `orchestrator serve` processes on the same Postgres database and the same sandboxes, identical
but for tracing:
- off:     no OTEL_EXPORTER_OTLP_ENDPOINT (metrics and JSON logs as always);
- traced:  every payment traced (request, routing, attempts, outbound calls, statements), exported
           by OTLP/HTTP in batches to a local receiver (a separate process that stores the requests
           and decodes them only at the end);
- sampled: the same with OTEL_TRACES_SAMPLER=traceidratio at 10%, for comparison.
Rounds rotate the order (closed loop, a fixed number of concurrent clients), so drift of the shared
machine hits all alike; each figure is the median of the rounds' ratios to `off`. The service's own
CPU time per payment (from /proc, export thread included) is reported beside throughput: on a busy
machine it is the steadier of the two.

    python bench/bench_observability.py [--seconds 6] [--rounds 5] [--concurrency 16]

Needs PostgreSQL (ORCH_BENCH_POSTGRES_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/test);
a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.devstack import (  # noqa: E402
    DEFAULT_POSTGRES_URL, free_port, orchestrator_env, run_cli, scratch_postgres_database, start_server)
from orchestrator.kit.migrate import upgrade  # noqa: E402
from sandbox_gateways.runner import start_sandboxes  # noqa: E402

POSTGRES = DEFAULT_POSTGRES_URL
BODY = {"amount": 1099, "currency": "EUR", "country": "DE", "payment_method": "pm_card_visa"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), all its threads (the span exporter's too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def closed_loop(client: httpx.AsyncClient, concurrency: int, seconds: float) -> tuple[float, list[float], int]:
    """Payments/s, latencies (s) and failures with `concurrency` clients sending back to back."""
    latencies: list[float] = []
    failures = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failures
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            response = await client.post("/v1/payments", json=BODY)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 201 or response.json()["status"] != "succeeded":
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies, failures


async def measure(args, targets: dict[str, str], pids: dict[str, int], api_key: str) -> dict[str, list[dict]]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    headers = {"Authorization": f"Bearer {api_key}"}
    results: dict[str, list[dict]] = {name: [] for name in targets}
    clients = {name: httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30)
               for name, url in targets.items()}
    try:
        for client in clients.values():  # warm connections, caches, the first export
            await closed_loop(client, args.concurrency, 1.5)
        order = list(targets)
        for round_no in range(args.rounds):
            shift = round_no % len(order)
            for name in order[shift:] + order[:shift]:
                cpu_before = cpu_seconds(pids[name])
                rate, latencies, failures = await closed_loop(clients[name], args.concurrency, args.seconds)
                cpu_ms = (cpu_seconds(pids[name]) - cpu_before) * 1000 / len(latencies)
                results[name].append({"rate": rate, "p50": percentile(latencies, 50) * 1000, "cpu_ms": cpu_ms,
                                      "p99": percentile(latencies, 99) * 1000, "failures": failures})
            print(f"round {round_no + 1}: " + ", ".join(
                f"{name} {results[name][-1]['rate']:.0f}/s p50 {results[name][-1]['p50']:.2f} ms "
                f"p99 {results[name][-1]['p99']:.2f} ms cpu {results[name][-1]['cpu_ms']:.2f} ms/payment"
                for name in targets), file=sys.stderr)
    finally:
        for client in clients.values():
            await client.aclose()
    return results


def summarise(results: dict[str, list[dict]], spans: int | None, args) -> str:
    ratios = [t["rate"] / o["rate"] for t, o in zip(results["traced"], results["off"])]
    ratio = statistics.median(ratios)
    sampled = statistics.median(t["rate"] / o["rate"] for t, o in zip(results["sampled"], results["off"]))
    lines = [f"Closed loop, {args.concurrency} clients, {args.seconds:g} s per mode per round, {args.rounds} rounds "
             f"alternating (medians of the rounds).", "",
             "| tracing | throughput | p50 latency | p99 latency | service CPU per payment | failed |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in ("off", "traced", "sampled"):
        rounds = results[name]
        lines.append(f"| {name} | {statistics.median(r['rate'] for r in rounds):.0f}/s | "
                     f"{statistics.median(r['p50'] for r in rounds):.2f} ms | "
                     f"{statistics.median(r['p99'] for r in rounds):.2f} ms | "
                     f"{statistics.median(r['cpu_ms'] for r in rounds):.2f} ms | {sum(r['failures'] for r in rounds)} |")
    traced_payments = sum(r["rate"] * args.seconds for r in results["traced"]) + \
        0.1 * sum(r["rate"] * args.seconds for r in results["sampled"])
    cpu_ratio = statistics.median(t["cpu_ms"] / o["cpu_ms"] for t, o in zip(results["traced"], results["off"]))
    lines += ["", f"Throughput traced/off: {ratio:.3f} (rounds: {', '.join(f'{r:.3f}' for r in ratios)}); "
              f"{(1 - ratio) * 100:.1f}% slower (target ≤ 10%). Sampled at 10%/off: {sampled:.3f}.",
              f"Service CPU per payment traced/off: {cpu_ratio:.3f} (the service process, export thread included; "
              f"steadier than throughput on a shared machine)."]
    if spans:
        lines.append(f"Spans received by the OTLP receiver: {spans} (about {spans / max(traced_payments, 1):.1f} "
                     f"per traced payment, warm-up included).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    base = os.environ.get("ORCH_BENCH_POSTGRES_URL", POSTGRES)


    scratch = scratch_postgres_database(base, "orch_bench")
    database_url = scratch.__enter__()
    receiver_port = free_port()
    receiver = subprocess.Popen([sys.executable, "-m", "tests.observability.otlp_receiver", "--port",
                                 str(receiver_port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
    servers = []
    spans = None
    try:
        upgrade(database_url)
        with start_sandboxes(host="127.0.0.1", base_port=None, seed=0) as gateways, \
                tempfile.TemporaryDirectory() as logs:
            base_env = {k: v for k, v in orchestrator_env(database_url, gateways.urls, ORCH_LOG_LEVEL="WARNING").items()
                        if not k.startswith("OTEL_")}
            traced_env = {**base_env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver_port}",
                          "OTEL_TRACES_SAMPLER": "always_on", "OTEL_SERVICE_NAME": "bench"}
            sampled_env = {**traced_env, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
            modes = {"off": base_env, "traced": traced_env, "sampled": sampled_env}
            servers = [start_server(env, Path(logs)) for env in modes.values()]
            api_key = run_cli(["merchant", "create", "bench"], base_env)["api_key"]
            results = asyncio.run(measure(args, {m: s.base_url for m, s in zip(modes, servers)},
                                          {m: s.process.pid for m, s in zip(modes, servers)}, api_key))
            for server in servers:
                server.stop()
            servers = []
            receiver.send_signal(signal.SIGTERM)
            out, _ = receiver.communicate(timeout=10)
            spans = int(out.strip() or 0)
        print(summarise(results, spans, args))
    finally:
        for server in servers:
            server.stop()
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
        scratch.__exit__(None, None, None)


if __name__ == "__main__":
    main()

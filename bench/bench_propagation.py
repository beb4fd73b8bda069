"""Override propagation across two replicas on one Postgres.

Replica A takes an override (force Braintree in the EU, then its removal); the clock runs from A's
201/200 answer until replica B's routing preview shows the change. B is polled every 5 ms. Postgres
NOTIFY carries the change; the version poll (every `ORCH_ROUTING_REFRESH_INTERVAL_S`, 0.5 s) is the
fallback.

    python bench/bench_propagation.py [--changes 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.devstack import DEFAULT_POSTGRES_URL, orchestrator_env, scratch_postgres_database, start_server  # noqa: E402,E501
from orchestrator.kit.migrate import upgrade  # noqa: E402
from sandbox_gateways.runner import start_sandboxes  # noqa: E402

POSTGRES = DEFAULT_POSTGRES_URL
TOKEN = "adm_bench_propagation"


def first_candidate(client: httpx.Client, base: str) -> str:
    body = {"payment": {"amount": 1000, "currency": "EUR", "country": "DE"}}
    return client.post(f"{base}/admin/routing/preview", json=body).json()["candidates"][0]["provider"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=40)
    args = parser.parse_args()


    scratch = scratch_postgres_database(POSTGRES, "orch_bench")
    database_url = scratch.__enter__()
    try:
        upgrade(database_url)
        with start_sandboxes(host="127.0.0.1", base_port=None, seed=0) as gateways, \
                tempfile.TemporaryDirectory() as logs:
            env = orchestrator_env(database_url, gateways.urls, ORCH_ADMIN_TOKEN=TOKEN, ORCH_LOG_LEVEL="WARNING",
                                   ORCH_ROUTING__FRESHNESS_SHARE="0", ORCH_ROUTING__TEMPERATURE="0.00001")
            a, b = start_server(env, Path(logs)), start_server(env, Path(logs))
            try:
                delays = []
                with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
                    for _ in range(args.changes // 2):
                        made = client.post(f"{a.base_url}/admin/overrides", json={
                            "action": "force", "provider": "braintree", "scope": {"region": "EU"},
                            "reason": "propagation benchmark"})
                        started = time.perf_counter()
                        while first_candidate(client, b.base_url) != "braintree":
                            time.sleep(0.005)
                        delays.append(time.perf_counter() - started)
                        client.delete(f"{a.base_url}/admin/overrides/{made.json()['id']}")
                        started = time.perf_counter()
                        while first_candidate(client, b.base_url) == "braintree":
                            time.sleep(0.005)
                        delays.append(time.perf_counter() - started)
            finally:
                a.stop()
                b.stop()
        ms = sorted(d * 1000 for d in delays)
        print(f"{len(ms)} override changes made on replica A, seen by replica B's routing after: "
              f"median {statistics.median(ms):.1f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, "
              f"max {ms[-1]:.1f} ms (target: within 1000 ms)")
    finally:
        scratch.__exit__(None, None, None)


if __name__ == "__main__":
    main()

"""`deploy/local` brings the topology up natively on loopback ports of the test's choosing: Postgres
database, sandbox gateways, two replicas behind HAProxy, Prometheus scraping both. Payments go through
HAProxy; Prometheus's own API sees every replica up; everything stops again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.database import POSTGRES_URL

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("haproxy", "prometheus", "promtool")),
    reason="deploy/local needs haproxy and prometheus (Debian packages haproxy and prometheus)")]

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "local"


def free_ports(count: int, consecutive: bool = False) -> list[int]:
    """Ports nothing listens on now; `consecutive` ones for the sandboxes (Stripe N, Adyen N+1, Braintree N+2)."""
    for _ in range(200):
        sockets = []
        try:
            first = socket.socket()
            first.bind(("127.0.0.1", 0))
            sockets.append(first)
            port = first.getsockname()[1]
            ports = [port]
            for n in range(1, count):
                other = socket.socket()
                sockets.append(other)
                other.bind(("127.0.0.1", port + n if consecutive else 0))
                ports.append(other.getsockname()[1])
            return ports
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free ports")


def topology_env(state_dir: Path) -> dict[str, str]:
    lb, prometheus, replica_1, replica_2 = free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "OTEL_", "DEPLOY_"))}
    env.update({
        "DEPLOY_STATE_DIR": str(state_dir), "DEPLOY_LB_PORT": str(lb), "DEPLOY_PROMETHEUS_PORT": str(prometheus),
        "DEPLOY_REPLICA_PORTS": f"{replica_1},{replica_2}", "DEPLOY_SANDBOX_PORT": str(free_ports(3, True)[0]),
        "DEPLOY_SCRAPE_INTERVAL": "1s", "DEPLOY_POSTGRES_URL": POSTGRES_URL.replace("+asyncpg", ""),
    })
    return env


def targets(prometheus_url: str) -> list[dict]:
    return httpx.get(f"{prometheus_url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]


def check_running_topology(topology: dict) -> None:
    # Prometheus's own view: one target per replica, each scraped successfully.
    give_up = time.monotonic() + 20
    while True:
        found = [t for t in targets(topology["prometheus"]) if t["labels"]["job"] == "orchestrator"]
        if len(found) == 2 and all(t["health"] == "up" for t in found):
            break
        assert time.monotonic() < give_up, found
        time.sleep(0.3)
    assert {t["scrapeUrl"] for t in found} == {f"{replica}/metrics" for replica in topology["replicas"]}

    # Payments through HAProxy; round robin spreads them over both replicas.
    key = topology["merchant"]["api_key"]
    with httpx.Client(base_url=topology["api"], timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        for n in range(4):
            response = client.post("/v1/payments", json={"amount": 1000 + n, "currency": "EUR", "country": "DE",
                                                         "payment_method": "pm_card_visa"})
            assert response.status_code == 201, response.text
            assert response.json()["status"] == "succeeded"
    for replica in topology["replicas"]:
        scrape = httpx.get(f"{replica}/metrics", timeout=5).text
        assert any(line.startswith("orchestrator_payments_total{") and 'status="succeeded"' in line
                   and not line.endswith(" 0.0") for line in scrape.splitlines()), replica

    # The payments show in Prometheus itself once scraped.
    give_up = time.monotonic() + 10
    while True:
        result = httpx.get(f"{topology['prometheus']}/api/v1/query", timeout=5, params={
            "query": 'sum(orchestrator_payments_total{job="orchestrator",status="succeeded"})'}).json()
        if result["data"]["result"] and float(result["data"]["result"][0]["value"][1]) >= 4:
            break
        assert time.monotonic() < give_up, result
        time.sleep(0.3)


def assert_stopped(state_dir: Path, topology: dict) -> None:
    assert not list((state_dir / "pids").glob("*.pid"))
    for url in (topology["api"], topology["prometheus"], *topology["replicas"]):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/", timeout=1)


def test_up_status_and_down(tmp_path):
    state_dir = tmp_path / "topology"
    env = topology_env(state_dir)
    try:
        up = subprocess.run([str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=150)
        assert up.returncode == 0, up.stderr
        topology = json.loads((state_dir / "topology.json").read_text())
        status = subprocess.run([str(SCRIPT), "status"], env=env, capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("answering") == 5
        check_running_topology(topology)
    finally:
        down = subprocess.run([str(SCRIPT), "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert_stopped(state_dir, topology)


def test_the_foreground_mode_stops_everything_on_sigterm(tmp_path):
    state_dir = tmp_path / "topology"
    env = topology_env(state_dir)
    process = subprocess.Popen([str(SCRIPT), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        give_up = time.monotonic() + 150
        while not (state_dir / "topology.json").exists():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < give_up
            time.sleep(0.2)
        topology = json.loads((state_dir / "topology.json").read_text())
        lb = httpx.get(f"{topology['api']}/readyz", timeout=5)
        assert lb.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            subprocess.run([str(SCRIPT), "down"], env=env, capture_output=True, timeout=120)
            raise
    assert process.returncode == 0, process.stderr.read()
    assert_stopped(state_dir, topology)

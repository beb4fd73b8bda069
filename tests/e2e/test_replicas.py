"""Two `serve` replicas on one Postgres: one health poller with takeover, overrides seen by both in < 1 s."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from orchestrator.kit.migrate import upgrade
from tests.e2e.helpers import payment_body
from tests.fixtures.database import fresh_postgres_database
from tests.fixtures.processes import orchestrator_env, run_cli, start_server
from tests.fixtures.sync import in_own_thread

pytestmark = pytest.mark.e2e
ADMIN = "adm_replica_test_token"


@pytest.fixture
def replicas(tmp_path):
    from sandbox_gateways.runner import start_sandboxes

    with fresh_postgres_database("orch_replicas") as database_url, \
            start_sandboxes(host="127.0.0.1", base_port=None, seed=4) as gateways:
        in_own_thread(upgrade, database_url)
        env = orchestrator_env(database_url, gateways.urls, ORCH_ADMIN_TOKEN=ADMIN, ORCH_STATUS_POLL_INTERVAL_S="1",
                               ORCH_ROUTING__FRESHNESS_SHARE="0", ORCH_ROUTING__TEMPERATURE="0.00001")
        servers = [start_server(env, tmp_path), start_server(env, tmp_path)]
        try:
            key = run_cli(["merchant", "create", "Two Replicas"], env)["api_key"]
            yield servers, key
        finally:
            for server in servers:
                server.stop()


def poller(server) -> dict:
    return httpx.get(f"{server.base_url}/admin/routing-table", headers={"Authorization": f"Bearer {ADMIN}"},
                     timeout=5).json()["poller"]


def wait_for(condition, timeout_s: float, step_s: float = 0.1):
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        value = condition()
        if value:
            return value
        time.sleep(step_s)
    return condition()


def test_exactly_one_replica_polls_and_another_takes_over_when_it_dies(replicas):
    servers, _key = replicas
    assert wait_for(lambda: sum(poller(s)["leader"] for s in servers) == 1, 5)
    time.sleep(2.5)  # several intervals: still exactly one
    leaders = [s for s in servers if poller(s)["leader"]]
    assert len(leaders) == 1
    leader, follower = leaders[0], next(s for s in servers if s is not leaders[0])
    assert poller(follower)["polls"] == 0 and poller(leader)["polls"] >= 2

    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(timeout=5)
    killed_at = time.monotonic()
    assert wait_for(lambda: poller(follower)["leader"], 5)
    assert time.monotonic() - killed_at <= 2 * 1.0 + 0.5  # within two poll intervals
    polls = poller(follower)["polls"]
    assert wait_for(lambda: poller(follower)["polls"] > polls, 3)


def test_an_override_made_on_one_replica_is_obeyed_by_the_other_within_a_second(replicas):
    (first, second), key = replicas
    merchant = {"Authorization": f"Bearer {key}"}
    before = httpx.post(f"{second.base_url}/v1/payments", json=payment_body(), headers=merchant, timeout=10).json()
    assert before["provider"] == "stripe"

    made_at = time.monotonic()
    created = httpx.post(f"{first.base_url}/admin/overrides", headers={"Authorization": f"Bearer {ADMIN}"}, json={
        "action": "force", "provider": "braintree", "scope": {"region": "EU"}, "reason": "replica test"}, timeout=5)
    assert created.status_code == 201

    def obeyed():
        payment = httpx.post(f"{second.base_url}/v1/payments", json=payment_body(), headers=merchant,
                             timeout=10).json()
        return payment if payment["provider"] == "braintree" else None

    payment = wait_for(obeyed, 2, step_s=0.02)
    assert payment is not None
    assert time.monotonic() - made_at < 1.0
    assert payment["route"]["overrides"] == [created.json()["id"]]

"""The gateways as real processes on free ports, spoken to over real HTTP."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from sandbox_gateways.runner import start_sandboxes

HOLD_S = 1.0
STRIPE_AUTH = {"Authorization": "Bearer sk_test_proc"}
ADYEN_AUTH = {"X-API-Key": "key"}
BRAINTREE_AUTH = {
    "Authorization": "Basic " + base64.b64encode(b"pub:priv").decode(),
    "Braintree-Version": "2019-01-01",
}


def charge_request(provider: str, base: str, reference: str, key: str, read_timeout: float = 5.0) -> httpx.Request:
    request = _charge_request(provider, base, reference, key)
    request.extensions["timeout"] = httpx.Timeout(5.0, read=read_timeout).as_dict()
    return request


def _charge_request(provider: str, base: str, reference: str, key: str) -> httpx.Request:
    if provider == "stripe":
        return httpx.Request(
            "POST", f"{base}/eu/v1/payment_intents",
            data={
                "amount": "1099", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true",
                "metadata[payment_id]": reference,
            },
            headers={**STRIPE_AUTH, "Idempotency-Key": key},
        )
    if provider == "adyen":
        return httpx.Request(
            "POST", f"{base}/eu/v72/payments",
            json={
                "amount": {"currency": "EUR", "value": 1099}, "reference": reference, "merchantAccount": "M",
                "paymentMethod": {"type": "scheme", "storedPaymentMethodId": "pm_card_visa"},
            },
            headers={**ADYEN_AUTH, "Idempotency-Key": key},
        )
    return httpx.Request(
        "POST", f"{base}/eu/graphql",
        json={
            "query": "mutation ($input: ChargePaymentMethodInput!) { chargePaymentMethod(input: $input) "
            "{ transaction { id } } }",
            "variables": {"input": {"paymentMethodId": "pm_card_visa",
                                    "transaction": {"amount": "10.99", "orderId": reference}}},
        },
        headers={**BRAINTREE_AUTH, "Idempotency-Key": key},
    )


@pytest.fixture(scope="module")
def sandboxes():
    with start_sandboxes(seed=0, timeout_hold_s=HOLD_S) as running:
        yield running


@pytest.fixture
def http(sandboxes):
    with httpx.Client(timeout=5.0) as client:
        for url in sandboxes.urls.values():
            client.post(url + "/_sandbox/reset").raise_for_status()
        yield client


def test_each_gateway_runs_in_its_own_process_and_answers(sandboxes, http):
    assert set(sandboxes.urls) == {"stripe", "adyen", "braintree"}
    pids = {p.pid for p in sandboxes.processes.values()}
    assert len(pids) == 3 and os.getpid() not in pids
    for url in sandboxes.urls.values():
        response = http.get(url + "/api/v2/summary.json")
        assert response.status_code == 200
        assert [c["name"] for c in response.json()["components"]] == ["EU", "US", "APAC"]


@pytest.mark.parametrize("provider", ["stripe", "adyen", "braintree"])
def test_reset_fault_drops_the_connection_and_charges_nothing(sandboxes, http, provider):
    base = sandboxes.urls[provider]
    http.put(base + "/_sandbox/faults/eu", json={"reset_rate": 1.0}).raise_for_status()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        http.send(charge_request(provider, base, "pay_reset", "key-reset"))
    assert http.get(base + "/_sandbox/ledger").json() == {"charges": []}
    # The server itself is fine, and other regions are unaffected.
    assert http.get(base + "/api/v2/summary.json").status_code == 200


@pytest.mark.parametrize("provider", ["stripe", "adyen", "braintree"])
def test_timeout_fault_records_the_charge_and_a_replay_gets_it_at_once(sandboxes, http, provider):
    base = sandboxes.urls[provider]
    http.put(base + "/_sandbox/faults/eu", json={"timeout_rate": 1.0}).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        http.send(charge_request(provider, base, "pay_timeout", "key-timeout", read_timeout=0.3))
    [entry] = http.get(base + "/_sandbox/ledger").json()["charges"]
    assert entry["reference"] == "pay_timeout" and entry["idempotency_key"] == "key-timeout"
    started = time.monotonic()
    replay = http.send(charge_request(provider, base, "pay_timeout", "key-timeout"))
    assert time.monotonic() - started < HOLD_S / 2
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert entry["id"] in replay.text
    assert len(http.get(base + "/_sandbox/ledger").json()["charges"]) == 1


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def test_stop_ends_every_process_cleanly():
    running = start_sandboxes(seed=1)
    assert all(_port_open(url) for url in running.urls.values())
    running.stop()
    assert [p.returncode for p in running.processes.values()] == [0, 0, 0]
    assert not any(_port_open(url) for url in running.urls.values())
    running.stop()  # idempotent


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_children_exit_when_their_parent_dies():
    script = (
        "import json, sys, time\n"
        "from sandbox_gateways.runner import start_sandboxes\n"
        "s = start_sandboxes(seed=0)\n"
        "print(json.dumps([p.pid for p in s.processes.values()]), flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 3 and not any(_gone(pid) for pid in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not all(_gone(pid) for pid in pids):
            time.sleep(0.1)
        assert all(_gone(pid) for pid in pids)
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()
        for pid in pids:  # leave nothing behind even when the assertion failed
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def _free_base_port() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            continue
        try:
            held = []
            for offset in range(3):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError("no three consecutive free ports")


def test_cli_runs_in_the_foreground_and_stops_on_sigterm():
    base = _free_base_port()
    cli = subprocess.Popen(
        [sys.executable, "-m", "sandbox_gateways", "--base-port", str(base), "--seed", "0"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        line = cli.stderr.readline()
        assert "ready" in line
        urls = [f"http://127.0.0.1:{base + i}" for i in range(3)]
        names = [httpx.get(url + "/api/v2/summary.json").json()["page"]["name"] for url in urls]
        assert [n.split()[0] for n in names] == ["Stripe", "Adyen", "Braintree"]
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=10) == 0
        assert not any(_port_open(url) for url in urls)
    finally:
        if cli.poll() is None:
            cli.kill()
        cli.stderr.close()


def test_start_fails_fast_when_a_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            start_sandboxes(base_port=port)


def test_serve_runs_one_gateway_on_a_port_and_stops_on_sigterm():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox_gateways.serve", "--provider", "braintree", "--port", str(port),
         "--seed", "5"],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while not _port_open(url):
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.05)
        assert httpx.get(url + "/api/v2/summary.json").json()["page"]["name"].startswith("Braintree")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
    finally:
        if server.poll() is None:
            server.kill()

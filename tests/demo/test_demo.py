"""`orchestrator demo` end to end without a terminal: plain lines, the scripted incident, the summary,
the money invariant against the sandbox ledgers, and every process stopped (also on Ctrl-C)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from orchestrator.demo.incident import incident, traffic
from orchestrator.devstack import PROJECT_ROOT

pytestmark = pytest.mark.e2e

URL = re.compile(r"http://127\.0\.0\.1:\d+")


def started_urls(output: str) -> list[str]:
    lines = [line for line in output.splitlines() if line.startswith(("Sandbox gateways:", "Orchestrator:"))]
    return URL.findall("\n".join(lines))


def assert_stopped(urls: list[str]) -> None:
    assert len(urls) == 4, urls  # three sandboxes and the orchestrator
    for url in urls:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=1)


def test_the_incident_scales_with_the_duration():
    for duration in (15, 60):
        steps = incident(duration)
        assert [s.kind for s in steps] == ["fault", "fault", "override", "fault", "remove_override"]
        assert all(0 < a.at < b.at < duration for a, b in zip(steps, steps[1:]))
        assert steps[0].fault["error_rate"] > 0.5 and steps[0].fault["status_page"] == "operational"
        assert steps[1].fault == {"status_page": "major_outage"}
        assert steps[3].fault["error_rate"] == 0
    planned = traffic(15, 20, seed=7)
    assert len(planned) == 300 and planned == traffic(15, 20, seed=7)
    assert {p.currency for p in planned} >= {"EUR", "USD", "AUD", "GBP"}


def test_the_demo_runs_without_a_terminal_and_checks_the_money_invariant():
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "orchestrator", "demo", "--duration", "15", "--rate", "20"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 60
    out = done.stdout
    assert "\x1b[" not in out  # plain lines, no terminal control
    for event in ("Stripe EU starts failing", "status page catches up", "operator disables Stripe",
                  "The fault clears", "removes the override"):
        assert event in out, event
    assert re.search(r"t=\s*\d+\.\ds sent \d+ answered \d+ succeeded \d+\s+EU\[stripe \d+%", out)
    assert "overrides: 1" in out  # the operator's override shows while it is active
    taken = int(re.search(r"payments taken: (\d+)", out).group(1))
    succeeded = int(re.search(r"succeeded: (\d+) \(", out).group(1))
    assert taken == 300 and succeeded >= 0.9 * taken  # only declines fail; the outage costs nothing
    assert re.search(r"failed: \d+: .*card_declined", out)
    assert int(re.search(r"failovers: (\d+) payments", out).group(1)) > 0
    assert int(re.search(r"routed under the operator's override: (\d+)", out).group(1)) > 0
    assert re.search(r"fees paid: .*EUR [\d,]+\.\d\d", out)
    assert "money invariant: holds" in out
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in out
    assert_stopped(started_urls(out))


def test_ctrl_c_stops_every_process():
    process = subprocess.Popen([sys.executable, "-m", "orchestrator", "demo", "--duration", "60"], cwd=PROJECT_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        give_up = time.monotonic() + 60
        while "Sending" not in seen and time.monotonic() < give_up:
            line = process.stdout.readline()
            if not line:
                break
            seen += line
        assert "Sending" in seen, seen + process.stderr.read()
        time.sleep(1.5)
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, errors
    assert "Interrupted" in errors
    assert_stopped(started_urls(seen))

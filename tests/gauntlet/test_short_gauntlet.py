"""The short CI scenario through all four routers, end to end: real sandboxes, a real `serve` on a fresh
Postgres database, the CLI's outputs, the money invariant and the ordering on successes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from orchestrator.devstack import PROJECT_ROOT
from orchestrator.gauntlet import SCENARIO_DIR

pytestmark = pytest.mark.e2e


def test_the_short_scenario_keeps_the_invariant_and_orders_the_routers(tmp_path):
    out = tmp_path / "results"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "orchestrator", "gauntlet", str(SCENARIO_DIR / "ci-short.yaml"),
                           "--out", str(out), "--seed", "1"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < 60, f"the short gauntlet took {elapsed:.0f} s"

    result = json.loads((out / "ci-short.json").read_text())
    routers = result["routers"]
    assert list(routers) == ["static", "naive", "orchestrator", "oracle"]
    assert (out / "ci-short.png").stat().st_size > 10_000
    assert (out / "summary.json").exists() and (out / "ci-short.records.json.gz").exists()
    for name in ("static", "naive", "orchestrator", "oracle"):
        assert name in done.stdout  # the table on the terminal
    assert "Goals for the orchestrator" in done.stdout

    orchestrator = routers["orchestrator"]
    assert orchestrator["double_charged_payments"] == 0
    assert orchestrator["invariant_violations"] == 0, orchestrator["invariant_examples"]
    assert orchestrator["unattributed_charges"] == 0
    assert routers["oracle"]["invariant_violations"] == 0
    assert all(m["payments"] == result["scenario"]["payments"] for m in routers.values())

    success = {name: m["succeeded"] for name, m in routers.items()}
    assert success["oracle"] >= success["orchestrator"] > success["naive"] > success["static"], success
    # The orchestrator moved Stripe EU's traffic once it failed, and lost nothing the oracle kept.
    assert orchestrator["successes_lost_vs_oracle"] <= 0
    assert orchestrator["moved_everywhere"]
    assert result["goals"]["no_double_charges"] and result["goals"]["money_invariant"]

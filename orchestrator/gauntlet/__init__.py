"""The chaos gauntlet: the same seeded traffic and provider faults through several routers, compared.

    orchestrator gauntlet [SCENARIO.yaml ...] [--routers static,naive,orchestrator,oracle] [--out DIR]

See docs/gauntlet.md for the scenario format, the routers and how each metric is computed.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from orchestrator.gauntlet.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = ["run_gauntlet", "load_scenario", "parse_scenario", "Scenario", "ScenarioError", "default_scenarios"]

log = logging.getLogger("orchestrator.gauntlet")
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "bench" / "scenarios"


def default_scenarios() -> list[Path]:
    """Every bench/scenarios/*.yaml except the short CI one (`ci-*.yaml`), in name order."""
    return sorted(p for p in SCENARIO_DIR.glob("*.yaml") if not p.name.startswith("ci-"))


def run_gauntlet(scenarios: list[Path], routers: list[str], out_dir: Path, seed: int, *,
                 postgres_url: str | None = None, parallel: bool = True,
                 orchestrator_env: dict[str, str] | None = None) -> int:
    """Run each scenario through each router; print the tables, write JSON and PNG files to `out_dir`.

    Returns 0, 1 when the orchestrator double charged or broke the money invariant anywhere, 2 for
    bad arguments or scenario files."""
    from orchestrator.gauntlet.database import DEFAULT_POSTGRES_URL
    from orchestrator.gauntlet.ledger import provider_table
    from orchestrator.gauntlet.metrics import compare_with_oracle, goals, router_metrics
    from orchestrator.gauntlet.report import console, goals_table, plot, scenario_table, write_json, write_records
    from orchestrator.gauntlet.routers import ROUTERS
    from orchestrator.gauntlet.runner import RunOptions, run_scenario
    from orchestrator.gauntlet.traffic import plan_traffic

    out = console()
    unknown = [r for r in routers if r not in ROUTERS]
    if unknown or not routers:
        print(f"unknown router(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ROUTERS)}",
              file=sys.stderr)
        return 2
    paths = list(scenarios) or default_scenarios()
    if not paths:
        print(f"no scenario files (looked in {SCENARIO_DIR})", file=sys.stderr)
        return 2
    loaded: list[tuple[Path, Scenario]] = []
    problems = []
    for path in paths:
        try:
            loaded.append((Path(path), load_scenario(path)))
        except ScenarioError as exc:
            problems.append(str(exc))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    order = [r for r in ROUTERS if r in routers]  # static, naive, orchestrator, oracle
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(orchestrator_env or {})
    options = RunOptions(sandbox_seed=seed, postgres_url=DEFAULT_POSTGRES_URL if postgres_url is None else postgres_url,
                         orchestrator_env=env, parallel=parallel)
    table = provider_table()
    results = []
    broken = False
    started = time.monotonic()
    for path, scenario in loaded:
        planned = plan_traffic(scenario, seed)
        print(f"{scenario.name}: {len(planned)} payments over {scenario.traffic.duration:g} s through "
              f"{', '.join(order)} ...", file=sys.stderr, flush=True)
        load_before = os.getloadavg()
        runs = run_scenario(scenario, planned, order, options)
        load_after = os.getloadavg()
        faults = scenario.faults()
        metrics = {name: router_metrics(run, scenario, faults, table) for name, run in runs.items()}
        compare_with_oracle(metrics, runs, table)
        scenario_goals = goals(metrics, scenario, faults)
        out.print(scenario_table(scenario, metrics))
        for name, m in metrics.items():
            for note in m["notes"]:
                out.print(f"  {name}: {note}")
            if m["invariant_violations"]:
                out.print(f"  {name}: money invariant broken {m['invariant_violations']} times, e.g. "
                          f"{'; '.join(m['invariant_examples'][:3])}")
        result = {"scenario": {"name": scenario.name, "description": scenario.description,
                               "file": str(path),
                               "rate": scenario.traffic.rate, "duration": scenario.traffic.duration,
                               "payments": len(planned), "seed": seed},
                  # other work on the machine shows in the orchestrator's latency: the 1-minute load
                  # average before and after the scenario (2 would be both cores busy on 2 cores)
                  "load_average": {"before": round(load_before[0], 2), "after": round(load_after[0], 2),
                                   "cpus": os.cpu_count()},
                  "fault_windows": [w.to_dict() for w in faults.windows(scenario.regions)],
                  "orchestrator_env": env, "routers": metrics, "goals": scenario_goals}
        write_json(out_dir / f"{scenario.name}.json", result)
        write_records(out_dir / f"{scenario.name}.records.json.gz", runs)
        plot(out_dir / f"{scenario.name}.png", scenario, faults, runs)
        out.print(f"  wrote {out_dir / (scenario.name + '.json')} and {scenario.name}.png\n")
        results.append(result)
        orch = metrics.get("orchestrator")
        if orch and (orch["double_charged_payments"] or orch["invariant_violations"]):
            broken = True
    if any(r["goals"] for r in results):
        out.print(goals_table(results))
    write_json(out_dir / "summary.json", {"seed": seed, "routers": order, "orchestrator_env": env,
                                          "wall_s": round(time.monotonic() - started, 1),
                                          "scenarios": [{"name": r["scenario"]["name"], "goals": r["goals"],
                                                         "routers": {n: _headline(m) for n, m in r["routers"].items()}}
                                                        for r in results]})
    if broken:
        out.print("[red]The orchestrator broke the money invariant (see above).[/]")
        return 1
    return 0


def _headline(m: dict) -> dict:
    keys = ("payments", "succeeded", "success_rate", "successes_lost_vs_oracle", "fee_excess_vs_oracle_pct",
            "effective_fee_pct", "charges_per_payment", "double_charged_payments", "invariant_violations",
            "move_s_worst", "moved_everywhere", "return_s_worst", "returned_everywhere")
    return {k: m.get(k) for k in keys} | {"p50_ms": m["latency_ms"]["p50"], "p99_ms": m["latency_ms"]["p99"]}

"""The gauntlet's outputs: a rich table per scenario, a JSON file, and a PNG plot of traffic shares."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.gauntlet.runner import RouterRun
from orchestrator.gauntlet.scenario import PROVIDERS, FaultTimeline, Scenario

PROVIDER_COLOURS = {"stripe": "#635bff", "adyen": "#0abf53", "braintree": "#f4a300", "none": "#b0b0b0"}
GOAL_LABELS = {
    "no_double_charges": "no double charge",
    "money_invariant": "money invariant",
    "successes_ge_99_9pct_of_oracle": "successes >= 99.9% of oracle",
    "fees_le_2pct_above_oracle": "fees <= oracle + 2%",
    "moved_within_2s": "moved within 2 s (100/s)",
    "success_better_than_naive": "success better than naive",
    "p99_better_than_naive": "p99 better than naive (slow provider)",
}


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def _seconds(value: float | None, has: bool, ok: bool) -> str:
    if not has:
        return "n/a"
    if not ok or value is None:
        return "never"
    return f"{value:.2f} s"


def _goal(value: Any) -> str:
    return "n/a" if value is None else ("[green]met[/]" if value else "[red]missed[/]")


def scenario_table(scenario: Scenario, metrics: dict[str, dict]) -> Table:
    traffic = scenario.traffic
    table = Table(title=f"{scenario.name}: {traffic.rate:g} payments/s for {traffic.duration:g} s",
                  title_justify="left")
    for column in ("router", "success", "lost vs oracle", "p50", "p99", "fees vs oracle", "fee rate",
                   "charges/payment", "double charges", "moved (95%)", "returned"):
        table.add_column(column, justify="left" if column == "router" else "right")
    for name, m in metrics.items():
        excess = m.get("fee_excess_vs_oracle_pct")
        double = m["double_charged_payments"]
        table.add_row(
            name, _pct(m["success_rate"]), str(m.get("successes_lost_vs_oracle", "-")),
            _ms(m["latency_ms"]["p50"]), _ms(m["latency_ms"]["p99"]),
            "-" if excess is None else f"{excess:+.2f}%",
            "-" if m["effective_fee_pct"] is None else f"{m['effective_fee_pct']:.2f}%",
            "-" if m["charges_per_payment"] is None else f"{m['charges_per_payment']:.3f}",
            f"[red]{double}[/]" if double else "0",
            _seconds(m["move_s_worst"], m["has_move_windows"], m["moved_everywhere"]),
            _seconds(m["return_s_worst"], m["has_return_windows"], m["returned_everywhere"]),
        )
    return table


def goals_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="Goals for the orchestrator (issue 6)", title_justify="left")
    table.add_column("scenario")
    keys = list(GOAL_LABELS)
    for key in keys:
        table.add_column(GOAL_LABELS[key], justify="center")
    for result in results:
        table.add_row(result["scenario"]["name"], *(_goal(result["goals"].get(k)) for k in keys))
    return table


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_records(path: Path, runs: dict[str, RouterRun]) -> None:
    """Every payment of every router (gzipped JSON), for analyses beyond the summary."""
    import gzip

    with gzip.open(path, "wt") as file:
        json.dump({name: [r.to_dict() for r in run.records] for name, run in runs.items()}, file)


def timeseries(run: RouterRun, region: str, duration: float, bin_s: float) -> dict[str, Any]:
    """Per time bin: the share of the region's payments by provider of first attempt, and success."""
    bins = max(1, math.ceil(duration / bin_s))
    counts = {name: [0] * bins for name in (*PROVIDERS, "none")}
    totals, ok = [0] * bins, [0] * bins
    for record in run.records:
        if record.region != region:
            continue
        index = min(bins - 1, max(0, int(record.sent // bin_s)))
        counts[record.first or "none"][index] += 1
        totals[index] += 1
        ok[index] += record.settled_status == "succeeded"
    shares: dict[str, list[float]] = {name: [] for name in counts}
    last = {name: 0.0 for name in counts}
    for index, total in enumerate(totals):
        for name, values in counts.items():
            if total:  # an empty bin keeps the previous shares
                last[name] = values[index] / total
            shares[name].append(last[name])
    return {"t": [(i + 0.5) * bin_s for i in range(bins)], "share": shares,
            "success": [o / t if t else None for o, t in zip(ok, totals)]}


def plot(path: Path, scenario: Scenario, faults: FaultTimeline, runs: dict[str, RouterRun]) -> None:
    """One row per router, one column per region: stacked share of first attempts by provider over time,
    the success rate as a black line, and each provider's fault windows shaded in its colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regions = scenario.regions
    duration = scenario.traffic.duration
    bin_s = max(1.0, duration / 40)
    fig, axes = plt.subplots(len(runs), len(regions), figsize=(4.6 * len(regions), 2.3 * len(runs) + 1.2),
                             squeeze=False, sharex=True, sharey=True)
    windows = faults.windows(regions)
    for row, (name, run) in enumerate(runs.items()):
        for col, region in enumerate(regions):
            ax = axes[row][col]
            series = timeseries(run, region, duration, bin_s)
            stacks = [series["share"][p] for p in (*PROVIDERS, "none")]
            ax.stackplot(series["t"], *stacks, colors=[PROVIDER_COLOURS[p] for p in (*PROVIDERS, "none")],
                         labels=[*PROVIDERS, "no call"], alpha=0.85, step=None)
            success = [(t, s) for t, s in zip(series["t"], series["success"]) if s is not None]
            if success:
                ax.plot([t for t, _ in success], [s for _, s in success], color="black", linewidth=1.0,
                        label="success rate")
            for window in windows:
                if window.region == region:
                    ax.axvspan(window.start, window.end, facecolor="none", hatch="///",
                               edgecolor=PROVIDER_COLOURS[window.provider], linewidth=0, alpha=0.9)
                    ax.axvline(window.start, color=PROVIDER_COLOURS[window.provider], linewidth=0.8, linestyle="--")
            ax.set_xlim(0, duration)
            ax.set_ylim(0, 1.02)
            if row == 0:
                ax.set_title(region)
            if col == 0:
                ax.set_ylabel(f"{name}\nshare of traffic")
            if row == len(runs) - 1:
                ax.set_xlabel("seconds")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(f"{scenario.name}: share of each region's payments by provider of first attempt "
                 "(hatched: that provider's fault windows)", fontsize=10)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    height = fig.get_figheight()
    fig.tight_layout(rect=(0, 0.45 / height, 1, 1 - 0.4 / height))  # room for the legend and the title
    fig.savefig(path, dpi=90)
    plt.close(fig)


def console() -> Console:
    """The terminal's width, or a wide fixed one when the output is a file or a pipe."""
    import sys

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)

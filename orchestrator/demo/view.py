"""What the demo shows while it runs: a live rich view on a terminal, plain progress lines otherwise."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

REGIONS = ("EU", "US", "APAC")
PROVIDERS = ("stripe", "adyen", "braintree")
WINDOW_S = 5.0  # the live figures cover the payments answered in the last few seconds
PROVIDER_FAULTS = ("error", "ambiguous")  # attempt outcomes that say the provider failed
BREAKER_STYLE = {"closed": "green", "open": "bold red", "half_open": "yellow", "forced_open": "red",
                 "disabled": "dim"}


@dataclass
class Answer:
    """One payment as the demo's client saw it."""

    sent: float
    done: float
    region: str
    currency: str
    amount: int
    payment_id: str | None
    status: str  # succeeded, failed, processing, or error (no usable answer)
    code: str | None
    provider: str | None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)

    @property
    def first(self) -> str | None:
        return self.attempts[0]["provider"] if self.attempts else None

    @property
    def retries(self) -> int:
        return sum(1 for a in self.attempts if (a.get("decision") or "").startswith("retry:"))

    @property
    def failed_over(self) -> bool:
        return any((a.get("decision") or "").startswith("failover:") for a in self.attempts)


@dataclass
class DemoState:
    duration_s: float
    rate: float
    answers: list[Answer] = field(default_factory=list)
    sent: int = 0
    routing: dict[tuple[str, str], dict] = field(default_factory=dict)
    overrides: list[dict] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    now: float = 0.0
    phase: str = "Steady traffic: every provider healthy"

    @property
    def in_flight(self) -> int:
        return self.sent - len(self.answers)


@dataclass
class RegionFigures:
    payments: int
    succeeded: int
    retries: int
    failovers: int
    share: dict[str, float]
    calls: dict[str, int]
    calls_ok: dict[str, float | None]


def region_figures(answers: list[Answer], region: str) -> RegionFigures:
    mine = [a for a in answers if a.region == region]
    first = Counter(a.first for a in mine)
    calls: Counter = Counter()
    ok: Counter = Counter()
    for answer in mine:
        for attempt in answer.attempts:
            calls[attempt["provider"]] += 1
            ok[attempt["provider"]] += attempt.get("outcome") not in PROVIDER_FAULTS
    return RegionFigures(
        payments=len(mine), succeeded=sum(a.status == "succeeded" for a in mine),
        retries=sum(a.retries for a in mine), failovers=sum(a.failed_over for a in mine),
        share={p: first[p] / len(mine) if mine else 0.0 for p in PROVIDERS},
        calls={p: calls[p] for p in PROVIDERS},
        calls_ok={p: (ok[p] / calls[p] if calls[p] else None) for p in PROVIDERS})


def recent(state: DemoState) -> list[Answer]:
    return [a for a in state.answers if a.done >= state.now - WINDOW_S]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _bar(share: float, width: int = 20) -> str:
    full = int(round(share * width))
    return "█" * full + "·" * (width - full)


def render(state: DemoState) -> Group:
    """The live view: progress, one table per region, the active overrides, the incident so far."""
    window = recent(state)
    done = len(state.answers)
    ok = sum(a.status == "succeeded" for a in state.answers)
    header = Text.assemble(
        ("Payment orchestrator demo", "bold"), f"   t = {state.now:5.1f} s of {state.duration_s:g} s   ",
        f"sent {state.sent}   answered {done}   succeeded {ok}   in flight {state.in_flight}\n",
        ("now: ", "bold"), (state.phase, "cyan"),
        ("\nshare of traffic: where each payment's first attempt went; calls ok: provider calls answered without "
         "a provider fault (declines count as answered)", "dim"))
    parts: list[Any] = [Panel(header, border_style="blue")]
    for region in REGIONS:
        figures = region_figures(window, region)
        title = (f"{region}: {figures.payments} payments in the last {WINDOW_S:g} s, "
                 f"{_pct(figures.succeeded / figures.payments if figures.payments else None)} succeeded, "
                 f"{figures.retries} retries, {figures.failovers} failovers")
        table = Table(title=title, title_justify="left", expand=False, box=box.SIMPLE_HEAD, pad_edge=False,
                      padding=(0, 1))
        table.add_column("provider", width=10)
        table.add_column("share of traffic", width=26)
        table.add_column("calls", justify="right", width=6)
        table.add_column("calls ok", justify="right", width=8)
        table.add_column("breaker", width=10)
        table.add_column("status page", width=20)
        for provider in PROVIDERS:
            row = state.routing.get((provider, region), {})
            breaker = row.get("circuit_state", "?")
            page = row.get("status_page", "?")
            table.add_row(provider, f"{_bar(figures.share[provider])} {_pct(figures.share[provider]):>4}",
                          str(figures.calls[provider]), _pct(figures.calls_ok[provider]),
                          Text(breaker, style=BREAKER_STYLE.get(breaker, "")),
                          Text(page, style="" if page in ("operational", "?") else "red"))
        parts.append(table)
    if state.overrides:
        lines = [f"{o['action']} {o['provider']} in {o['scope'].get('region') or 'every region'}: "
                 f"\"{o['reason']}\"" + (f" (expires {o['expires_at']})" if o.get("expires_at") else "")
                 for o in state.overrides]
        parts.append(Panel("\n".join(lines), title="active overrides", border_style="yellow"))
    else:
        parts.append(Panel("none", title="active overrides", border_style="dim"))
    if state.events:
        parts.append(Panel("\n".join(f"t = {t:5.1f} s  {text}" for t, text in state.events[-6:]),
                           title="incident", border_style="magenta"))
    return Group(*parts)


def plain_line(state: DemoState) -> str:
    """One progress line for logs and pipes: totals, then per region the share of each provider."""
    window = recent(state)
    ok = sum(a.status == "succeeded" for a in state.answers)
    regions = []
    for region in REGIONS:
        figures = region_figures(window, region)
        providers = []
        for provider in PROVIDERS:
            breaker = state.routing.get((provider, region), {}).get("circuit_state", "?")
            mark = "" if breaker == "closed" else f" {breaker}"
            providers.append(f"{provider} {_pct(figures.share[provider])}{mark}")
        regions.append(f"{region}[{', '.join(providers)}; ok "
                       f"{_pct(figures.succeeded / figures.payments if figures.payments else None)}, "
                       f"retries {figures.retries}, failovers {figures.failovers}]")
    overrides = f"  overrides: {len(state.overrides)}" if state.overrides else ""
    return (f"t={state.now:5.1f}s sent {state.sent} answered {len(state.answers)} succeeded {ok}  "
            + "  ".join(regions) + overrides)

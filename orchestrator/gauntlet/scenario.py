"""The scenario format: seeded traffic plus a timeline of sandbox faults per provider and region.

A scenario file (YAML) is validated by the pydantic models below; `load_scenario` turns any problem
into a `ScenarioError` that names the file and every bad field. `FaultTimeline` replays the timeline
in memory: which fault configuration each provider region has at any instant, and the windows in
which it is unhealthy (what the `oracle` router knows and what the move/return metrics measure).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.kit.money import is_iso4217
from orchestrator.routing.regions import REGIONS, region_for_country

PROVIDERS: tuple[str, ...] = ("stripe", "adyen", "braintree")
TEST_TOKENS: tuple[str, ...] = ("pm_card_visa", "pm_card_declined", "pm_card_insufficient_funds",
                                "pm_card_processing_error")
StatusPage = Literal["operational", "degraded_performance", "partial_outage", "major_outage"]

# A provider region is unhealthy (for the oracle and the metrics) when any call may fail or when its
# typical latency is at least this.
SLOW_LATENCY_MS = 1000.0


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and each problem."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path} is not a valid scenario:\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaultBody(_Strict):
    """The sandbox's fault control body (`PUT /_sandbox/faults/{region}`); only given fields change."""

    error_rate: float | None = Field(None, ge=0, le=1)
    error_status: int | None = Field(None, ge=400, le=599)
    latency_ms: float | None = Field(None, ge=0, le=600_000)
    latency_jitter_ms: float | None = Field(None, ge=0, le=600_000)
    timeout_rate: float | None = Field(None, ge=0, le=1)
    reset_rate: float | None = Field(None, ge=0, le=1)
    status_page: StatusPage | None = None

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


NO_FAULT: dict[str, Any] = {"error_rate": 0.0, "error_status": 503, "latency_ms": 0.0, "latency_jitter_ms": 0.0,
                            "timeout_rate": 0.0, "reset_rate": 0.0, "status_page": "operational"}


class Market(_Strict):
    country: str = Field(pattern=r"^[A-Z]{2}$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    weight: float = Field(1.0, gt=0)

    @field_validator("country")
    @classmethod
    def _served(cls, value: str) -> str:
        if region_for_country(value) is None:
            raise ValueError(f"country {value} is in no region (EU, US or APAC)")
        return value

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str) -> str:
        if not is_iso4217(value):
            raise ValueError(f"{value} is not an ISO 4217 currency")
        return value

    @property
    def region(self) -> str:
        return region_for_country(self.country)  # type: ignore[return-value]


class Amounts(_Strict):
    """Minor units, drawn log-uniformly between min and max."""

    min: int = Field(gt=0, le=99_999_999)
    max: int = Field(gt=0, le=99_999_999)

    @model_validator(mode="after")
    def _ordered(self) -> "Amounts":
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class Traffic(_Strict):
    rate: float = Field(gt=0, le=1000, description="payments per second (Poisson arrivals)")
    duration: float = Field(gt=0, le=3600, description="seconds of traffic")
    markets: list[Market] = Field(min_length=1)
    amounts: Amounts = Field(default_factory=lambda: Amounts(min=500, max=20_000))
    tokens: dict[str, float] = Field(default_factory=lambda: {"pm_card_visa": 1.0})

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one token")
        for token, weight in value.items():
            if token not in TEST_TOKENS:
                raise ValueError(f"unknown test token {token!r} (expected one of {', '.join(TEST_TOKENS)})")
            if not weight > 0:
                raise ValueError(f"weight of {token} must be > 0")
        return value


class TimelineEvent(_Strict):
    """At `at` seconds: apply `fault` (only its fields change) or `clear` (back to the baseline)."""

    at: float = Field(ge=0)
    provider: str | list[str]
    region: str
    fault: FaultBody | None = None
    clear: bool = False
    note: str | None = None

    @field_validator("provider")
    @classmethod
    def _providers(cls, value: str | list[str]) -> str | list[str]:
        names = PROVIDERS if value == "all" else ([value] if isinstance(value, str) else value)
        if not names:
            raise ValueError("at least one provider")
        for name in names:
            if name not in PROVIDERS:
                raise ValueError(f"unknown provider {name!r} (expected {', '.join(PROVIDERS)} or all)")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        upper = value.upper()
        if upper != "ALL" and upper not in REGIONS:
            raise ValueError(f"unknown region {value!r} (expected EU, US, APAC or all)")
        return upper

    @model_validator(mode="after")
    def _one_action(self) -> "TimelineEvent":
        if (self.fault is not None) == bool(self.clear):
            raise ValueError("give exactly one of `fault` (a fault body) or `clear: true`")
        return self

    def targets(self) -> list[tuple[str, str]]:
        providers = list(PROVIDERS) if self.provider == "all" else (
            [self.provider] if isinstance(self.provider, str) else list(self.provider))
        regions = list(REGIONS) if self.region == "ALL" else [self.region]
        return [(p, r) for p in providers for r in regions]


class SandboxSettings(_Strict):
    timeout_hold_s: float = Field(30.0, gt=0, le=600)


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    traffic: Traffic
    baseline: FaultBody = Field(default_factory=FaultBody)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    timeline: list[TimelineEvent] = Field(default_factory=list)

    @model_validator(mode="after")
    def _within_duration(self) -> "Scenario":
        for index, event in enumerate(self.timeline):
            if event.at > self.traffic.duration:
                raise ValueError(f"timeline[{index}].at ({event.at:g}) is after the end of the traffic "
                                 f"({self.traffic.duration:g} s)")
        return self

    @property
    def regions(self) -> list[str]:
        seen = {m.region for m in self.traffic.markets}
        return [r for r in REGIONS if r in seen]

    def faults(self) -> "FaultTimeline":
        return FaultTimeline(self)


def _location(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def parse_scenario(raw: Any, path: Path | str, default_name: str | None = None) -> Scenario:
    if not isinstance(raw, dict):
        raise ScenarioError(path, ["expected a mapping with `traffic` and `timeline`"])
    if "name" not in raw and default_name:
        raw = {"name": default_name, **raw}
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{_location(error['loc'])}: {message}")
        raise ScenarioError(path, problems) from None


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(path, [f"cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(path, [f"not valid YAML: {exc}"]) from None
    return parse_scenario(raw, path, default_name=path.stem)


# --- the timeline in memory ---------------------------------------------------------------------


def is_unhealthy(config: dict[str, Any]) -> bool:
    return (config["error_rate"] > 0 or config["timeout_rate"] > 0 or config["reset_rate"] > 0
            or config["latency_ms"] >= SLOW_LATENCY_MS)


def badness(config: dict[str, Any]) -> float:
    """How likely a call is to fail (or be slow): the oracle's tie-break when nothing is healthy."""
    slow = 0.5 if config["latency_ms"] >= SLOW_LATENCY_MS else 0.0
    return config["error_rate"] + config["timeout_rate"] + config["reset_rate"] + slow


@dataclass(frozen=True)
class FaultWindow:
    provider: str
    region: str
    start: float
    end: float  # when it became healthy again, or the end of the traffic
    cleared: bool  # False when the traffic ended first
    alternative: bool  # some other provider of the region was healthy all along the window

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "region": self.region, "start": self.start, "end": self.end,
                "cleared": self.cleared, "alternative": self.alternative}


class FaultTimeline:
    """The fault configuration of every provider region over time, as the timeline sets it."""

    def __init__(self, scenario: Scenario):
        self.duration = scenario.traffic.duration
        self.baseline = {**NO_FAULT, **scenario.baseline.given()}
        # (time, provider, region, full configuration from then on), in time order
        self.changes: list[tuple[float, str, str, dict[str, Any]]] = []
        current = {(p, r): dict(self.baseline) for p in PROVIDERS for r in REGIONS}
        for event in sorted(scenario.timeline, key=lambda e: e.at):  # stable: file order at equal times
            for target in event.targets():
                if event.clear:
                    current[target] = dict(self.baseline)
                else:
                    current[target] = {**current[target], **event.fault.given()}  # type: ignore[union-attr]
                self.changes.append((event.at, *target, dict(current[target])))

    def state_at(self, provider: str, region: str, t: float) -> dict[str, Any]:
        state = self.baseline
        for at, p, r, config in self.changes:
            if at > t:
                break
            if p == provider and r == region:
                state = config
        return state

    def healthy_at(self, provider: str, region: str, t: float) -> bool:
        return not is_unhealthy(self.state_at(provider, region, t))

    def _intervals(self, provider: str, region: str) -> list[tuple[float, float, bool]]:
        points = [(0.0, self.baseline)] + [(at, c) for at, p, r, c in self.changes if (p, r) == (provider, region)]
        out: list[tuple[float, float, bool]] = []
        start: float | None = None
        for at, config in points:
            if is_unhealthy(config) and start is None:
                start = at
            elif not is_unhealthy(config) and start is not None:
                if at > start:
                    out.append((start, at, True))
                start = None
        if start is not None and start < self.duration:
            out.append((start, self.duration, False))
        return out

    def windows(self, regions: list[str] | None = None) -> list[FaultWindow]:
        """Maximal stretches in which a provider region is unhealthy, in start order."""
        found = []
        for region in regions or list(REGIONS):
            for provider in PROVIDERS:
                for start, end, cleared in self._intervals(provider, region):
                    others = [q for q in PROVIDERS if q != provider]
                    alternative = any(self._healthy_throughout(q, region, start, end) for q in others)
                    found.append(FaultWindow(provider, region, start, end, cleared, alternative))
        return sorted(found, key=lambda w: (w.start, w.region, w.provider))

    def _healthy_throughout(self, provider: str, region: str, start: float, end: float) -> bool:
        return all(not (s < end and start < e) for s, e, _ in self._intervals(provider, region))

    def has_slow_provider(self) -> bool:
        return any(c["latency_ms"] >= SLOW_LATENCY_MS or c["timeout_rate"] > 0 for _, _, _, c in self.changes)

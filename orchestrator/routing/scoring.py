"""The scoring router: one payment, the routing snapshot, the overrides and the breaker states in;
an ordered list of candidate providers, each with its score and reasons, out.

Pure and fast: frozen values in, frozen values out, no I/O, no clock (the caller passes `now`), no
global randomness (the caller passes a seeded `random.Random`). The whole design, with a worked
example, is in `docs/routing.md`. In short:

1. Filter: the provider needs an enabled row for the payment's region (data residency) that takes
   the payment's currency; an active `disable` override in scope removes it.
2. Score (lower is better)::

       score = error_weight * error_rate
             + latency_weight * max(0, p99_ms - latency_ok_ms) / 1000
             + fee_weight * (fee - cheapest_fee) / cheapest_fee

   `error_rate` and `p99_ms` are our own observations when the window holds at least `min_calls`
   calls; otherwise the error rate is a prior taken from the status page and latency counts 0.
3. Exclude a provider whose breaker is open / forced open, or whose status page says
   `major_outage` while we have too few observations to contradict it, unless nothing else is left.
4. Draw the primary at random with probability `share`, derived from
   `health_weight = exp(-(score - best_score) / temperature)`, plus a small freshness floor, times
   any `weight` overrides; a recovering provider gets a fixed exploration share. The fallbacks
   follow in score order.
5. An active `force` override in scope puts its provider first (alone when `fallback` is false).
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, Iterable, Mapping, Sequence

from orchestrator.routing.regions import region_for_country

# Status-page states (Atlassian Statuspage component states, plus "unknown" before the first poll).
OPERATIONAL: Final = "operational"
DEGRADED_PERFORMANCE: Final = "degraded_performance"
PARTIAL_OUTAGE: Final = "partial_outage"
MAJOR_OUTAGE: Final = "major_outage"
UNKNOWN: Final = "unknown"
STATUS_STATES: Final = frozenset({OPERATIONAL, DEGRADED_PERFORMANCE, PARTIAL_OUTAGE, MAJOR_OUTAGE, UNKNOWN})

# Circuit-breaker states as the resilience layer reports them.
CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"
FORCED_OPEN: Final = "forced_open"
DISABLED: Final = "disabled"  # the breaker is switched off: calls always pass
_BLOCKING_BREAKER_STATES: Final = frozenset({OPEN, FORCED_OPEN})

# Override actions.
FORCE: Final = "force"
DISABLE: Final = "disable"
WEIGHT: Final = "weight"
OVERRIDE_ACTIONS: Final = frozenset({FORCE, DISABLE, WEIGHT})

# Decision reasons.
REASON_SCORE: Final = "score"
REASON_FORCED: Final = "forced"
REASON_ONLY_OPTION: Final = "only_option"
REASON_NO_ROUTE: Final = "no_route"

BreakerView = Mapping[tuple[str, str], str]
"""Circuit state per (provider, region); a missing key means `closed`."""


def _plain(value: object) -> object:
    """A str-valued enum member as its plain value (hashing an enum member differs from its value)."""
    return value.value if isinstance(value, enum.Enum) else value


@dataclass(frozen=True, slots=True)
class ProviderRoute:
    """One routing-table row: what we know of one provider in one region.

    `enabled` means the provider is configured and compliant for this region; a provider without an
    enabled row for the payment's region is never a candidate. `fee_percent` is a percentage
    (2.9 means 2.9 %), `fee_fixed` is in minor units of the payment's currency.
    `observed_error_rate` (provider faults only, never declines, 0..1) and `observed_p99_ms` come
    from our own traffic over the statistics window of `observed_calls` calls; None when unknown.
    `recovering_since` (epoch seconds) is set when the provider turns healthy again on thin evidence
    (its status page returned to operational, too few calls of our own); until our calls show it healthy,
    for at most `recovery_s`, the provider only gets the exploration share.
    """

    provider: str
    region: str
    enabled: bool = True
    currencies: frozenset[str] = frozenset()
    fee_percent: float = 0.0
    fee_fixed: int = 0
    status_page: str = UNKNOWN
    observed_error_rate: float | None = None
    observed_p99_ms: float | None = None
    observed_calls: int = 0
    recovering_since: float | None = None
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        status = _plain(self.status_page)
        if status not in STATUS_STATES:
            raise ValueError(f"unknown status-page state {self.status_page!r}")
        object.__setattr__(self, "status_page", status)
        object.__setattr__(self, "region", _plain(self.region))
        if not isinstance(self.currencies, frozenset):
            object.__setattr__(self, "currencies", frozenset(self.currencies))
        if self.fee_percent < 0 or self.fee_fixed < 0:
            raise ValueError("fees cannot be negative")
        if self.observed_error_rate is not None and not 0.0 <= self.observed_error_rate <= 1.0:
            raise ValueError("observed_error_rate must be within 0..1")

    def fee_for(self, amount: int) -> float:
        """The fee for `amount` minor units, in minor units (not rounded)."""
        return amount * self.fee_percent / 100.0 + self.fee_fixed


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    """The whole routing table, immutable: built once per change and shared by every decision."""

    routes: Mapping[tuple[str, str], ProviderRoute]
    version: int = 0
    updated_at: float = 0.0
    # Derived at construction: enabled rows per region (sorted by provider), and per region the
    # providers that have no enabled row there.
    _by_region: Mapping[str, tuple[ProviderRoute, ...]] = field(init=False, repr=False, compare=False)
    _absent: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _providers: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        routes: dict[tuple[str, str], ProviderRoute] = {}
        for key, row in self.routes.items():
            if (row.provider, row.region) != tuple(_plain(k) for k in key):
                raise ValueError(f"routing row {row.provider}/{row.region} filed under {key!r}")
            routes[(row.provider, row.region)] = row
        providers = tuple(sorted({provider for provider, _ in routes}))
        regions = {region for _, region in routes}
        by_region = {
            region: tuple(
                sorted((r for r in routes.values() if r.region == region and r.enabled), key=lambda r: r.provider)
            )
            for region in regions
        }
        absent = {
            region: tuple(p for p in providers if p not in {r.provider for r in rows})
            for region, rows in by_region.items()
        }
        object.__setattr__(self, "routes", MappingProxyType(routes))
        object.__setattr__(self, "_by_region", MappingProxyType(by_region))
        object.__setattr__(self, "_absent", MappingProxyType(absent))
        object.__setattr__(self, "_providers", providers)

    @classmethod
    def from_routes(
        cls, routes: Iterable[ProviderRoute], *, version: int = 0, updated_at: float = 0.0
    ) -> RoutingSnapshot:
        return cls({(r.provider, r.region): r for r in routes}, version=version, updated_at=updated_at)

    @property
    def providers(self) -> tuple[str, ...]:
        """Every provider named in the table, sorted."""
        return self._providers

    def rows_for(self, region: str) -> tuple[ProviderRoute, ...]:
        """The enabled rows of one region, sorted by provider."""
        return self._by_region.get(region, ())


def with_fresh_recoveries(snapshot: RoutingSnapshot, recovered: Mapping[tuple[str, str], bool],
                          min_calls: int, now: float) -> RoutingSnapshot:
    """The snapshot as one replica sees it after some of its breakers closed again on passed probes.

    The routing table's window still holds the failures that tripped those breakers, but the calls made
    since the close are newer evidence. `recovered` maps each such (provider, region) to whether those
    calls prove it (enough of them, few enough failures). Unproven: the row's observations are dropped
    and it is explored (a small share, `recovering_since = now`) so that proof can come; proven: its
    observations are replaced by a clean record (no errors, `min_calls` calls, latency unknown) and it
    competes at full weight. Without this a provider that is back stays shunned for a whole window."""
    routes = dict(snapshot.routes)
    changed = False
    for key, proven in recovered.items():
        row = routes.get(key)
        if row is None:
            continue
        if proven:
            if row.observed_error_rate == 0.0 and row.observed_calls >= min_calls and row.recovering_since is None:
                continue
            routes[key] = replace(row, observed_error_rate=0.0, observed_p99_ms=None,
                                  observed_calls=max(min_calls, row.observed_calls), recovering_since=None)
        else:
            routes[key] = replace(row, observed_error_rate=None, observed_p99_ms=None, observed_calls=0,
                                  recovering_since=now)
        changed = True
    if not changed:
        return snapshot
    return RoutingSnapshot(routes, version=snapshot.version, updated_at=snapshot.updated_at)


@dataclass(frozen=True, slots=True)
class OverrideScope:
    """Where an override applies; None means any."""

    region: str | None = None
    country: str | None = None
    currency: str | None = None
    merchant_id: str | None = None

    @property
    def specificity(self) -> tuple[bool, bool, bool, bool]:
        """Sort key: merchant beats country beats currency beats region beats any."""
        return (
            self.merchant_id is not None,
            self.country is not None,
            self.currency is not None,
            self.region is not None,
        )


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's routing override (see the contract's admin API).

    `force`: the provider first (alone when `fallback` is false). `disable`: the provider never
    appears. `weight`: the provider's share is multiplied by `weight`. An override stops applying
    when `enabled` is false or once `now >= expires_at`. `created_at` breaks ties between equally
    specific `force` overrides: the newest wins.
    """

    id: str
    action: str
    provider: str
    scope: OverrideScope = OverrideScope()
    weight: float = 1.0
    fallback: bool = True
    enabled: bool = True
    expires_at: float | None = None
    reason: str = ""
    created_at: float = 0.0

    def __post_init__(self) -> None:
        action = _plain(self.action)
        if action not in OVERRIDE_ACTIONS:
            raise ValueError(f"unknown override action {self.action!r}")
        object.__setattr__(self, "action", action)
        if self.weight is None:  # only `weight` overrides carry one; None means "no change"
            object.__setattr__(self, "weight", 1.0)
        if not (self.weight >= 0.0 and math.isfinite(self.weight)):
            raise ValueError("override weight must be a finite number >= 0")

    def is_active(self, now: float) -> bool:
        return self.enabled and (self.expires_at is None or now < self.expires_at)

    def applies_to(self, payment: PaymentFacts, now: float) -> bool:
        """Active, and the payment is within the scope."""
        region = payment.region or region_for_country(payment.country)
        s = self.scope
        return (
            self.is_active(now)
            and (s.region is None or s.region == region)
            and (s.country is None or s.country == payment.country)
            and (s.currency is None or s.currency == payment.currency)
            and (s.merchant_id is None or s.merchant_id == payment.merchant_id)
        )


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """What routing needs to know of a payment. `region` defaults to the country's region."""

    amount: int
    currency: str
    country: str
    region: str | None = None
    merchant_id: str | None = None


def _default_status_prior() -> Mapping[str, float]:
    return MappingProxyType(
        {
            OPERATIONAL: 0.0,
            UNKNOWN: 0.0,
            DEGRADED_PERFORMANCE: 0.02,
            PARTIAL_OUTAGE: 0.10,
            MAJOR_OUTAGE: 0.50,
        }
    )


@dataclass(frozen=True, slots=True)
class RoutingWeights:
    """Routing configuration. Defaults are tuned so that the cheapest healthy provider takes the
    overwhelming majority of traffic (see `docs/routing.md` for the fee bound they give)."""

    error_weight: float = 10.0  # score per unit of error rate: 1 point of errors weighs like 10 % higher fees
    latency_weight: float = 0.2  # score per second of p99 above latency_ok_ms
    latency_ok_ms: float = 300.0  # p99 below this is not penalised
    fee_weight: float = 1.0  # score per unit of relative fee excess over the cheapest candidate
    temperature: float = 0.005  # health_weight = exp(-(score - best) / temperature)
    min_calls: int = 20  # fewer observed calls than this: observations are "too few"
    exploration_share: float = 0.05  # primary share of a recovering (or half-open) provider
    max_exploration_total: float = 0.5  # cap on the sum of exploration shares
    freshness_share: float = 0.01  # floor share of each healthy provider, to keep statistics fresh
    unhealthy_error_rate: float = 0.10  # above this error rate: "unhealthy", no freshness floor
    recovery_s: float = 60.0  # how long after `recovering_since` a provider stays in exploration
    status_error_prior: Mapping[str, float] = field(default_factory=_default_status_prior)

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError("temperature must be > 0")
        for name in ("exploration_share", "max_exploration_total", "freshness_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be within [0, 1)")
        if min(self.error_weight, self.latency_weight, self.fee_weight) < 0:
            raise ValueError("score weights cannot be negative")
        if not isinstance(self.status_error_prior, MappingProxyType):
            object.__setattr__(self, "status_error_prior", MappingProxyType(dict(self.status_error_prior)))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One provider in a decision. `share` is its probability of having been drawn as the primary
    (0 for a provider that can only be a fallback); `health_weight` the unnormalised draw weight."""

    provider: str
    score: float
    health_weight: float
    share: float
    fee_minor: int
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where a payment goes: candidates in the order they are to be tried."""

    region: str | None
    reason: str  # "score" | "forced" | "only_option" | "no_route"
    candidates: tuple[Candidate, ...]
    overrides_applied: tuple[str, ...]
    excluded: Mapping[str, str]  # provider -> why it is not a candidate

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(c.provider for c in self.candidates)

    @property
    def primary(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready rendering (routing preview, traces)."""
        return {
            "region": self.region,
            "reason": self.reason,
            "overrides": list(self.overrides_applied),
            "candidates": [
                {
                    "provider": c.provider,
                    "score": _sig(c.score),
                    "health_weight": _sig(c.health_weight),
                    "share": _sig(c.share),
                    "fee_minor": c.fee_minor,
                    "reasons": list(c.reasons),
                }
                for c in self.candidates
            ],
            "excluded": dict(self.excluded),
        }


def _sig(x: float) -> float:
    """Six significant digits: readable, and tiny weights stay distinguishable from zero."""
    return float(f"{x:.6g}")


_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})


class _Row:
    """Working state for one eligible provider during a decision (not part of the API)."""

    __slots__ = ("route", "provider", "fee", "error", "score", "blocked", "exploring", "mult", "weight", "share",
                 "reasons", "observed")  # fmt: skip

    def __init__(self, route: ProviderRoute, fee: float) -> None:
        self.route = route
        self.provider = route.provider
        self.fee = fee
        self.mult = 1.0
        self.weight = 0.0
        self.share = 0.0


def _no_route(region: str | None, excluded: dict[str, str], applied: Sequence[str] = ()) -> RouteDecision:
    frozen = MappingProxyType(excluded) if excluded else _EMPTY
    return RouteDecision(region, REASON_NO_ROUTE, (), tuple(applied), frozen)


def decide(
    payment: PaymentFacts,
    snapshot: RoutingSnapshot,
    overrides: Sequence[Override],
    breakers: BreakerView,
    weights: RoutingWeights,
    rng: random.Random,
    now: float,
) -> RouteDecision:
    """Rank the providers for one payment. Deterministic given the state of `rng`, which is
    consumed (one `random()` call) only when more than one provider can be drawn as primary."""
    region = payment.region or region_for_country(payment.country)
    excluded: dict[str, str] = {}
    if region is None:
        for provider in snapshot._providers:
            excluded[provider] = "region"
        return _no_route(None, excluded)

    for provider in snapshot._absent.get(region, snapshot._providers):
        excluded[provider] = "region"
    currency = payment.currency
    compliant: list[ProviderRoute] = []
    for route in snapshot._by_region.get(region, ()):
        if currency in route.currencies:
            compliant.append(route)
        else:
            excluded[route.provider] = "currency"

    # Overrides in scope, in the order given.
    matched: list[Override] = []
    if overrides:
        country = payment.country
        merchant = payment.merchant_id
        for o in overrides:
            if not o.enabled:
                continue
            expires = o.expires_at
            if expires is not None and now >= expires:
                continue
            s = o.scope
            if (
                (s.region is not None and s.region != region)
                or (s.country is not None and s.country != country)
                or (s.currency is not None and s.currency != currency)
                or (s.merchant_id is not None and s.merchant_id != merchant)
            ):
                continue
            matched.append(o)

    applied: set[str] = set()
    disabled: set[str] = set()
    for o in matched:
        if o.action == DISABLE:
            disabled.add(o.provider)

    rows: dict[str, _Row] = {}
    amount = payment.amount
    for route in compliant:
        provider = route.provider
        if provider in disabled:
            excluded[provider] = "disabled_override"
            continue
        rows[provider] = _Row(route, amount * route.fee_percent / 100.0 + route.fee_fixed)
    if matched:
        for o in matched:
            if o.action == DISABLE and o.provider in excluded and excluded[o.provider] == "disabled_override":
                applied.add(o.id)
    if not rows:
        return _no_route(region, excluded, [o.id for o in matched if o.id in applied])

    forced: Override | None = None
    if matched:
        forced_key: tuple = ()
        for o in matched:
            action = o.action
            if action == WEIGHT:
                row = rows.get(o.provider)
                if row is not None:
                    row.mult *= o.weight
                    applied.add(o.id)
            elif action == FORCE and o.provider in rows:
                key = (o.scope.specificity, o.created_at, o.id)
                if forced is None or key > forced_key:
                    forced, forced_key = o, key
        if forced is not None:
            applied.add(forced.id)

    # Score every eligible provider.
    w_err = weights.error_weight
    w_lat = weights.latency_weight / 1000.0
    lat_ok = weights.latency_ok_ms
    w_fee = weights.fee_weight
    min_calls = weights.min_calls
    prior = weights.status_error_prior
    recovery_s = weights.recovery_s
    unhealthy = weights.unhealthy_error_rate
    fee_min = min(r.fee for r in rows.values())
    fee_scale = fee_min if fee_min > 1.0 else 1.0
    healthy: list[_Row] = []
    blocked: list[_Row] = []
    for row in rows.values():
        route = row.route
        status = route.status_page
        reasons: list[str] = []
        if status != OPERATIONAL and status != UNKNOWN:
            reasons.append("status:" + status)
        enough = route.observed_calls >= min_calls
        observed_error = route.observed_error_rate if enough else None
        if observed_error is not None:
            error = observed_error
            reasons.append("observed")
        else:
            error = prior.get(status, 0.0)
        score = w_err * error + w_fee * (row.fee - fee_min) / fee_scale
        if enough:
            p99 = route.observed_p99_ms
            if p99 is not None and p99 > lat_ok:
                score += w_lat * (p99 - lat_ok)
                reasons.append("slow")
        if error > unhealthy:
            reasons.append("unhealthy")
        state = breakers.get((row.provider, region), CLOSED) if breakers else CLOSED
        block: str | None = None
        if state in _BLOCKING_BREAKER_STATES:
            block = "breaker:" + state
        elif state != CLOSED:
            reasons.append("breaker:" + state)
        if block is None and status == MAJOR_OUTAGE and observed_error is None:
            block = "status:major_outage"
        if block is not None and block not in reasons:
            reasons.append(block)
        exploring = state == HALF_OPEN or (
            route.recovering_since is not None and now - route.recovering_since < recovery_s
        )
        if exploring:
            reasons.append("exploration")
        if row.mult != 1.0:
            reasons.append(f"weight:x{row.mult:g}")
        row.error = error
        row.score = score
        row.blocked = block
        row.exploring = exploring
        row.reasons = reasons
        (healthy if block is None else blocked).append(row)

    if healthy:
        pool = healthy
        for row in blocked:
            if forced is None or row.provider != forced.provider:
                excluded[row.provider] = row.blocked  # type: ignore[assignment]
    else:
        pool = blocked
        for row in blocked:
            row.reasons.append("last_resort")
    pool.sort(key=_order)

    # Cheapest healthy: the lowest fee among unblocked, settled (not exploring) providers whose
    # error rate is within `unhealthy_error_rate`.
    cheapest: _Row | None = None
    for row in healthy:
        if row.error <= unhealthy and not row.exploring and (cheapest is None or row.fee < cheapest.fee):
            cheapest = row
    if cheapest is not None:
        cheapest.reasons.append("cheapest healthy")

    _shares(pool, weights)

    if forced is not None:
        first = rows[forced.provider]
        first.reasons.insert(0, "forced")
        if first.blocked is not None and first not in pool:
            gap = first.score - pool[0].score if pool else 0.0
            first.weight = math.exp(-max(gap, 0.0) / weights.temperature) * first.mult
        first.share = 1.0
        ordered = [first]
        if forced.fallback:
            for row in pool:
                if row is not first:
                    row.share = 0.0
                    ordered.append(row)
        else:
            for row in pool:
                if row is not first:
                    excluded[row.provider] = "forced_alone"
        reason = REASON_FORCED
    else:
        if len(pool) > 1:
            u = rng.random()
            primary = pool[-1]
            acc = 0.0
            for row in pool:
                acc += row.share
                if u < acc and row.share > 0.0:
                    primary = row
                    break
            else:
                for row in reversed(pool):
                    if row.share > 0.0:
                        primary = row
                        break
            ordered = [primary] + [row for row in pool if row is not primary]
            reason = REASON_SCORE
        else:
            ordered = list(pool)
            reason = REASON_ONLY_OPTION
    for row in ordered[1:]:
        row.reasons.append("fallback")

    candidates = tuple(
        Candidate(row.provider, row.score, row.weight, row.share, int(row.fee + 0.5), tuple(row.reasons))
        for row in ordered
    )
    return RouteDecision(
        region,
        reason,
        candidates,
        tuple(o.id for o in matched if o.id in applied),
        MappingProxyType(excluded) if excluded else _EMPTY,
    )


def _order(row: _Row) -> tuple[float, float, str]:
    return (row.score, row.fee, row.provider)


def _shares(pool: list[_Row], weights: RoutingWeights) -> None:
    """Set `weight` (health weight, times overrides) and `share` (primary probability) on each row
    of `pool`, which is sorted by score. See docs/routing.md, "The draw"."""
    temperature = weights.temperature
    normal = [row for row in pool if not row.exploring]
    exploring = [row for row in pool if row.exploring]
    best = pool[0].score  # pool is sorted: every health weight is at most 1
    for row in pool:
        row.weight = math.exp(-(row.score - best) / temperature) * row.mult

    if not normal:
        total = sum(row.weight for row in exploring)
        for row in exploring:
            row.share = row.weight / total if total > 0 else 1.0 / len(exploring)
        return

    # Exploration: a fixed share per recovering provider, capped in total.
    explore_total = 0.0
    if exploring:
        epsilon = weights.exploration_share
        for row in exploring:
            row.share = epsilon * row.mult
            explore_total += row.share
        cap = weights.max_exploration_total
        if explore_total > cap:
            for row in exploring:
                row.share *= cap / explore_total
            explore_total = cap

    # The rest: softmax of health, mixed with a freshness floor, then times the weight overrides.
    unhealthy = weights.unhealthy_error_rate
    floor_rows = [row for row in normal if row.error <= unhealthy]
    floor = weights.freshness_share
    if floor_rows and floor * len(floor_rows) > 0.5:
        floor = 0.5 / len(floor_rows)
    best = normal[0].score
    health = [math.exp(-(row.score - best) / temperature) for row in normal]
    health_total = sum(health)  # >= 1: the best normal row has health 1
    keep = 1.0 - floor * len(floor_rows)
    base = [keep * h / health_total for h in health]
    for i, row in enumerate(normal):
        if row.error <= unhealthy:
            base[i] += floor
    raw = [b * row.mult for b, row in zip(base, normal)]
    raw_total = sum(raw)
    if raw_total <= 0.0:  # every normal provider weighted to zero: ignore the multipliers
        if explore_total > 0.0:
            scale = 1.0 / explore_total
            for row in exploring:
                row.share *= scale
            for row in normal:
                row.share = 0.0
            return
        raw, raw_total = base, sum(base)
    remaining = 1.0 - explore_total
    for r, row in zip(raw, normal):
        row.share = remaining * r / raw_total

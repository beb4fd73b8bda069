"""Prometheus metrics of one app, in its own registry (several apps may live in one process).

Event metrics (counters, histograms) are fed by the code that decides, through label children bound
once per provider and region at start, so the hot path does a dict lookup and an increment. State
metrics (breaker states, concurrency limits, routing-table age, overrides, load shed) are read from
the live objects at scrape time by `StateCollector`, so they cost nothing per payment.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from orchestrator.resilience.breaker import BreakerState

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "StateCollector"]

# Payments are answered within a 10 s deadline; most within tens of milliseconds.
PAYMENT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0)
PROVIDER_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("succeeded", "hard_decline", "soft_decline", "transient", "ambiguous", "config_error")
PAYMENT_STATUSES = ("succeeded", "failed", "processing")
BREAKER_STATES = tuple(state.value for state in BreakerState)
NO_PROVIDER = "none"  # the provider label of a payment no provider took (no route, all unavailable)


class RouteMetrics:
    """The label children of one provider and region, bound once."""

    __slots__ = ("retries", "replays", "request_duration", "payments", "failovers", "skips", "refunds")

    def __init__(self, metrics: "Metrics", provider: str, region: str) -> None:
        self.retries = metrics.retry_attempts.labels(provider, region)
        self.replays = metrics.replay_attempts.labels(provider, region)
        self.request_duration = {o: metrics.provider_request_duration.labels(provider, region, o) for o in OUTCOMES}
        self.payments = {s: metrics.payments.labels(provider, region, s) for s in PAYMENT_STATUSES}
        self.failovers: dict[str, Any] = {}
        self.skips: dict[str, Any] = {}
        self.refunds: dict[str, Any] = {}


class Metrics:
    def __init__(self, routes: Iterable[tuple[str, str]] = ()) -> None:
        disable_created_metrics()  # no `_created` series beside every counter: half the scrape
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.retry_attempts = Counter(
            "orchestrator_retry_attempts_total", "Retries at the same provider after a transient failure.",
            ["provider", "region"], registry=r)
        self.replay_attempts = Counter(
            "orchestrator_replay_attempts_total",
            "Replays of an ambiguous charge under its own idempotency key, at the same provider.",
            ["provider", "region"], registry=r)
        self.failovers = Counter(
            "orchestrator_failover_invocations_total",
            "Moves to the next candidate after a failed attempt, by the provider left and why.",
            ["from_provider", "region", "reason"], registry=r)
        self.skips = Counter(
            "orchestrator_candidate_skips_total",
            "Candidates passed over without a call: breaker open or concurrency limit reached.",
            ["provider", "region", "reason"], registry=r)
        self.payments = Counter(
            "orchestrator_payments_total", "Payments answered, by the provider that took them, region and status.",
            ["provider", "region", "status"], registry=r)
        self.payment_duration = Histogram(
            "orchestrator_payment_duration_seconds",
            "Time to answer a payment, from routing to the final write, by region and status.",
            ["region", "status"], buckets=PAYMENT_BUCKETS, registry=r)
        self.provider_request_duration = Histogram(
            "orchestrator_provider_request_duration_seconds",
            "Duration of provider charge calls, by provider, region and classified outcome.",
            ["provider", "region", "outcome"], buckets=PROVIDER_BUCKETS, registry=r)
        self.breaker_transitions = Counter(
            "orchestrator_circuit_breaker_transitions_total", "Circuit breaker state changes.",
            ["provider", "region", "from_state", "to_state"], registry=r)
        self.idempotent_replays = Counter(
            "orchestrator_idempotent_replays_total",
            "Requests answered from an earlier one with the same Idempotency-Key.", ["resource"], registry=r)
        self.refunds = Counter(
            "orchestrator_refunds_total", "Refunds answered, by provider, region and status.",
            ["provider", "region", "status"], registry=r)
        self.reconciliations = Counter(
            "orchestrator_reconciliations_total",
            "Processing payments examined by reconciliation, by what it found.", ["result"], registry=r)
        self._routes: dict[tuple[str, str], RouteMetrics] = {}
        self._payment_duration: dict[tuple[str, str], Any] = {}
        for provider, region in routes:
            self.route(provider, region)

    def route(self, provider: str, region: str) -> RouteMetrics:
        bound = self._routes.get((provider, region))
        if bound is None:
            bound = self._routes[(provider, region)] = RouteMetrics(self, provider, region)
        return bound

    def failover(self, provider: str, region: str, reason: str) -> None:
        _child(self.route(provider, region).failovers, reason, self.failovers, provider, region, reason).inc()

    def skip(self, provider: str, region: str, reason: str) -> None:
        _child(self.route(provider, region).skips, reason, self.skips, provider, region, reason).inc()

    def payment(self, provider: str | None, region: str, status: str, duration_s: float) -> None:
        self.route(provider or NO_PROVIDER, region).payments[status].inc()
        _child(self._payment_duration, (region, status), self.payment_duration, region, status).observe(duration_s)

    def refund(self, provider: str, region: str, status: str) -> None:
        _child(self.route(provider, region).refunds, status, self.refunds, provider, region, status).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


_STATE_FAMILIES: dict[str, tuple[type, str, tuple[str, ...]]] = {
    "orchestrator_circuit_breaker_state": (
        GaugeMetricFamily, "1 for the current state of each circuit breaker, 0 for the others.",
        ("provider", "region", "state")),
    "orchestrator_concurrency_limit": (
        GaugeMetricFamily, "Adaptive concurrency limit of calls to a provider in a region.", ("provider", "region")),
    "orchestrator_provider_calls_in_flight": (
        GaugeMetricFamily, "Calls to a provider in a region now in flight.", ("provider", "region")),
    "orchestrator_routing_table_age_seconds": (
        GaugeMetricFamily, "Age of the newest health row in this replica's routing snapshot.", ()),
    "orchestrator_routing_snapshot_age_seconds": (
        GaugeMetricFamily, "Time since this replica last checked its routing snapshot against the database.", ()),
    "orchestrator_routing_weight": (
        GaugeMetricFamily, "Share of traffic a reference payment in the region would send each provider now.",
        ("provider", "region")),
    "orchestrator_overrides_active": (GaugeMetricFamily, "Routing overrides that apply now.", ()),
    "orchestrator_payments_in_flight": (GaugeMetricFamily, "Payment requests being processed by this replica.", ()),
    "orchestrator_load_shed": (
        CounterMetricFamily, "Payment requests refused with 503 because too many were in flight.", ()),
    "orchestrator_health_poll_leader": (GaugeMetricFamily, "1 when this replica polls the status pages.", ()),
}


def _child(cache: dict, key: Any, family: Any, *labels: str) -> Any:
    """The labelled child of `family`, bound once and kept in `cache` under `key`: `labels()` costs a
    lock and a tuple lookup on every call, which the payment path need not pay."""
    child = cache.get(key)
    if child is None:
        child = cache[key] = family.labels(*labels)
    return child


def _family(name: str) -> Any:
    kind, help_text, labels = _STATE_FAMILIES[name]
    return kind(name, help_text, labels=labels)


class StateCollector:
    """Metrics read from the live objects of an app at scrape time. `source()` returns the app's state
    once its lifespan has started, else None."""

    def __init__(self, source: Callable[[], Any], routes: Callable[[], Iterable[tuple[str, str]]], gate: Any) -> None:
        self.source = source
        self.routes = routes
        self.gate = gate

    def describe(self) -> list[Metric]:
        return [_family(name) for name in _STATE_FAMILIES]

    def collect(self) -> Iterable[Metric]:
        shed = _family("orchestrator_load_shed")
        shed.add_metric([], float(self.gate.shed))
        in_flight = _family("orchestrator_payments_in_flight")
        in_flight.add_metric([], float(self.gate.in_flight))
        yield from (shed, in_flight)
        state = self.source()
        if state is None:
            return
        if getattr(state, "guards", None) is not None:
            yield from self._guards(state.guards)
        if getattr(state, "routing_state", None) is not None:
            yield from self._routing(state)

    def _guards(self, guards: Any) -> Iterable[Metric]:
        breaker = _family("orchestrator_circuit_breaker_state")
        limit = _family("orchestrator_concurrency_limit")
        in_flight = _family("orchestrator_provider_calls_in_flight")
        known = {(g.provider, g.region): g for g in guards.all()}
        initial_limit = float(guards.policy.concurrency.initial_limit)
        for provider, region in dict.fromkeys([*self.routes(), *known]):
            guard = known.get((provider, region))  # none yet: never called, closed at its initial limit
            current = guard.breaker.state.value if guard is not None else BreakerState.CLOSED.value
            for name in BREAKER_STATES:
                breaker.add_metric([provider, region, name], 1.0 if name == current else 0.0)
            limit.add_metric([provider, region], float(guard.limiter.limit) if guard is not None else initial_limit)
            in_flight.add_metric([provider, region], float(guard.limiter.in_flight) if guard is not None else 0.0)
        yield from (breaker, limit, in_flight)

    def _routing(self, state: Any) -> Iterable[Metric]:
        routing_state = state.routing_state
        now = time.time()
        table_updated = max((r.updated_at for r in routing_state.snapshot.routes.values()), default=0.0)
        age = _family("orchestrator_routing_table_age_seconds")
        age.add_metric([], now - table_updated if table_updated else math.inf)
        loaded = _family("orchestrator_routing_snapshot_age_seconds")
        loaded.add_metric([], now - routing_state.loaded_at if routing_state.loaded_at else math.inf)
        active = _family("orchestrator_overrides_active")
        active.add_metric([], float(sum(1 for o in routing_state.overrides
                                        if o.enabled and (o.expires_at is None or o.expires_at > now))))
        yield from (age, loaded, active)
        if getattr(state, "routing", None) is not None:
            weight = _family("orchestrator_routing_weight")
            for row in state.routing.table():
                weight.add_metric([row["provider"], row["region"]], float(row["weight"]))
            yield weight
        if getattr(state, "lease", None) is not None:
            leader = _family("orchestrator_health_poll_leader")
            leader.add_metric([], 1.0 if state.lease.is_leader else 0.0)
            yield leader

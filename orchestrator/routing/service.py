"""Routing decisions for payments, previews and the routing table, from the in-memory state."""

from __future__ import annotations

import random
import time
from typing import Any, Sequence

from orchestrator.config import ProviderTable
from orchestrator.resilience.guards import Guards
from orchestrator.routing.scoring import (
    Override,
    PaymentFacts,
    RouteDecision,
    RoutingSnapshot,
    RoutingWeights,
    decide,
    with_fresh_recoveries,
)
from orchestrator.routing.state import RoutingState

# The routing table shows scores for a payment of this size in each region's main currency.
REFERENCE_PAYMENT = {"EU": ("EUR", "DE"), "US": ("USD", "US"), "APAC": ("AUD", "AU")}
REFERENCE_AMOUNT = 10_000


def decision_to_dict(decision: RouteDecision) -> dict[str, Any]:
    return {
        "region": decision.region,
        "reason": decision.reason,
        "candidates": [{"provider": c.provider, "score": round(c.score, 6), "health_weight": round(c.health_weight, 6),
                        "share": round(c.share, 6), "fee": c.fee_minor, "reasons": list(c.reasons)}
                       for c in decision.candidates],
        "overrides_applied": list(decision.overrides_applied),
        "excluded": dict(decision.excluded),
    }


class RoutingService:
    def __init__(self, state: RoutingState, guards: Guards, providers: ProviderTable, weights: RoutingWeights,
                 rng: random.Random | None = None, *, observation_window_s: float = 60.0) -> None:
        self.state = state
        self.guards = guards
        self.providers = providers
        self.weights = weights
        self.rng = rng or random.Random()
        self.observation_window_s = observation_window_s
        self._seen: tuple[RoutingSnapshot, dict] | None = None
        self._adjusted: RoutingSnapshot | None = None

    def snapshot(self) -> RoutingSnapshot:
        """The shared snapshot, with this replica's fresh breaker recoveries applied (cached per change)."""
        snapshot = self.state.snapshot
        recovered = self.guards.recovered_within(self.observation_window_s, self.weights.unhealthy_error_rate)
        if not recovered:
            return snapshot
        seen = self._seen
        if seen is None or seen[0] is not snapshot or seen[1] != recovered:
            self._adjusted = with_fresh_recoveries(snapshot, recovered, self.weights.min_calls, time.time())
            self._seen = (snapshot, recovered)
        return self._adjusted  # type: ignore[return-value]

    def decide(self, payment: PaymentFacts, extra_overrides: Sequence[Override] = (), *,
               rng: random.Random | None = None) -> RouteDecision:
        overrides = tuple(self.state.overrides) + tuple(extra_overrides)
        return decide(payment, self.snapshot(), overrides, self.guards.breaker_states(), self.weights,
                      rng or self.rng, time.time())

    def preview(self, payment: PaymentFacts, extra_overrides: Sequence[Override]) -> RouteDecision:
        """The decision without a draw: candidates by share (most likely primary first), then score."""
        decision = self.decide(payment, extra_overrides, rng=random.Random(0))
        if decision.reason == "forced":
            return decision
        ordered = tuple(sorted(decision.candidates, key=lambda c: (-c.share, c.score)))
        return RouteDecision(region=decision.region, reason=decision.reason, candidates=ordered,
                             overrides_applied=decision.overrides_applied, excluded=decision.excluded)

    def table(self) -> list[dict[str, Any]]:
        snapshot = self.state.snapshot
        breakers = self.guards.breaker_states()
        scored: dict[tuple[str, str], Any] = {}
        for region, (currency, country) in REFERENCE_PAYMENT.items():
            decision = self.decide(PaymentFacts(amount=REFERENCE_AMOUNT, currency=currency, country=country,
                                                region=region), rng=random.Random(0))
            for candidate in decision.candidates:
                scored[(candidate.provider, region)] = candidate
        rows = []
        for (provider, region), route in sorted(snapshot.routes.items()):
            candidate = scored.get((provider, region))
            rows.append({
                "provider": provider, "region": region, "status_page": route.status_page,
                "error_rate": route.observed_error_rate, "p99_latency_ms": route.observed_p99_ms,
                "calls": route.observed_calls,
                "fee": {"percent": route.fee_percent, "fixed": route.fee_fixed},
                "compliance": {"region": region, "currencies": sorted(route.currencies)},
                "circuit_state": breakers.get((provider, region), "closed"),
                "weight": round(candidate.share, 6) if candidate else 0.0,
                "score": round(candidate.score, 6) if candidate else None,
                "recovering_since": route.recovering_since,
                "updated_at": route.updated_at or None,
            })
        return rows

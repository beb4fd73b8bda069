"""The seeded traffic of a scenario, computed once and replayed identically through every router."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from orchestrator.gauntlet.scenario import Scenario


@dataclass(frozen=True, slots=True)
class PlannedPayment:
    n: int
    at: float  # seconds after the start of the traffic
    country: str
    currency: str
    region: str
    amount: int  # minor units
    token: str


def plan_traffic(scenario: Scenario, seed: int) -> list[PlannedPayment]:
    """Poisson arrivals at `rate` over `duration`; market, amount and token drawn by their weights.

    The same scenario and seed give the same list, whatever the router."""
    traffic = scenario.traffic
    rng = random.Random(f"{scenario.name}:{seed}")
    markets = traffic.markets
    market_weights = [m.weight for m in markets]
    tokens = list(traffic.tokens)
    token_weights = [traffic.tokens[t] for t in tokens]
    low, high = math.log(traffic.amounts.min), math.log(traffic.amounts.max)
    planned: list[PlannedPayment] = []
    t = rng.expovariate(traffic.rate)
    while t < traffic.duration:
        market = rng.choices(markets, market_weights)[0]
        amount = int(round(math.exp(rng.uniform(low, high))))
        amount = min(max(amount, traffic.amounts.min), traffic.amounts.max)
        token = rng.choices(tokens, token_weights)[0]
        planned.append(PlannedPayment(len(planned), round(t, 6), market.country, market.currency, market.region,
                                      amount, token))
        t += rng.expovariate(traffic.rate)
    return planned

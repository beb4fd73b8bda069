"""The demo's scripted incident, and its steady traffic, scaled to the demo's duration."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# (country, currency, weight): most traffic in the EU, where the incident happens.
MARKETS: tuple[tuple[str, str, float], ...] = (
    ("DE", "EUR", 3.0), ("FR", "EUR", 2.0), ("NL", "EUR", 1.0), ("GB", "GBP", 1.0),
    ("US", "USD", 3.0), ("AU", "AUD", 1.0), ("SG", "SGD", 0.5),
)
TOKENS: tuple[tuple[str, float], ...] = (
    ("pm_card_visa", 95.0), ("pm_card_declined", 2.0), ("pm_card_insufficient_funds", 1.5),
    ("pm_card_processing_error", 1.5),
)
OVERRIDE_REASON = "Stripe EU incident: checkout errors (demo)"


@dataclass(frozen=True)
class Step:
    at: float  # seconds after the start of the traffic
    kind: str  # fault | override | remove_override
    title: str  # what the view shows when it happens
    fault: dict[str, Any] = field(default_factory=dict)  # for `fault`: the sandbox fault body for Stripe EU
    expires_after_s: float = 0.0  # for `override`


def incident(duration_s: float) -> list[Step]:
    """Stripe EU fails while its status page says operational; the page catches up; an operator
    disables Stripe in the EU; the fault clears; the override is removed. At fixed fractions of the
    duration, so a 15 s demo tells the same story as a one-minute one."""
    d = duration_s
    return [
        Step(0.12 * d, "fault", "Stripe EU starts failing: 90% of its charges answer 503; its status page "
             "still says operational", {"error_rate": 0.9, "error_status": 503, "status_page": "operational"}),
        Step(0.28 * d, "fault", "Stripe's status page catches up: EU major outage",
             {"status_page": "major_outage"}),
        Step(0.36 * d, "override", "An operator disables Stripe in the EU (override with a reason)",
             expires_after_s=0.4 * d),
        Step(0.52 * d, "fault", "The fault clears; Stripe's status page says operational again",
             {"error_rate": 0.0, "status_page": "operational"}),
        Step(0.60 * d, "remove_override", "The operator removes the override: Stripe EU may take traffic again"),
    ]


@dataclass(frozen=True, slots=True)
class DemoPayment:
    n: int
    at: float
    country: str
    currency: str
    amount: int
    token: str


def traffic(duration_s: float, rate: float, seed: int) -> list[DemoPayment]:
    """Evenly spaced payments (open loop at `rate`), market, amount and token drawn from the seed."""
    rng = random.Random(seed)
    count = max(1, int(duration_s * rate))
    countries = [m[:2] for m in MARKETS]
    market_weights = [m[2] for m in MARKETS]
    tokens = [t for t, _ in TOKENS]
    token_weights = [w for _, w in TOKENS]
    planned = []
    for n in range(count):
        country, currency = rng.choices(countries, market_weights)[0]
        amount = rng.choice((499, 990, 1099, 1500, 2500, 4999, 7900, 12000))
        planned.append(DemoPayment(n, n / rate, country, currency, amount, rng.choices(tokens, token_weights)[0]))
    return planned

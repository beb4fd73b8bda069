"""Routing decision latency, in process.

A realistic snapshot (3 providers x 3 regions, fees from the default provider table, mixed health),
20 overrides of mixed scope and action (some expired, some disabled), a few thousand payments of
mixed region, currency and merchant; every `decide` call is timed with `perf_counter_ns`.

    python bench/bench_routing.py [--decisions 100000] [--seed 7]

Goal (issue 4): p50 <= 20 us, p99 <= 100 us per decision.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.routing.scoring import (  # noqa: E402
    Override,
    OverrideScope,
    PaymentFacts,
    ProviderRoute,
    RoutingSnapshot,
    RoutingWeights,
    decide,
)

NOW = 1_800_000_000.0
ALL = frozenset("EUR GBP CHF SEK DKK NOK PLN CZK HUF USD AUD NZD JPY SGD HKD".split())
BRAINTREE = frozenset({"EUR", "GBP", "USD", "AUD", "NZD", "SGD", "HKD"})
FEES = {
    "stripe": {"EU": (1.4, 20), "US": (2.9, 30), "APAC": (2.9, 30)},
    "adyen": {"EU": (1.6, 25), "US": (3.0, 30), "APAC": (3.0, 30)},
    "braintree": {"EU": (1.9, 30), "US": (3.1, 30), "APAC": (3.2, 30)},
}
COUNTRIES = {
    "EU": [("DE", "EUR"), ("FR", "EUR"), ("GB", "GBP"), ("CH", "CHF"), ("SE", "SEK"), ("PL", "PLN"), ("NL", "EUR")],
    "US": [("US", "USD")],
    "APAC": [("AU", "AUD"), ("JP", "JPY"), ("SG", "SGD"), ("NZ", "NZD"), ("HK", "HKD")],
}
MERCHANTS = [f"mer_{i:03d}" for i in range(50)]


def snapshot() -> RoutingSnapshot:
    rows = []
    health = {
        ("stripe", "EU"): dict(status_page="operational", observed_error_rate=0.12, observed_p99_ms=450.0),
        ("adyen", "APAC"): dict(status_page="degraded_performance", observed_error_rate=0.01),
        ("braintree", "US"): dict(status_page="major_outage", observed_error_rate=None, observed_calls=3),
    }
    for provider, regions in FEES.items():
        for region, (percent, fixed) in regions.items():
            fields = dict(
                status_page="operational", observed_error_rate=0.002, observed_p99_ms=220.0, observed_calls=500
            )
            fields.update(health.get((provider, region), {}))
            rows.append(
                ProviderRoute(
                    provider,
                    region,
                    currencies=BRAINTREE if provider == "braintree" else ALL,
                    fee_percent=percent,
                    fee_fixed=fixed,
                    recovering_since=NOW - 10 if (provider, region) == ("adyen", "US") else None,
                    **fields,
                )
            )
    return RoutingSnapshot.from_routes(rows, version=1, updated_at=NOW)


def overrides() -> list[Override]:
    rng = random.Random(3)
    scopes = [
        OverrideScope(region="EU"),
        OverrideScope(country="DE"),
        OverrideScope(currency="GBP"),
        OverrideScope(merchant_id="mer_007"),
        OverrideScope(region="APAC", currency="JPY"),
        OverrideScope(),
        OverrideScope(region="US", merchant_id="mer_011"),
    ]
    result = []
    for i in range(20):
        action = ("weight", "weight", "disable", "force")[i % 4]
        expires = None if i % 3 else (NOW - 60 if i % 2 else NOW + 3600)  # some expired
        result.append(
            Override(
                id=f"ovr_{i:02d}",
                action=action,
                provider=rng.choice(["stripe", "adyen", "braintree"]),
                scope=scopes[i % len(scopes)] if i % 4 != 3 else OverrideScope(merchant_id=f"mer_{i:03d}"),
                weight=rng.choice([0.5, 2.0, 3.0]),
                fallback=bool(i % 2),
                enabled=i != 17,
                expires_at=expires,
                reason=f"bench override {i}",
                created_at=NOW - 1000 + i,
            )
        )
    return result


def payments(n: int, rng: random.Random) -> list[PaymentFacts]:
    regions = ["EU"] * 5 + ["US"] * 3 + ["APAC"] * 2
    out = []
    for _ in range(n):
        country, currency = rng.choice(COUNTRIES[rng.choice(regions)])
        out.append(
            PaymentFacts(
                amount=rng.choice([199, 1099, 4999, 25_000, 129_900]),
                currency=currency,
                country=country,
                merchant_id=rng.choice(MERCHANTS),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--payments", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    snap, ovr, weights = snapshot(), overrides(), RoutingWeights()
    breakers = {("stripe", "EU"): "half_open", ("adyen", "EU"): "closed", ("braintree", "APAC"): "open"}
    rng = random.Random(args.seed)
    batch = payments(args.payments, rng)
    for p in batch[:2000]:  # warm up
        decide(p, snap, ovr, breakers, weights, rng, NOW)

    timings = [0] * args.decisions
    primaries: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for i in range(args.decisions):
            p = batch[i % len(batch)]
            t0 = clock()
            d = decide(p, snap, ovr, breakers, weights, rng, NOW)
            timings[i] = clock() - t0
            reasons[d.reason] += 1
            if d.candidates:
                primaries[d.candidates[0].provider] += 1
    finally:
        gc.enable()

    timings.sort()
    us = [t / 1000 for t in timings]
    p50, p99 = us[len(us) // 2], us[int(len(us) * 0.99)]
    p90, p999 = us[int(len(us) * 0.9)], us[int(len(us) * 0.999)]
    print(f"decisions: {args.decisions}  providers: 3  regions: 3  overrides: {len(ovr)}  "
          f"python {sys.version.split()[0]}")  # fmt: skip
    print(f"p50 {p50:.1f} us   p90 {p90:.1f} us   p99 {p99:.1f} us   p99.9 {p999:.1f} us   "
          f"mean {statistics.fmean(us):.1f} us   max {us[-1]:.1f} us")  # fmt: skip
    print("decision reasons:", dict(reasons))
    print("primary provider:", dict(primaries))
    print("goal p50 <= 20 us, p99 <= 100 us:", "met" if p50 <= 20 and p99 <= 100 else "MISSED")


if __name__ == "__main__":
    main()

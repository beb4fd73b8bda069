"""Router properties over generated routing tables, overrides, breaker states and payments."""

from __future__ import annotations

import math
import random
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.routing.regions import region_for_country
from orchestrator.routing.scoring import (
    Override,
    OverrideScope,
    PaymentFacts,
    ProviderRoute,
    RoutingSnapshot,
    RoutingWeights,
    decide,
)

NOW = 1_800_000_000.0
PROVIDERS = ("stripe", "adyen", "braintree", "worldpay")
REGIONS = ("EU", "US", "APAC")
CURRENCIES = ("EUR", "GBP", "USD", "JPY")
COUNTRIES = ("DE", "FR", "GB", "US", "JP", "AU", "CA")  # CA has no region
MERCHANTS = ("mer_a", "mer_b")
STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage", "unknown")
BREAKER_STATES = ("closed", "open", "half_open", "forced_open", "disabled")

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def maybe(draw, wanted, others, p_none=0.5, p_wanted=0.35):
    """None (any), the wanted value, or another one: scopes and tables biased towards the payment,
    so that overrides and rows often apply to it."""
    u = draw(st.floats(0.0, 1.0))
    if u < p_none:
        return None
    if u < p_none + p_wanted:
        return wanted
    return draw(st.sampled_from(others))


@st.composite
def routes(draw, provider: str, region: str, currency: str = "EUR") -> ProviderRoute:
    currencies = set(draw(st.sets(st.sampled_from(CURRENCIES), max_size=3)))
    if draw(st.floats(0.0, 1.0)) < 0.75:
        currencies.add(currency)
    return ProviderRoute(
        provider,
        region,
        enabled=draw(st.floats(0.0, 1.0)) < 0.85,
        currencies=frozenset(currencies),
        fee_percent=draw(st.floats(0.0, 5.0, allow_nan=False)),
        fee_fixed=draw(st.integers(0, 50)),
        status_page=draw(st.sampled_from(STATUSES)),
        observed_error_rate=draw(st.none() | st.floats(0.0, 1.0, allow_nan=False)),
        observed_p99_ms=draw(st.none() | st.floats(10.0, 10_000.0, allow_nan=False)),
        observed_calls=draw(st.sampled_from([0, 5, 19, 20, 100, 1000])),
        recovering_since=draw(st.none() | st.floats(NOW - 300, NOW)),
    )


@st.composite
def cases(draw):
    """(payment, snapshot, overrides, breakers)."""
    p = PaymentFacts(
        amount=draw(st.integers(1, 99_999_999)),
        currency=draw(st.sampled_from(CURRENCIES)),
        country=draw(st.sampled_from(COUNTRIES)),
        merchant_id=draw(st.none() | st.sampled_from(MERCHANTS)),
    )
    region = region_for_country(p.country) or "EU"
    providers = draw(st.lists(st.sampled_from(PROVIDERS), min_size=1, max_size=4, unique=True))
    rows = []
    for provider in providers:
        for r in REGIONS:
            if draw(st.floats(0.0, 1.0)) < (0.85 if r == region else 0.5):
                rows.append(draw(routes(provider, r, p.currency)))
    if not rows:
        rows.append(draw(routes(providers[0], "US", p.currency)))
    snapshot = RoutingSnapshot.from_routes(rows, version=draw(st.integers(0, 10)), updated_at=NOW)
    overrides = [
        Override(
            id=f"ovr_{i}",
            action=draw(st.sampled_from(["force", "disable", "weight"])),
            provider=draw(st.sampled_from(PROVIDERS)),
            scope=OverrideScope(
                region=maybe(draw, region, REGIONS),
                country=maybe(draw, p.country, COUNTRIES, p_none=0.6),
                currency=maybe(draw, p.currency, CURRENCIES, p_none=0.6),
                merchant_id=maybe(draw, p.merchant_id, MERCHANTS, p_none=0.7),
            ),
            weight=draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0])),
            fallback=draw(st.booleans()),
            enabled=draw(st.floats(0.0, 1.0)) < 0.85,
            expires_at=draw(st.none() | st.none() | st.sampled_from([NOW - 10, NOW, NOW + 10])),
            reason="generated",
            created_at=draw(st.sampled_from([1.0, 2.0, 3.0])),
        )
        for i in range(draw(st.integers(0, 8)))
    ]
    breakers = draw(
        st.dictionaries(
            st.tuples(st.sampled_from(providers), st.sampled_from(REGIONS)),
            st.sampled_from(BREAKER_STATES),
            max_size=6,
        )
    )
    return p, snapshot, overrides, breakers


seeds = st.integers(0, 2**32)


# Independent statements of the rules, written without the router's code.


def in_scope(o: Override, p: PaymentFacts) -> bool:
    if not o.enabled or (o.expires_at is not None and o.expires_at <= NOW):
        return False
    s = o.scope
    wanted = {"region": region_for_country(p.country), "country": p.country, "currency": p.currency,
              "merchant_id": p.merchant_id}  # fmt: skip
    return all(getattr(s, k) is None or getattr(s, k) == v for k, v in wanted.items())


def compliant(snapshot: RoutingSnapshot, p: PaymentFacts, provider: str) -> bool:
    r = snapshot.routes.get((provider, region_for_country(p.country)))
    return r is not None and r.enabled and p.currency in r.currencies


def disabled(overrides: list[Override], p: PaymentFacts) -> set[str]:
    return {o.provider for o in overrides if o.action == "disable" and in_scope(o, p)}


def expected_force(snapshot, overrides, p) -> Override | None:
    off = disabled(overrides, p)
    forces = [
        o
        for o in overrides
        if o.action == "force" and in_scope(o, p) and o.provider not in off and compliant(snapshot, p, o.provider)
    ]
    rank = lambda o: (  # noqa: E731
        o.scope.merchant_id is not None, o.scope.country is not None, o.scope.currency is not None,
        o.scope.region is not None, o.created_at, o.id,
    )  # fmt: skip
    return max(forces, key=rank, default=None)


def run(p, snapshot, overrides, breakers, seed):
    return decide(p, snapshot, overrides, breakers, RoutingWeights(), random.Random(seed), NOW)


@FAST
@given(cases(), seeds)
def test_never_a_non_compliant_provider(case, seed):
    p, snapshot, overrides, breakers = case
    d = run(p, snapshot, overrides, breakers, seed)
    for c in d.candidates:
        assert compliant(snapshot, p, c.provider), (c.provider, d)
    if region_for_country(p.country) is None:
        assert d.reason == "no_route"


@FAST
@given(cases(), seeds)
def test_never_a_disabled_provider(case, seed):
    p, snapshot, overrides, breakers = case
    d = run(p, snapshot, overrides, breakers, seed)
    off = disabled(overrides, p)
    assert not off & set(d.providers)
    for provider in off:
        if compliant(snapshot, p, provider):
            assert d.excluded[provider] == "disabled_override"


@FAST
@given(cases(), seeds)
def test_a_forced_provider_is_always_first(case, seed):
    p, snapshot, overrides, breakers = case
    d = run(p, snapshot, overrides, breakers, seed)
    force = expected_force(snapshot, overrides, p)
    if force is None:
        assert d.reason != "forced"
        return
    assert d.reason == "forced"
    assert d.providers[0] == force.provider
    assert force.id in d.overrides_applied
    if not force.fallback:
        assert d.providers == (force.provider,)


@st.composite
def competing_forces(draw):
    """Every provider can take the payment; several force overrides (and maybe a disable) apply."""
    country = draw(st.sampled_from(COUNTRIES[:-1]))
    p = PaymentFacts(amount=1000, currency="EUR", country=country, merchant_id=draw(st.sampled_from(MERCHANTS)))
    region = region_for_country(country)
    rows = [draw(routes(provider, region)) for provider in PROVIDERS]
    rows = [
        ProviderRoute(r.provider, region, currencies={"EUR"}, fee_percent=r.fee_percent, status_page=r.status_page)
        for r in rows
    ]
    def scope_field(value):
        return draw(st.sampled_from([None, value]))
    overrides = [
        Override(
            id=f"f{i}",
            action="force",
            provider=draw(st.sampled_from(PROVIDERS)),
            scope=OverrideScope(
                scope_field(region), scope_field(country), scope_field("EUR"), scope_field(p.merchant_id)
            ),
            fallback=draw(st.booleans()),
            created_at=draw(st.sampled_from([1.0, 2.0, 3.0])),
            reason="generated",
        )
        for i in range(draw(st.integers(2, 6)))
    ]
    if draw(st.booleans()):
        overrides.append(Override(id="d", action="disable", provider=draw(st.sampled_from(PROVIDERS)), reason="x"))
    overrides = draw(st.permutations(overrides))
    return p, RoutingSnapshot.from_routes(rows), overrides, draw(breaker_states(region))


def breaker_states(region):
    return st.dictionaries(st.tuples(st.sampled_from(PROVIDERS), st.just(region)), st.sampled_from(BREAKER_STATES))


@FAST
@given(competing_forces(), seeds)
def test_the_most_specific_then_newest_force_wins(case, seed):
    p, snapshot, overrides, breakers = case
    d = run(p, snapshot, overrides, breakers, seed)
    force = expected_force(snapshot, overrides, p)
    off = disabled(overrides, p)
    if force is None:  # only when every force names a disabled provider
        assert all(o.provider in off for o in overrides if o.action == "force")
        assert d.reason != "forced"
        return
    assert d.reason == "forced"
    assert d.providers[0] == force.provider
    assert [o for o in d.overrides_applied if o.startswith("f")] == [force.id]
    if not force.fallback:
        assert d.providers == (force.provider,)
    else:
        assert not off & set(d.providers)


@FAST
@given(cases(), seeds)
def test_decision_is_well_formed(case, seed):
    p, snapshot, overrides, breakers = case
    d = run(p, snapshot, overrides, breakers, seed)
    names = d.providers
    assert len(set(names)) == len(names)
    # Every provider of the table is either a candidate or excluded with a reason, never both.
    assert set(names) | set(d.excluded) == set(snapshot.providers)
    assert not set(names) & set(d.excluded)
    assert (d.reason == "no_route") == (not names)
    if d.reason == "only_option":
        assert len(names) == 1
    assert all(0.0 <= c.share <= 1.0 + 1e-9 and math.isfinite(c.score) for c in d.candidates)
    if d.reason in ("score", "only_option"):
        assert math.isclose(sum(c.share for c in d.candidates), 1.0, rel_tol=1e-9)
        assert d.candidates[0].share > 0.0
        rest = [c.score for c in d.candidates[1:]]
        assert rest == sorted(rest)
    # Open breakers are left out unless nothing else is left (or an operator forced the provider).
    blocked = [c for c in d.candidates if any(r in ("breaker:open", "breaker:forced_open") for r in c.reasons)]
    if blocked and d.reason != "forced":
        assert all("last_resort" in c.reasons for c in d.candidates)


@FAST
@given(cases(), seeds)
def test_deterministic_given_a_seed(case, seed):
    p, snapshot, overrides, breakers = case
    first = [run(p, snapshot, overrides, breakers, seed + i) for i in range(5)]
    again = [run(p, snapshot, overrides, breakers, seed + i) for i in range(5)]
    assert first == again
    rng_a, rng_b = random.Random(seed), random.Random(seed)
    seq_a = [decide(p, snapshot, overrides, breakers, RoutingWeights(), rng_a, NOW) for _ in range(20)]
    seq_b = [decide(p, snapshot, overrides, breakers, RoutingWeights(), rng_b, NOW) for _ in range(20)]
    assert seq_a == seq_b


def chi_square_critical(df: int, z: float = 4.265) -> float:
    """Upper quantile of chi-square (Wilson-Hilferty); z = 4.265 is about p = 1e-5."""
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


@st.composite
def contested(draw):
    """A payment and a table where at least two providers can take it, with weight and disable
    overrides only (no force), so that the primary is drawn."""
    country = draw(st.sampled_from(COUNTRIES[:-1]))
    region = region_for_country(country)
    currency = draw(st.sampled_from(CURRENCIES))
    p = PaymentFacts(amount=draw(st.integers(100, 1_000_000)), currency=currency, country=country)
    providers = draw(st.lists(st.sampled_from(PROVIDERS), min_size=2, max_size=4, unique=True))
    rows = []
    for provider in providers:
        r = draw(routes(provider, region))
        rows.append(
            ProviderRoute(
                provider,
                region,
                currencies=frozenset({currency}),
                fee_percent=r.fee_percent,
                fee_fixed=r.fee_fixed,
                status_page=draw(st.sampled_from(["operational", "degraded_performance", "unknown"])),
                observed_error_rate=draw(st.none() | st.floats(0.0, 0.2)),
                observed_p99_ms=r.observed_p99_ms,
                observed_calls=r.observed_calls,
                recovering_since=r.recovering_since,
            )
        )
    overrides = [
        Override(
            id=f"w{i}",
            action="weight",
            provider=draw(st.sampled_from(providers)),
            scope=OverrideScope(region=draw(st.none() | st.just(region))),
            weight=draw(st.sampled_from([0.0, 0.5, 2.0, 4.0])),
            reason="generated",
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    breakers = {(pr, region): draw(st.sampled_from(["closed", "half_open"])) for pr in providers}
    weights = RoutingWeights(temperature=draw(st.sampled_from([0.005, 0.05, 0.5, 5.0])))
    return p, RoutingSnapshot.from_routes(rows), overrides, breakers, weights


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(contested(), st.integers(0, 2**32))
def test_shares_over_many_draws_follow_the_weights(case, seed):
    p, snapshot, overrides, breakers, weights = case
    rng = random.Random(seed)
    draws = 3000
    first = decide(p, snapshot, overrides, breakers, weights, rng, NOW)
    assert first.reason == "score"
    expected = {c.provider: c.share for c in first.candidates}
    counts = Counter(decide(p, snapshot, overrides, breakers, weights, rng, NOW).providers[0] for _ in range(draws))
    assert set(counts) <= {k for k, v in expected.items() if v > 0}
    # Pearson's chi-square, pooling categories whose expected count is under 5.
    cells, pooled_e, pooled_o = [], 0.0, 0
    for provider, share in expected.items():
        e = share * draws
        if e < 5:
            pooled_e, pooled_o = pooled_e + e, pooled_o + counts[provider]
        else:
            cells.append((counts[provider], e))
    if pooled_e >= 5:
        cells.append((pooled_o, pooled_e))
    else:
        assert pooled_o <= 5 + 5 * pooled_e
    if len(cells) < 2:
        return
    stat = sum((o - e) ** 2 / e for o, e in cells)
    assert stat < chi_square_critical(len(cells) - 1), (stat, counts, expected)

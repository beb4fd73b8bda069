"""Concrete routing cases for `orchestrator.routing.scoring.decide`."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest

from orchestrator.providers.base import ComponentStatus
from orchestrator.routing.scoring import (
    Override,
    OverrideScope,
    PaymentFacts,
    ProviderRoute,
    RoutingSnapshot,
    RoutingWeights,
    decide,
    with_fresh_recoveries,
)

NOW = 1_800_000_000.0
WEIGHTS = RoutingWeights()
ALL = frozenset({"EUR", "GBP", "CHF", "SEK", "USD", "AUD", "JPY"})
# The default provider table's EU fees: percent, fixed (minor units).
EU_FEES = {"stripe": (1.4, 20), "adyen": (1.6, 25), "braintree": (1.9, 30)}


def row(provider: str, region: str = "EU", **kw) -> ProviderRoute:
    percent, fixed = EU_FEES.get(provider, (2.0, 30))
    fields = dict(
        currencies=ALL,
        fee_percent=percent,
        fee_fixed=fixed,
        status_page="operational",
        observed_error_rate=0.0,
        observed_p99_ms=200.0,
        observed_calls=500,
    )
    fields.update(kw)
    return ProviderRoute(provider, region, **fields)


def snap(*rows: ProviderRoute) -> RoutingSnapshot:
    return RoutingSnapshot.from_routes(rows, version=1, updated_at=NOW)


def eu3(**per_provider: dict) -> RoutingSnapshot:
    return snap(*(row(p, **per_provider.get(p, {})) for p in EU_FEES))


def pay(country: str = "DE", currency: str = "EUR", amount: int = 1099, merchant: str | None = None) -> PaymentFacts:
    return PaymentFacts(amount=amount, currency=currency, country=country, merchant_id=merchant)


def run(payment, snapshot, overrides=(), breakers=None, weights=WEIGHTS, seed=0, now=NOW):
    return decide(payment, snapshot, list(overrides), breakers or {}, weights, random.Random(seed), now)


def primaries(payment, snapshot, n=4000, **kw) -> Counter:
    return Counter(run(payment, snapshot, seed=s, **kw).candidates[0].provider for s in range(n))


def ovr(action: str, provider: str, id: str = "ovr_1", **kw) -> Override:
    scope = OverrideScope(**{k: kw.pop(k) for k in ("region", "country", "currency", "merchant_id") if k in kw})
    return Override(id=id, action=action, provider=provider, scope=scope, reason="test", **kw)


# --- compliance filters ---------------------------------------------------------------------------


def test_eu_payment_never_goes_to_a_provider_without_an_enabled_eu_row():
    s = snap(
        row("stripe", "EU"),
        row("stripe", "US"),
        row("adyen", "US"),  # no EU row at all
        row("braintree", "EU", enabled=False),  # EU row, not compliant
    )
    for seed in range(200):
        d = run(pay("FR"), s, seed=seed)
        assert d.providers == ("stripe",)
        assert d.region == "EU"
    assert dict(d.excluded) == {"adyen": "region", "braintree": "region"}
    assert d.reason == "only_option"


def test_region_comes_from_the_country_and_an_unserved_country_has_no_route():
    s = snap(row("stripe", "EU"), row("adyen", "US"))
    assert run(pay("US", "USD"), s).providers == ("adyen",)
    d = run(pay("CA", "USD"), s)
    assert d.reason == "no_route" and d.candidates == () and d.region is None
    assert dict(d.excluded) == {"stripe": "region", "adyen": "region"}


def test_currency_filter():
    s = eu3(braintree={"currencies": frozenset({"EUR", "GBP"})})
    for seed in range(200):
        d = run(pay("SE", "SEK"), s, seed=seed)
        assert "braintree" not in d.providers
        assert set(d.providers) == {"stripe", "adyen"}
    assert d.excluded["braintree"] == "currency"
    assert "braintree" in run(pay("DE", "EUR"), s, seed=1).providers


def test_no_compliant_provider_means_no_route():
    d = run(pay("DE", "JPY"), eu3(**{p: {"currencies": frozenset({"EUR"})} for p in EU_FEES}))
    assert d.reason == "no_route"
    assert d.candidates == ()
    assert set(d.excluded.values()) == {"currency"}


# --- health exclusions ----------------------------------------------------------------------------


def test_major_outage_without_observations_is_excluded():
    s = eu3(stripe={"status_page": "major_outage", "observed_calls": 3, "observed_error_rate": None})
    for seed in range(200):
        assert "stripe" not in run(pay(), s, seed=seed).providers
    assert run(pay(), s).excluded["stripe"] == "status:major_outage"


def test_major_outage_is_kept_last_when_nothing_else_is_left():
    s = eu3(
        stripe={"status_page": "major_outage", "observed_calls": 0, "observed_error_rate": None},
        adyen={"currencies": frozenset({"USD"})},
        braintree={"currencies": frozenset({"USD"})},
    )
    d = run(pay(), s)
    assert d.providers == ("stripe",)
    assert "status:major_outage" in d.candidates[0].reasons
    assert "last_resort" in d.candidates[0].reasons


def test_major_outage_with_healthy_observations_is_not_excluded():
    # The status page says major_outage, our own traffic says fine: observations win.
    s = eu3(stripe={"status_page": "major_outage", "observed_error_rate": 0.0, "observed_calls": 500})
    counts = primaries(pay(), s, n=1000)
    assert counts["stripe"] > 900
    assert "status:major_outage" in run(pay(), s).candidates[0].reasons


@pytest.mark.parametrize("state", ["open", "forced_open"])
def test_open_breaker_is_excluded(state):
    s = eu3()
    for seed in range(200):
        assert "stripe" not in run(pay(), s, breakers={("stripe", "EU"): state}, seed=seed).providers
    d = run(pay(), s, breakers={("stripe", "EU"): state})
    assert d.excluded["stripe"] == f"breaker:{state}"
    # A breaker open in another region does not matter here.
    assert "stripe" in run(pay(), s, breakers={("stripe", "US"): state}).providers


def test_open_breakers_everywhere_keep_the_providers_as_last_resort():
    s = eu3()
    breakers = {(p, "EU"): "open" for p in EU_FEES}
    d = run(pay(), s, breakers=breakers)
    assert set(d.providers) == set(EU_FEES)
    assert all("breaker:open" in c.reasons and "last_resort" in c.reasons for c in d.candidates)
    assert d.excluded == {}


def test_one_open_breaker_left_is_kept_alone():
    s = eu3(adyen={"currencies": frozenset({"USD"})}, braintree={"currencies": frozenset({"USD"})})
    d = run(pay(), s, breakers={("stripe", "EU"): "open"})
    assert d.providers == ("stripe",)
    assert d.reason == "only_option"


# --- scoring --------------------------------------------------------------------------------------


def test_cheapest_healthy_provider_wins_the_overwhelming_majority():
    s = eu3()
    counts = primaries(pay(), s, n=5000)
    assert counts["stripe"] / 5000 > 0.95
    # ...while the others still see a little traffic, to keep their statistics fresh.
    assert 0.003 < counts["adyen"] / 5000 < 0.03
    assert 0.003 < counts["braintree"] / 5000 < 0.03
    d = run(pay(), s)
    assert "cheapest healthy" in next(c for c in d.candidates if c.provider == "stripe").reasons


def test_fallbacks_follow_in_score_order_and_the_most_expensive_comes_last():
    s = eu3()
    for seed in range(300):
        d = run(pay(), s, seed=seed)
        rest = d.candidates[1:]
        assert [c.score for c in rest] == sorted(c.score for c in rest)
        assert d.candidates[-1].provider == "braintree" or d.candidates[0].provider == "braintree"
        assert all("fallback" in c.reasons for c in rest)
        assert math.isclose(sum(c.share for c in d.candidates), 1.0)


def test_fee_for_this_amount():
    d = run(pay(amount=1099), eu3())
    fees = {c.provider: c.fee_minor for c in d.candidates}
    assert fees == {"stripe": 35, "adyen": 43, "braintree": 51}  # 1099*1.4%+20 = 35.39, ...


def test_fee_difference_matters_relative_to_the_amount():
    # US-like fees: nearly equal, so the cheapest wins less overwhelmingly but still wins.
    s = snap(
        row("stripe", "US", fee_percent=2.9, fee_fixed=30),
        row("adyen", "US", fee_percent=3.0, fee_fixed=30),
        row("braintree", "US", fee_percent=3.1, fee_fixed=30),
    )
    counts = primaries(pay("US", "USD"), s, n=4000)
    assert counts.most_common(1)[0][0] == "stripe"
    assert counts["stripe"] > counts["adyen"] > counts["braintree"] > 0


def test_high_observed_error_rate_demotes_even_when_the_status_page_says_operational():
    s = eu3(stripe={"status_page": "operational", "observed_error_rate": 0.3})
    counts = primaries(pay(), s, n=3000)
    assert counts["stripe"] / 3000 < 0.01
    d = run(pay(), s)
    assert d.candidates[-1].provider == "stripe"
    assert "unhealthy" in d.candidates[-1].reasons


def test_a_few_percent_of_errors_is_enough_to_move_traffic_to_a_dearer_provider():
    s = eu3(stripe={"observed_error_rate": 0.05})
    counts = primaries(pay(), s, n=3000)
    assert counts["adyen"] > counts["stripe"]


def test_status_page_degraded_but_observations_fine_observations_win():
    s = eu3(stripe={"status_page": "degraded_performance", "observed_error_rate": 0.0, "observed_calls": 500})
    counts = primaries(pay(), s, n=2000)
    assert counts["stripe"] / 2000 > 0.95
    assert run(pay(), s).candidates[0].score == 0.0


def test_status_page_counts_only_when_observations_are_too_few():
    few = {"status_page": "partial_outage", "observed_error_rate": 0.0, "observed_calls": WEIGHTS.min_calls - 1}
    enough = dict(few, observed_calls=WEIGHTS.min_calls)
    assert primaries(pay(), eu3(stripe=few), n=2000)["stripe"] / 2000 < 0.05
    assert primaries(pay(), eu3(stripe=enough), n=2000)["stripe"] / 2000 > 0.95
    no_rate = dict(enough, observed_error_rate=None)
    assert primaries(pay(), eu3(stripe=no_rate), n=2000)["stripe"] / 2000 < 0.05


def test_slow_p99_demotes():
    s = eu3(stripe={"observed_p99_ms": 3000.0})
    counts = primaries(pay(), s, n=2000)
    assert counts["stripe"] / 2000 < 0.05
    assert "slow" in next(c for c in run(pay(), s).candidates if c.provider == "stripe").reasons


def test_recovering_provider_gets_only_the_exploration_share_then_full_weight():
    recovering = eu3(stripe={"recovering_since": NOW - 10})
    d = run(pay(), recovering)
    share = {c.provider: c.share for c in d.candidates}
    assert share["stripe"] == pytest.approx(WEIGHTS.exploration_share)
    counts = primaries(pay(), recovering, n=6000)
    assert counts["stripe"] / 6000 == pytest.approx(WEIGHTS.exploration_share, abs=0.015)
    assert "exploration" in next(c for c in d.candidates if c.provider == "stripe").reasons
    later = run(pay(), recovering, now=NOW - 10 + WEIGHTS.recovery_s)
    assert {c.provider: c.share for c in later.candidates}["stripe"] > 0.95


def test_half_open_breaker_gets_the_exploration_share():
    d = run(pay(), eu3(), breakers={("stripe", "EU"): "half_open"})
    stripe = next(c for c in d.candidates if c.provider == "stripe")
    assert stripe.share == pytest.approx(WEIGHTS.exploration_share)
    assert "breaker:half_open" in stripe.reasons


def test_weights_are_configuration():
    flat = RoutingWeights(temperature=10.0, freshness_share=0.0)
    counts = primaries(pay(), eu3(), n=3000, weights=flat)
    assert all(800 < counts[p] < 1200 for p in EU_FEES)  # a hot temperature spreads evenly


# --- overrides ------------------------------------------------------------------------------------


def test_force_puts_the_provider_first_with_the_others_as_fallbacks():
    o = ovr("force", "braintree", region="EU")
    for seed in range(100):
        d = run(pay(), eu3(), [o], seed=seed)
        assert d.providers == ("braintree", "stripe", "adyen")
        assert d.reason == "forced"
        assert d.overrides_applied == ("ovr_1",)
    assert d.candidates[0].share == 1.0 and "forced" in d.candidates[0].reasons


def test_force_without_fallback_is_alone():
    d = run(pay(), eu3(), [ovr("force", "adyen", fallback=False)])
    assert d.providers == ("adyen",)
    assert d.reason == "forced"
    assert dict(d.excluded) == {"stripe": "forced_alone", "braintree": "forced_alone"}


def test_force_beats_an_open_breaker_and_a_major_outage():
    s = eu3(adyen={"status_page": "major_outage", "observed_calls": 0, "observed_error_rate": None})
    d = run(pay(), s, [ovr("force", "adyen")], breakers={("adyen", "EU"): "open"})
    assert d.providers[0] == "adyen"
    assert "breaker:open" in d.candidates[0].reasons


def test_force_never_breaks_compliance():
    s = snap(row("stripe", "EU"), row("adyen", "US"))
    d = run(pay(), s, [ovr("force", "adyen", fallback=False)])
    assert d.providers == ("stripe",)
    assert d.overrides_applied == ()
    assert d.reason == "only_option"


def test_disable_removes_the_provider():
    o = ovr("disable", "stripe", region="EU")
    for seed in range(200):
        d = run(pay(), eu3(), [o], seed=seed)
        assert "stripe" not in d.providers
    assert d.excluded["stripe"] == "disabled_override"
    assert d.overrides_applied == ("ovr_1",)
    assert primaries(pay(), eu3(), n=2000, overrides=[o])["adyen"] / 2000 > 0.95


def test_disable_wins_over_force_of_the_same_provider():
    d = run(pay(), eu3(), [ovr("force", "stripe", id="f"), ovr("disable", "stripe", id="d")])
    assert "stripe" not in d.providers
    assert d.reason == "score"
    assert d.overrides_applied == ("d",)


def test_disabling_every_provider_gives_no_route():
    os = [ovr("disable", p, id=p) for p in EU_FEES]
    d = run(pay(), eu3(), os)
    assert d.reason == "no_route"
    assert d.overrides_applied == tuple(EU_FEES)


def test_weight_multiplies_the_share():
    # Two identical providers: equal shares, and weight 3 makes one three times the other.
    s = snap(row("a", fee_percent=2.0, fee_fixed=30), row("b", fee_percent=2.0, fee_fixed=30))
    even = {c.provider: c.share for c in run(pay(), s).candidates}
    assert even["a"] == pytest.approx(0.5)
    o = ovr("weight", "b", weight=3.0)
    d = run(pay(), s, [o])
    shares = {c.provider: c.share for c in d.candidates}
    assert shares["b"] / shares["a"] == pytest.approx(3.0)
    assert d.overrides_applied == ("ovr_1",)
    counts = primaries(pay(), s, n=4000, overrides=[o])
    assert counts["b"] / 4000 == pytest.approx(0.75, abs=0.03)


def test_weight_zero_means_fallback_only():
    o = ovr("weight", "stripe", weight=0.0)
    for seed in range(300):
        d = run(pay(), eu3(), [o], seed=seed)
        assert d.providers[0] != "stripe"
        assert "stripe" in d.providers


@pytest.mark.parametrize(
    ("scope", "inside", "outside"),
    [
        ({"country": "DE"}, pay("DE"), pay("FR")),
        ({"currency": "GBP"}, pay("GB", "GBP"), pay("GB", "EUR")),
        ({"merchant_id": "mer_1"}, pay(merchant="mer_1"), pay(merchant="mer_2")),
        ({"region": "EU"}, pay("FR"), pay("US", "USD")),
    ],
)
def test_scoped_overrides_apply_only_in_scope(scope, inside, outside):
    s = snap(*(row(p, r) for p in EU_FEES for r in ("EU", "US")))
    disable = ovr("disable", "stripe", **scope)
    assert "stripe" not in run(inside, s, [disable]).providers
    assert "stripe" in run(outside, s, [disable]).providers
    force = ovr("force", "braintree", fallback=False, **scope)
    assert run(inside, s, [force]).providers == ("braintree",)
    assert run(outside, s, [force]).reason == "score"


def test_the_most_specific_force_wins_then_the_newest():
    s = snap(*(row(p) for p in ("stripe", "adyen", "braintree", "worldpay")))
    any_ = ovr("force", "stripe", id="any", created_at=5)
    region = ovr("force", "adyen", id="region", region="EU", created_at=4)
    currency = ovr("force", "braintree", id="currency", currency="EUR", created_at=3)
    country = ovr("force", "worldpay", id="country", country="DE", created_at=2)
    merchant = ovr("force", "adyen", id="merchant", merchant_id="m", created_at=1)
    p = pay("DE", "EUR", merchant="m")
    order = [any_, region, currency, country, merchant]
    assert run(p, s, order).overrides_applied == ("merchant",)
    assert run(p, s, order[:4]).providers[0] == "worldpay"
    assert run(p, s, order[:3]).providers[0] == "braintree"
    assert run(p, s, order[:2]).providers[0] == "adyen"
    assert run(p, s, order[:1]).providers[0] == "stripe"
    older = ovr("force", "stripe", id="a", region="EU", created_at=10)
    newer = ovr("force", "braintree", id="b", region="EU", created_at=20)
    assert run(p, s, [newer, older]).providers[0] == "braintree"
    assert run(p, s, [older, newer]).providers[0] == "braintree"


@pytest.mark.parametrize(
    "changes",
    [{"expires_at": NOW - 1}, {"expires_at": NOW}, {"enabled": False}],
    ids=["expired", "expires_now", "disabled"],
)
def test_inactive_overrides_are_ignored(changes):
    o = ovr("force", "braintree", fallback=False, **changes)
    d = run(pay(), eu3(), [o])
    assert d.reason == "score" and d.overrides_applied == ()
    assert run(pay(), eu3(), [ovr("force", "braintree", fallback=False, expires_at=NOW + 1)]).reason == "forced"


def test_override_applies_to_matches_decide():
    o = ovr("disable", "stripe", country="DE", expires_at=NOW + 5)
    assert o.applies_to(pay("DE"), NOW)
    assert not o.applies_to(pay("FR"), NOW)
    assert not o.applies_to(pay("DE"), NOW + 5)


# --- values ---------------------------------------------------------------------------------------


def test_status_enum_members_are_accepted():
    r = row("stripe", status_page=ComponentStatus.MAJOR_OUTAGE, observed_calls=0, observed_error_rate=None)
    assert r.status_page == "major_outage"
    assert run(pay(), snap(r, row("adyen"))).excluded["stripe"] == "status:major_outage"


def test_invalid_values_are_refused():
    with pytest.raises(ValueError):
        Override(id="x", action="boost", provider="stripe")
    with pytest.raises(ValueError):
        Override(id="x", action="weight", provider="stripe", weight=-1)
    with pytest.raises(ValueError):
        row("stripe", status_page="on_fire")
    with pytest.raises(ValueError):
        RoutingWeights(temperature=0)
    with pytest.raises(ValueError):
        RoutingSnapshot({("stripe", "US"): row("stripe", "EU")})


def test_snapshot_and_decision_are_immutable():
    s = eu3()
    d = run(pay(), s, [ovr("disable", "braintree")])
    with pytest.raises(AttributeError):
        d.reason = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        d.excluded["stripe"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        s.routes[("x", "EU")] = row("x")  # type: ignore[index]


def test_decision_renders_as_json():
    d = run(pay(), eu3(), [ovr("weight", "adyen", weight=2.0)])
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["reason"] == "score"
    assert doc["overrides"] == ["ovr_1"]
    assert [c["provider"] for c in doc["candidates"]] == list(d.providers)
    assert "weight:x2" in next(c for c in doc["candidates"] if c["provider"] == "adyen")["reasons"]


def test_enum_breaker_states_are_understood():
    import enum

    class State(enum.StrEnum):
        OPEN = "open"
        HALF_OPEN = "half_open"

    d = run(pay(), eu3(), breakers={("stripe", "EU"): State.OPEN, ("adyen", "EU"): State.HALF_OPEN})
    assert d.excluded["stripe"] == "breaker:open"
    assert "breaker:half_open" in next(c for c in d.candidates if c.provider == "adyen").reasons


def test_an_override_without_a_weight_counts_as_weight_one():
    assert Override(id="x", action="force", provider="stripe", weight=None).weight == 1.0  # type: ignore[arg-type]


# --- a replica's fresh breaker recoveries ----------------------------------------------------------


def test_a_proven_recovery_overrules_the_outage_still_in_the_table_window():
    # Stripe's window still holds the outage; its breaker has since closed and later calls went well.
    table = eu3(stripe={"observed_error_rate": 0.4, "observed_calls": 300, "observed_p99_ms": 900.0})
    assert primaries(pay(), table, n=500).most_common(1)[0][0] == "adyen"

    fresh = with_fresh_recoveries(table, {("stripe", "EU"): True}, WEIGHTS.min_calls, NOW)
    stripe = fresh.routes[("stripe", "EU")]
    assert (stripe.observed_error_rate, stripe.observed_p99_ms, stripe.observed_calls) == (0.0, None, 300)
    assert fresh.routes[("adyen", "EU")] is table.routes[("adyen", "EU")]
    assert primaries(pay(), fresh, n=500)["stripe"] >= 480  # the cheapest is back at once


def test_an_unproven_recovery_is_explored_whatever_the_table_says():
    table = eu3(stripe={"observed_error_rate": 0.4, "observed_calls": 300})
    fresh = with_fresh_recoveries(table, {("stripe", "EU"): False}, WEIGHTS.min_calls, NOW)
    stripe = fresh.routes[("stripe", "EU")]
    assert stripe.observed_error_rate is None and stripe.recovering_since == NOW
    decision = run(pay(), fresh)
    share = next(c for c in decision.candidates if c.provider == "stripe").share
    assert share == pytest.approx(WEIGHTS.exploration_share)


def test_fresh_recoveries_leave_clean_or_unknown_rows_alone():
    table = eu3()
    assert with_fresh_recoveries(table, {("stripe", "EU"): True, ("stripe", "APAC"): False}, 20, NOW) is table
    thin = snap(row("stripe", observed_error_rate=1.0, observed_calls=3))
    fresh = with_fresh_recoveries(thin, {("stripe", "EU"): True}, 20, NOW).routes[("stripe", "EU")]
    assert fresh.observed_error_rate == 0.0 and fresh.observed_calls == 20

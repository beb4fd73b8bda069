"""Sandbox-only routes, the status page, seeded draws and the shared helpers."""

from __future__ import annotations

import httpx
import pytest

from sandbox_gateways.common import currency as iso
from sandbox_gateways.common.faults import FaultState
from sandbox_gateways.common.tokens import TokenOutcome, looks_like_pan, token_outcome
from sandbox_gateways.stripe.app import create_app as create_stripe

STRIPE_AUTH = {"Authorization": "Bearer sk_test_controls"}
LEDGER_KEYS = {
    "id", "region", "amount", "currency", "reference", "idempotency_key", "status", "refunded_amount", "created_at",
}


@pytest.fixture(params=["stripe", "adyen", "braintree"])
def client(request, stripe, adyen, braintree):
    return {"stripe": stripe, "adyen": adyen, "braintree": braintree}[request.param]


@pytest.mark.parametrize(
    ("region", "body", "field"),
    [
        ("eu", {"error_rate": 1.5}, "error_rate"),
        ("eu", {"reset_rate": -0.1}, "reset_rate"),
        ("eu", {"timeout_rate": "0.5"}, "timeout_rate"),
        ("eu", {"error_rate": True}, "error_rate"),
        ("eu", {"error_status": 200}, "error_status"),
        ("eu", {"error_status": 503.5}, "error_status"),
        ("eu", {"latency_ms": -5}, "latency_ms"),
        ("eu", {"latency_jitter_ms": "fast"}, "latency_jitter_ms"),
        ("eu", {"status_page": "on_fire"}, "status_page"),
        ("eu", {"surprise": 1}, "surprise"),
        ("mars", {"error_rate": 0.1}, "region"),
    ],
)
async def test_fault_validation_is_a_clear_422(client, region, body, field):
    response = await client.put(f"/_sandbox/faults/{region}", json=body)
    assert response.status_code == 422
    errors = response.json()["error"]["errors"]
    assert [e["field"] for e in errors] == [field]
    # Nothing was applied.
    faults = (await client.get("/_sandbox/faults")).json()["faults"]
    assert all(f["error_rate"] == 0 and f["status_page"] == "operational" for f in faults.values())


async def test_fault_body_must_be_a_json_object(client):
    assert (await client.put("/_sandbox/faults/eu", content=b"{not json")).status_code == 422
    assert (await client.put("/_sandbox/faults/eu", json=[1, 2])).status_code == 422


async def test_fault_updates_merge_and_all_sets_every_region(client):
    response = await client.put("/_sandbox/faults/all", json={"latency_ms": 5})
    assert response.status_code == 200
    await client.put("/_sandbox/faults/eu", json={"error_rate": 0.25, "error_status": 500})
    faults = (await client.get("/_sandbox/faults")).json()["faults"]
    assert set(faults) == {"eu", "us", "apac"}
    assert faults["eu"]["latency_ms"] == 5 and faults["eu"]["error_rate"] == 0.25
    assert faults["eu"]["error_status"] == 500
    assert faults["us"]["latency_ms"] == 5 and faults["us"]["error_rate"] == 0
    cleared = await client.delete("/_sandbox/faults")
    assert cleared.status_code == 200
    assert all(f["latency_ms"] == 0 and f["error_rate"] == 0 for f in cleared.json()["faults"].values())


async def test_status_page_reflects_the_status_page_fault(client):
    summary = (await client.get("/api/v2/summary.json")).json()
    assert [c["name"] for c in summary["components"]] == ["EU", "US", "APAC"]
    assert all(c["status"] == "operational" for c in summary["components"])
    assert summary["status"]["indicator"] == "none"
    assert summary["incidents"] == [] and summary["scheduled_maintenances"] == []
    assert {"id", "name", "url", "updated_at"} <= set(summary["page"])

    await client.put("/_sandbox/faults/eu", json={"status_page": "partial_outage"})
    await client.put("/_sandbox/faults/apac", json={"status_page": "degraded_performance"})
    summary = (await client.get("/api/v2/summary.json")).json()
    statuses = {c["name"]: c["status"] for c in summary["components"]}
    assert statuses == {"EU": "partial_outage", "US": "operational", "APAC": "degraded_performance"}
    assert summary["status"]["indicator"] == "major"

    await client.put("/_sandbox/faults/us", json={"status_page": "major_outage"})
    assert (await client.get("/api/v2/summary.json")).json()["status"]["indicator"] == "critical"
    await client.put("/_sandbox/faults/all", json={"status_page": "degraded_performance"})
    assert (await client.get("/api/v2/summary.json")).json()["status"]["indicator"] == "minor"


async def test_status_page_is_independent_of_real_behaviour(stripe):
    await stripe.put("/_sandbox/faults/eu", json={"status_page": "major_outage"})
    response = await stripe.post(
        "/eu/v1/payment_intents",
        data={"amount": "100", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true"},
        headers=STRIPE_AUTH,
    )
    assert response.status_code == 200
    await stripe.put("/_sandbox/faults/eu", json={"status_page": "operational", "error_rate": 1.0})
    summary = (await stripe.get("/api/v2/summary.json")).json()
    assert summary["components"][0]["status"] == "operational"


async def test_ledger_shape_and_reset(stripe):
    for payment_id in ("pay_1", "pay_2"):
        await stripe.post(
            "/us/v1/payment_intents",
            data={
                "amount": "250", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true",
                "metadata[payment_id]": payment_id,
            },
            headers=STRIPE_AUTH,
        )
    response = await stripe.get("/_sandbox/ledger")
    body = response.json()
    assert set(body) == {"charges"}
    assert len(body["charges"]) == 2
    for entry in body["charges"]:
        assert set(entry) == LEDGER_KEYS
        assert entry["created_at"].endswith("Z") and "T" in entry["created_at"]
        assert isinstance(entry["amount"], int) and entry["currency"] == "USD"
    await stripe.put("/_sandbox/faults/us", json={"error_rate": 0.5})
    assert (await stripe.post("/_sandbox/reset")).status_code == 200
    assert (await stripe.get("/_sandbox/ledger")).json() == {"charges": []}
    assert (await stripe.get("/_sandbox/faults")).json()["faults"]["us"]["error_rate"] == 0


async def _error_sequence(app, n=40) -> list[int]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
        await client.put("/_sandbox/faults/eu", json={"error_rate": 0.5})
        statuses = []
        for i in range(n):
            response = await client.get(f"/eu/v1/payment_intents/pi_{i}", headers=STRIPE_AUTH)
            statuses.append(response.status_code)
        return statuses


async def test_seeded_fault_draws_are_repeatable():
    first = await _error_sequence(create_stripe(seed=7))
    second = await _error_sequence(create_stripe(seed=7))
    other = await _error_sequence(create_stripe(seed=8))
    assert set(first) == {404, 503}  # the rate really applies both ways
    assert first == second
    assert first != other


async def test_sandbox_reset_restarts_the_seeded_sequence():
    app = create_stripe(seed=3)
    first = await _error_sequence(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
        await client.post("/_sandbox/reset")
    assert await _error_sequence(app) == first


def test_fault_draw_consumes_a_fixed_amount_of_randomness_and_bounds_jitter():
    a, b = FaultState(seed=1, salt="x"), FaultState(seed=1, salt="x")
    b.update("us", {"latency_ms": 50.0, "latency_jitter_ms": 10.0, "error_rate": 0.3})
    for _ in range(20):
        a.draw("eu")
        b.draw("us")
    assert a.rng.random() == b.rng.random()
    delays = [d.delay_s for d in (b.draw("us") for _ in range(200)) if not d.error]
    assert delays and all(0.040 <= d <= 0.060 for d in delays)
    assert max(delays) - min(delays) > 0.005


def test_currency_conversion_uses_iso_4217_exponents():
    assert iso.to_minor("10.99", "EUR") == 1099
    assert iso.to_minor("10", "EUR") == 1000
    assert iso.to_minor("1000", "JPY") == 1000
    assert iso.to_minor("10.5", "JPY") is None
    assert iso.to_minor("1.234", "KWD") == 1234
    assert iso.to_minor("1.2345", "KWD") is None
    assert iso.to_minor("1e3", "EUR") is None
    assert iso.to_major(1099, "EUR") == "10.99"
    assert iso.to_major(5, "EUR") == "0.05"
    assert iso.to_major(1000, "JPY") == "1000"
    assert iso.to_major(1234, "BHD") == "1.234"
    assert iso.normalize("eur") == "EUR" and iso.normalize("XYZ") is None


def test_tokens():
    assert token_outcome("pm_card_visa") is TokenOutcome.APPROVED
    assert token_outcome("pm_card_declined") is TokenOutcome.DECLINED
    assert token_outcome("pm_card_insufficient_funds") is TokenOutcome.INSUFFICIENT_FUNDS
    assert token_outcome("pm_card_processing_error") is TokenOutcome.PROCESSING_ERROR
    assert token_outcome("tok_anything") is TokenOutcome.APPROVED
    assert token_outcome("4242 4242 4242 4242") is TokenOutcome.INVALID
    assert looks_like_pan("4000056655665556")
    assert not looks_like_pan("4242424242424241")  # fails Luhn
    assert not looks_like_pan("123456789012")  # too short

"""The payment path end to end: real orchestrator process, real sandbox gateway processes, Postgres."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.e2e.helpers import charges_for, payment_body, set_fault

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("country, currency, region", [("DE", "EUR", "eu"), ("US", "USD", "us"),
                                                        ("JP", "JPY", "apac"), ("GB", "GBP", "eu")])
async def test_a_payment_succeeds_in_each_region_at_an_endpoint_of_that_region(api, sandboxes, country, currency,
                                                                              region):
    response = await api.post("/v1/payments", json=payment_body(country=country, currency=currency))

    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "succeeded"
    assert payment["region"] == region.upper()
    assert payment["object"] == "payment" and payment["id"].startswith("pay_")
    [charge] = charges_for(sandboxes.urls, payment["id"])
    assert charge["region"] == region
    assert charge["provider"] == payment["provider"]
    assert charge["amount"] == 1099 and charge["currency"] == currency
    assert payment["provider_reference"]
    assert payment["attempts"][-1]["outcome"] == "succeeded"


@pytest.mark.parametrize("token, code", [("pm_card_declined", "card_declined"),
                                         ("pm_card_insufficient_funds", "insufficient_funds")])
async def test_a_hard_decline_fails_without_trying_elsewhere(api, sandboxes, token, code):
    response = await api.post("/v1/payments", json=payment_body(payment_method=token))

    assert response.status_code == 201
    payment = response.json()
    assert payment["status"] == "failed"
    assert payment["failure"]["code"] == code and payment["failure"]["decline"] is True
    assert len(payment["attempts"]) == 1
    assert payment["attempts"][0]["error_class"] == "hard_decline"
    assert charges_for(sandboxes.urls, payment["id"]) == []


async def test_a_soft_decline_moves_to_the_next_provider(api, sandboxes):
    response = await api.post("/v1/payments", json=payment_body(payment_method="pm_card_processing_error"))

    payment = response.json()
    providers_tried = [a["provider"] for a in payment["attempts"]]
    assert providers_tried == payment["route"]["candidates"]
    assert len(providers_tried) == 3
    assert all(a["error_class"] == "soft_decline" for a in payment["attempts"])
    assert payment["status"] == "failed"
    assert payment["failure"] == {"code": "processing_error", "message": payment["failure"]["message"],
                                  "decline": True}
    assert charges_for(sandboxes.urls, payment["id"]) == []


async def test_a_provider_error_fails_over_and_charges_once(api, sandboxes):
    set_fault(sandboxes.urls["stripe"], "eu", error_rate=1.0, error_status=503)

    payment = (await api.post("/v1/payments", json=payment_body())).json()

    assert payment["status"] == "succeeded"
    assert payment["attempts"][0]["provider"] == "stripe"
    assert payment["attempts"][0]["error_class"] == "transient"
    assert payment["attempts"][0]["http_status"] == 503
    assert payment["provider"] != "stripe"
    [charge] = charges_for(sandboxes.urls, payment["id"])
    assert charge["provider"] == payment["provider"]


async def test_a_dropped_connection_is_resolved_at_the_same_provider(api, sandboxes):
    set_fault(sandboxes.urls["stripe"], "us", reset_rate=1.0)

    payment = (await api.post("/v1/payments", json=payment_body(country="US", currency="USD"))).json()

    # Stripe never answered, so no other provider may be tried until Stripe confirms nothing was charged.
    assert payment["status"] == "processing"
    assert {a["provider"] for a in payment["attempts"]} == {"stripe"}
    assert payment["attempts"][0]["error_class"] == "ambiguous"
    assert charges_for(sandboxes.urls, payment["id"]) == []


async def test_a_timed_out_charge_is_recovered_by_replay_not_charged_twice(api, sandboxes):
    set_fault(sandboxes.urls["stripe"], "apac", timeout_rate=1.0)

    payment = (await api.post("/v1/payments", json=payment_body(country="SG", currency="SGD"))).json()

    assert payment["status"] == "succeeded"
    assert payment["provider"] == "stripe"
    kinds = [a["kind"] for a in payment["attempts"]]
    assert kinds[0] == "charge" and kinds[-1] == "replay"
    assert len(charges_for(sandboxes.urls, payment["id"])) == 1


async def test_a_card_number_is_refused_and_stored_nowhere(api, database_url):
    pan = "4242424242424242"
    for body in (payment_body(payment_method=pan), payment_body(description=f"card 4242 4242 4242 4242"),
                 payment_body(metadata={"note": pan})):
        response = await api.post("/v1/payments", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "pan_not_accepted"
        assert pan not in response.text and "4242 4242" not in response.text

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        tables = (await connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars().all()
        for table in tables:
            rows = (await connection.execute(text(f'SELECT * FROM "{table}"'))).all()
            assert pan not in repr(rows) and "4242 4242 4242 4242" not in repr(rows), table
    await engine.dispose()


async def test_replaying_an_idempotency_key_returns_the_same_payment(api, sandboxes):
    headers = {"Idempotency-Key": "order-42-first"}
    first = await api.post("/v1/payments", json=payment_body(), headers=headers)
    second = await api.post("/v1/payments", json=payment_body(), headers=headers)

    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert second.status_code == 200 and second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert len(charges_for(sandboxes.urls, first.json()["id"])) == 1


async def test_reusing_an_idempotency_key_with_another_body_is_refused(api):
    headers = {"Idempotency-Key": "order-43"}
    await api.post("/v1/payments", json=payment_body(amount=500), headers=headers)
    response = await api.post("/v1/payments", json=payment_body(amount=501), headers=headers)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


async def test_twenty_concurrent_requests_with_one_key_charge_once(api, sandboxes):
    headers = {"Idempotency-Key": "order-44-concurrent"}
    responses = await asyncio.gather(*[api.post("/v1/payments", json=payment_body(), headers=headers)
                                       for _ in range(20)])

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1
    assert set(statuses) <= {200, 201, 409}
    ids = {r.json()["id"] for r in responses if r.status_code in (200, 201)}
    assert len(ids) == 1
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert len(charges_for(sandboxes.urls, ids.pop())) == 1


async def test_another_merchants_payment_is_not_found(api, other_api):
    payment = (await api.post("/v1/payments", json=payment_body())).json()

    assert (await api.get(f"/v1/payments/{payment['id']}")).status_code == 200
    response = await other_api.get(f"/v1/payments/{payment['id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
    listed = (await other_api.get("/v1/payments", params={"limit": 100})).json()
    assert payment["id"] not in {p["id"] for p in listed["data"]}
    refund = await other_api.post(f"/v1/payments/{payment['id']}/refunds", json={})
    assert refund.status_code == 404


async def test_payments_are_listed_newest_first_with_a_cursor(other_api):
    created = [(await other_api.post("/v1/payments", json=payment_body(amount=100 + i))).json()["id"]
               for i in range(5)]
    page1 = (await other_api.get("/v1/payments", params={"limit": 3})).json()
    page2 = (await other_api.get("/v1/payments", params={"limit": 3,
                                                          "starting_after": page1["data"][-1]["id"]})).json()

    assert page1["object"] == "list" and page1["has_more"] is True
    seen = [p["id"] for p in page1["data"] + page2["data"]]
    assert seen[:5] == list(reversed(created))
    assert len(seen) == len(set(seen))


async def test_refunds_full_partial_and_too_much(api, sandboxes):
    payment = (await api.post("/v1/payments", json=payment_body(amount=2000, country="FR"))).json()
    url = f"/v1/payments/{payment['id']}/refunds"

    partial = await api.post(url, json={"amount": 500})
    assert partial.status_code == 201, partial.text
    assert partial.json()["status"] == "succeeded" and partial.json()["provider"] == payment["provider"]
    too_much = await api.post(url, json={"amount": 1501})
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "refund_exceeds_remaining"
    rest = await api.post(url, json={})
    assert rest.status_code == 201 and rest.json()["amount"] == 1500
    nothing_left = await api.post(url, json={"amount": 1})
    assert nothing_left.json()["error"]["code"] == "refund_exceeds_remaining"

    [charge] = charges_for(sandboxes.urls, payment["id"])
    assert charge["provider"] == payment["provider"]
    assert charge["refunded_amount"] == 2000 and charge["status"] == "refunded"
    assert (await api.get(f"/v1/payments/{payment['id']}")).json()["amount_refunded"] == 2000


@pytest.mark.parametrize("country, currency", [("DE", "EUR"), ("US", "USD"), ("AU", "AUD")])
async def test_refunds_reach_the_provider_that_charged(api, sandboxes, country, currency):
    # Make each provider the charging one in turn by failing the ones before it.
    for provider in ("stripe", "adyen", "braintree"):
        payment = (await api.post("/v1/payments", json=payment_body(country=country, currency=currency))).json()
        assert payment["status"] == "succeeded"
        refund = await api.post(f"/v1/payments/{payment['id']}/refunds", json={"amount": 99},
                                headers={"Idempotency-Key": f"refund-{payment['id']}"})
        assert refund.status_code == 201 and refund.json()["provider"] == payment["provider"]
        [charge] = charges_for(sandboxes.urls, payment["id"])
        assert charge["provider"] == payment["provider"] and charge["refunded_amount"] == 99
        assert charge["currency"] == currency and charge["amount"] == payment["amount"]
        set_fault(sandboxes.urls[provider], country_region(country), error_rate=1.0, error_status=503)


def country_region(country: str) -> str:
    return {"DE": "eu", "US": "us", "AU": "apac"}[country]


async def test_a_failed_payment_cannot_be_refunded(api):
    payment = (await api.post("/v1/payments", json=payment_body(payment_method="pm_card_declined"))).json()
    response = await api.post(f"/v1/payments/{payment['id']}/refunds", json={})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "payment_not_refundable"


async def test_a_real_currency_no_provider_takes_fails_with_no_route(api, sandboxes):
    response = await api.post("/v1/payments", json=payment_body(currency="BRL"))
    assert response.status_code == 201
    payment = response.json()
    assert payment["status"] == "failed" and payment["failure"]["code"] == "no_route"
    assert payment["attempts"] == []

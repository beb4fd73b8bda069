from __future__ import annotations

import asyncio
import time

import pytest

AUTH = {"Authorization": "Bearer sk_test_51Sandbox"}


def intent_form(payment_id: str = "pay_1", token: str = "pm_card_visa", amount: int = 1099, currency: str = "eur", **extra):
    form = {
        "amount": str(amount),
        "currency": currency,
        "payment_method": token,
        "confirm": "true",
        "payment_method_types[]": "card",
        "metadata[payment_id]": payment_id,
        "description": "order 42",
    }
    form.update(extra)
    return form


async def charge(client, region="eu", key=None, **kwargs):
    headers = dict(AUTH)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(f"/{region}/v1/payment_intents", data=intent_form(**kwargs), headers=headers)


async def ledger(client):
    response = await client.get("/_sandbox/ledger")
    assert response.status_code == 200
    return response.json()["charges"]


async def test_successful_charge_is_a_succeeded_intent_and_a_ledger_entry(stripe):
    response = await charge(stripe, region="eu", key="key-1", payment_id="pay_abc")
    assert response.status_code == 200
    intent = response.json()
    assert intent["object"] == "payment_intent"
    assert intent["id"].startswith("pi_")
    assert intent["status"] == "succeeded"
    assert intent["amount"] == 1099 and intent["currency"] == "eur"
    assert intent["latest_charge"].startswith("ch_")
    assert intent["metadata"] == {"payment_id": "pay_abc"}
    assert isinstance(intent["created"], int)
    assert response.headers["request-id"].startswith("req_")
    assert "idempotent-replayed" not in response.headers
    [entry] = await ledger(stripe)
    assert entry["id"] == intent["id"]
    assert entry["region"] == "eu"
    assert entry["amount"] == 1099 and entry["currency"] == "EUR"
    assert entry["reference"] == "pay_abc"
    assert entry["idempotency_key"] == "key-1"
    assert entry["status"] == "succeeded" and entry["refunded_amount"] == 0


@pytest.mark.parametrize(
    ("token", "code", "decline_code"),
    [
        ("pm_card_declined", "card_declined", "generic_decline"),
        ("pm_card_insufficient_funds", "card_declined", "insufficient_funds"),
        ("pm_card_processing_error", "processing_error", None),
    ],
)
async def test_decline_tokens_give_card_errors_and_charge_nothing(stripe, token, code, decline_code):
    response = await charge(stripe, token=token)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "card_error"
    assert error["code"] == code
    assert error.get("decline_code") == decline_code
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert response.headers["stripe-should-retry"] == "false"
    assert await ledger(stripe) == []


async def test_unknown_token_is_approved_and_card_number_is_refused_without_echo(stripe):
    assert (await charge(stripe, token="pm_some_other_token")).status_code == 200
    response = await charge(stripe, token="4242424242424242", payment_id="pay_pan")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "4242424242424242" not in response.text
    assert [c["reference"] for c in await ledger(stripe)] == ["pay_1"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer pk_test_123"}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic"}],
)
async def test_missing_or_malformed_key_is_401_in_stripe_shape(stripe, headers):
    response = await stripe.post("/eu/v1/payment_intents", data=intent_form(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert await ledger(stripe) == []


async def test_restricted_and_live_keys_are_accepted(stripe):
    for key in ("rk_test_abc", "sk_live_abc", "rk_live_abc"):
        response = await stripe.post(
            "/us/v1/payment_intents", data=intent_form(payment_id=key), headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.text


async def test_same_key_same_params_replays_without_charging_again(stripe):
    first = await charge(stripe, key="idem-1")
    second = await charge(stripe, key="idem-1")
    assert second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert len(await ledger(stripe)) == 1


async def test_declined_response_is_replayed_too(stripe):
    first = await charge(stripe, key="idem-d", token="pm_card_declined")
    second = await charge(stripe, key="idem-d", token="pm_card_declined")
    assert first.status_code == second.status_code == 402
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"


async def test_same_key_other_params_is_idempotency_error(stripe):
    await charge(stripe, key="idem-2", amount=1000)
    response = await charge(stripe, key="idem-2", amount=2000)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"
    assert [c["amount"] for c in await ledger(stripe)] == [1000]


async def test_key_is_scoped_to_its_region(stripe):
    await charge(stripe, region="eu", key="idem-r")
    response = await charge(stripe, region="us", key="idem-r")
    assert response.status_code == 200 and "idempotent-replayed" not in response.headers
    assert sorted(c["region"] for c in await ledger(stripe)) == ["eu", "us"]


async def test_key_longer_than_255_is_rejected(stripe):
    response = await charge(stripe, key="k" * 256)
    assert response.status_code == 400
    assert await ledger(stripe) == []


async def test_concurrent_request_with_executing_key_gets_409(stripe):
    await stripe.put("/_sandbox/faults/eu", json={"latency_ms": 150})
    first, second = await asyncio.gather(charge(stripe, key="idem-c"), charge(stripe, key="idem-c"))
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409]
    conflict = first if first.status_code == 409 else second
    assert conflict.json()["error"]["code"] == "idempotency_key_in_use"
    assert len(await ledger(stripe)) == 1
    # Once the first finished, the key replays.
    replay = await charge(stripe, key="idem-c")
    assert replay.headers["idempotent-replayed"] == "true"


async def test_invalid_params_are_400_and_not_saved(stripe):
    bad = await stripe.post(
        "/eu/v1/payment_intents", data={**intent_form(), "amount": "ten"}, headers={**AUTH, "Idempotency-Key": "v"}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "parameter_invalid_integer"
    good = await charge(stripe, key="v")
    assert good.status_code == 200 and "idempotent-replayed" not in good.headers
    unknown = await stripe.post("/eu/v1/payment_intents", data={**intent_form(), "bogus": "1"}, headers=AUTH)
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "bogus"
    currency = await stripe.post("/eu/v1/payment_intents", data=intent_form(currency="xyz"), headers=AUTH)
    assert currency.status_code == 400 and currency.json()["error"]["param"] == "currency"


async def test_unconfirmed_intent_moves_no_money(stripe):
    response = await stripe.post("/eu/v1/payment_intents", data={**intent_form(), "confirm": "false"}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["status"] == "requires_confirmation"
    assert await ledger(stripe) == []


async def test_get_intent_by_id(stripe):
    intent = (await charge(stripe, region="eu")).json()
    found = await stripe.get(f"/eu/v1/payment_intents/{intent['id']}", headers=AUTH)
    assert found.status_code == 200 and found.json() == intent
    other_region = await stripe.get(f"/us/v1/payment_intents/{intent['id']}", headers=AUTH)
    assert other_region.status_code == 404
    missing = await stripe.get("/eu/v1/payment_intents/pi_missing", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    declined = (await charge(stripe, token="pm_card_declined")).json()["error"]["payment_intent"]
    again = await stripe.get(f"/eu/v1/payment_intents/{declined['id']}", headers=AUTH)
    assert again.json()["status"] == "requires_payment_method"


async def test_search_by_payment_id_finds_only_charges_that_moved_money(stripe):
    intent = (await charge(stripe, payment_id="pay_found")).json()
    await charge(stripe, payment_id="pay_declined", token="pm_card_declined")
    query = {"query": "metadata['payment_id']:'pay_found'"}
    found = await stripe.get("/eu/v1/payment_intents/search", params=query, headers=AUTH)
    assert found.status_code == 200
    body = found.json()
    assert body["object"] == "search_result" and body["has_more"] is False
    assert [i["id"] for i in body["data"]] == [intent["id"]]
    double_quoted = await stripe.get(
        "/eu/v1/payment_intents/search", params={"query": 'metadata["payment_id"]:"pay_found"'}, headers=AUTH
    )
    assert len(double_quoted.json()["data"]) == 1
    for region, payment_id in (("eu", "pay_declined"), ("us", "pay_found")):
        empty = await stripe.get(
            f"/{region}/v1/payment_intents/search",
            params={"query": f"metadata['payment_id']:'{payment_id}'"},
            headers=AUTH,
        )
        assert empty.json()["data"] == []
    quoted = (await charge(stripe, payment_id="pay_o'neil")).json()
    escaped = await stripe.get(
        "/eu/v1/payment_intents/search", params={"query": "metadata['payment_id']:'pay_o\\'neil'"}, headers=AUTH
    )
    assert [i["id"] for i in escaped.json()["data"]] == [quoted["id"]]
    bad = await stripe.get("/eu/v1/payment_intents/search", params={"query": "amount>10"}, headers=AUTH)
    assert bad.status_code == 400


async def refund(client, intent_id, amount=None, key=None, region="eu", refund_id="re_ours_1"):
    data = {"payment_intent": intent_id, "metadata[refund_id]": refund_id}
    if amount is not None:
        data["amount"] = str(amount)
    headers = dict(AUTH)
    if key:
        headers["Idempotency-Key"] = key
    return await client.post(f"/{region}/v1/refunds", data=data, headers=headers)


async def test_refunds_partial_then_rest_then_nothing_left(stripe):
    intent = (await charge(stripe, amount=1000)).json()
    partial = await refund(stripe, intent["id"], amount=300)
    assert partial.status_code == 200
    body = partial.json()
    assert body["object"] == "refund" and body["status"] == "succeeded"
    assert body["amount"] == 300 and body["payment_intent"] == intent["id"] and body["currency"] == "eur"
    [entry] = await ledger(stripe)
    assert entry["status"] == "partially_refunded" and entry["refunded_amount"] == 300
    rest = await refund(stripe, intent["id"])
    assert rest.status_code == 200 and rest.json()["amount"] == 700
    [entry] = await ledger(stripe)
    assert entry["status"] == "refunded" and entry["refunded_amount"] == 1000
    again = await refund(stripe, intent["id"], amount=1)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "charge_already_refunded"


async def test_over_refund_is_refused_and_changes_nothing(stripe):
    intent = (await charge(stripe, amount=1000)).json()
    response = await refund(stripe, intent["id"], amount=1001)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "amount_too_large"
    [entry] = await ledger(stripe)
    assert entry["refunded_amount"] == 0 and entry["status"] == "succeeded"


async def test_refund_idempotency(stripe):
    intent = (await charge(stripe, amount=1000)).json()
    first = await refund(stripe, intent["id"], amount=400, key="rk-1")
    second = await refund(stripe, intent["id"], amount=400, key="rk-1")
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    other = await refund(stripe, intent["id"], amount=500, key="rk-1")
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    [entry] = await ledger(stripe)
    assert entry["refunded_amount"] == 400


async def test_refund_of_unknown_or_declined_intent(stripe):
    missing = await refund(stripe, "pi_nope", amount=1)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "resource_missing"
    declined = (await charge(stripe, token="pm_card_declined")).json()["error"]["payment_intent"]
    response = await refund(stripe, declined["id"])
    assert response.status_code == 400
    assert await ledger(stripe) == []


async def test_error_fault_is_api_error_charges_nothing_and_saves_nothing(stripe):
    await stripe.put("/_sandbox/faults/eu", json={"error_rate": 1.0, "error_status": 503})
    response = await charge(stripe, key="idem-e")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "api_error"
    assert response.headers["stripe-should-retry"] == "true"
    assert await ledger(stripe) == []
    # Other regions are unaffected.
    assert (await charge(stripe, region="us")).status_code == 200
    await stripe.delete("/_sandbox/faults")
    retry = await charge(stripe, key="idem-e")
    assert retry.status_code == 200 and "idempotent-replayed" not in retry.headers
    assert sorted(c["region"] for c in await ledger(stripe)) == ["eu", "us"]


async def test_error_fault_429_is_rate_limit(stripe):
    await stripe.put("/_sandbox/faults/us", json={"error_rate": 1.0, "error_status": 429})
    response = await charge(stripe, region="us")
    assert response.status_code == 429
    assert response.json()["error"] == {**response.json()["error"], "type": "invalid_request_error", "code": "rate_limit"}
    assert "retry-after" in response.headers


async def test_reset_fault_in_process_surfaces_as_connection_reset(stripe):
    await stripe.put("/_sandbox/faults/apac", json={"reset_rate": 1.0})
    with pytest.raises(ConnectionResetError):
        await charge(stripe, region="apac")
    assert await ledger(stripe) == []


async def test_timeout_fault_records_then_holds_and_replay_is_immediate(stripe, stripe_app):
    await stripe.put("/_sandbox/faults/eu", json={"timeout_rate": 1.0})
    started = time.monotonic()
    first = await charge(stripe, key="idem-t", payment_id="pay_t")
    held = time.monotonic() - started
    assert held >= stripe_app.gateway.timeout_hold_s * 0.9
    assert first.status_code == 200
    assert [c["reference"] for c in await ledger(stripe)] == ["pay_t"]
    await stripe.delete("/_sandbox/faults")
    started = time.monotonic()
    replay = await charge(stripe, key="idem-t", payment_id="pay_t")
    assert time.monotonic() - started < 0.1
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.json()


async def test_latency_fault_delays_lookups(stripe):
    await stripe.put("/_sandbox/faults/us", json={"latency_ms": 120, "latency_jitter_ms": 10})
    started = time.monotonic()
    response = await stripe.get("/us/v1/payment_intents/pi_x", headers=AUTH)
    assert response.status_code == 404
    assert time.monotonic() - started >= 0.1
    started = time.monotonic()
    await stripe.get("/eu/v1/payment_intents/pi_x", headers=AUTH)
    assert time.monotonic() - started < 0.1


async def test_unknown_region_and_route_are_404_in_stripe_shape(stripe):
    response = await stripe.post("/mars/v1/payment_intents", data=intent_form(), headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert (await stripe.get("/eu/v1/customers", headers=AUTH)).status_code == 404

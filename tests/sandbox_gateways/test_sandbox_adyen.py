from __future__ import annotations

import asyncio

import pytest

AUTH = {"X-API-Key": "AQE_sandbox_key"}


def payment_body(reference="pay_1", token="pm_card_visa", value=1099, currency="EUR"):
    return {
        "amount": {"currency": currency, "value": value},
        "reference": reference,
        "merchantAccount": "AcmeECOM",
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": token},
        "shopperReference": "merchant_1",
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "UnscheduledCardOnFile",
        "countryCode": "DE",
    }


async def pay(client, region="eu", version="v72", key=None, **kwargs):
    headers = dict(AUTH)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(f"/{region}/{version}/payments", json=payment_body(**kwargs), headers=headers)


async def refund(client, psp, value, region="eu", key=None, currency="EUR", reference="re_1"):
    headers = dict(AUTH)
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"amount": {"value": value, "currency": currency}, "merchantAccount": "AcmeECOM", "reference": reference}
    return await client.post(f"/{region}/v72/payments/{psp}/refunds", json=body, headers=headers)


async def ledger(client):
    return (await client.get("/_sandbox/ledger")).json()["charges"]


async def test_authorised_payment_is_in_the_ledger(adyen):
    response = await pay(adyen, region="us", key="k1", reference="pay_a", currency="USD", value=500)
    assert response.status_code == 200
    body = response.json()
    assert body["resultCode"] == "Authorised"
    assert len(body["pspReference"]) == 16
    assert body["merchantReference"] == "pay_a"
    assert body["amount"] == {"currency": "USD", "value": 500}
    [entry] = await ledger(adyen)
    assert entry["id"] == body["pspReference"]
    assert (entry["region"], entry["amount"], entry["currency"]) == ("us", 500, "USD")
    assert entry["reference"] == "pay_a" and entry["idempotency_key"] == "k1"


@pytest.mark.parametrize(
    ("token", "reason", "code"),
    [
        ("pm_card_declined", "Refused", "2"),
        ("pm_card_insufficient_funds", "Not enough balance", "12"),
        ("pm_card_processing_error", "Acquirer Error", "4"),
    ],
)
async def test_refusals(adyen, token, reason, code):
    response = await pay(adyen, token=token)
    assert response.status_code == 200
    body = response.json()
    assert body["resultCode"] == "Refused"
    assert body["refusalReason"] == reason and body["refusalReasonCode"] == code
    assert await ledger(adyen) == []


async def test_v71_is_accepted_and_other_versions_are_not(adyen):
    assert (await pay(adyen, version="v71")).status_code == 200
    assert (await pay(adyen, version="v70")).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "   "}])
async def test_missing_api_key_is_401_security_error(adyen, headers):
    response = await adyen.post("/eu/v72/payments", json=payment_body(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "status": 401,
        "errorCode": "000",
        "message": "HTTP Status Response - Unauthorized",
        "errorType": "security",
    }


async def test_validation_errors(adyen):
    body = payment_body()
    del body["reference"]
    response = await adyen.post("/eu/v72/payments", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["errorCode"] == "130" and response.json()["errorType"] == "validation"
    bad_json = await adyen.post("/eu/v72/payments", content=b"{nope", headers=AUTH)
    assert bad_json.status_code == 400
    bad_amount = await pay(adyen, value=0)
    assert bad_amount.status_code == 422 and bad_amount.json()["errorCode"] == "137"
    pan = await pay(adyen, token="4111111111111111")
    assert pan.status_code == 422 and "4111111111111111" not in pan.text
    assert await ledger(adyen) == []


async def test_idempotent_replay_and_704_on_other_body(adyen):
    first = await pay(adyen, key="idem-1")
    second = await pay(adyen, key="idem-1")
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "idem-1"
    other = await pay(adyen, key="idem-1", value=2000)
    assert other.status_code == 422
    assert other.json()["errorCode"] == "704"
    assert other.json()["message"] == "request already processed or in progress"
    assert len(await ledger(adyen)) == 1


async def test_key_longer_than_64_is_rejected(adyen):
    response = await pay(adyen, key="k" * 65)
    assert response.status_code == 422
    assert await ledger(adyen) == []
    assert (await pay(adyen, key="k" * 64)).status_code == 200


async def test_refunds_partial_full_and_over(adyen):
    psp = (await pay(adyen, value=1000)).json()["pspReference"]
    partial = await refund(adyen, psp, 400)
    assert partial.status_code == 201
    body = partial.json()
    assert body["status"] == "received" and body["paymentPspReference"] == psp
    assert body["amount"] == {"value": 400, "currency": "EUR"} and body["reference"] == "re_1"
    [entry] = await ledger(adyen)
    assert entry["status"] == "partially_refunded" and entry["refunded_amount"] == 400
    over = await refund(adyen, psp, 601)
    assert over.status_code == 422 and over.json()["errorType"] == "validation"
    rest = await refund(adyen, psp, 600)
    assert rest.status_code == 201
    [entry] = await ledger(adyen)
    assert entry["status"] == "refunded" and entry["refunded_amount"] == 1000
    assert (await refund(adyen, psp, 1)).status_code == 422


async def test_refund_of_unknown_payment_or_other_region(adyen):
    psp = (await pay(adyen, region="eu")).json()["pspReference"]
    assert (await refund(adyen, "NOPE000000000000", 100)).status_code == 422
    assert (await refund(adyen, psp, 100, region="us")).status_code == 422
    refused = (await pay(adyen, token="pm_card_declined")).json()["pspReference"]
    assert (await refund(adyen, refused, 100)).status_code == 422
    assert (await ledger(adyen))[0]["refunded_amount"] == 0


async def test_refund_idempotency(adyen):
    psp = (await pay(adyen, value=1000)).json()["pspReference"]
    first = await refund(adyen, psp, 300, key="rk")
    second = await refund(adyen, psp, 300, key="rk")
    assert second.json() == first.json() and second.status_code == 201
    assert (await refund(adyen, psp, 301, key="rk")).json()["errorCode"] == "704"
    assert (await ledger(adyen))[0]["refunded_amount"] == 300


async def test_error_fault_in_adyen_error_format(adyen):
    await adyen.put("/_sandbox/faults/eu", json={"error_rate": 1.0, "error_status": 500})
    response = await pay(adyen, key="e1")
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500 and body["errorType"] == "internal" and "errorCode" in body
    assert await ledger(adyen) == []
    await adyen.delete("/_sandbox/faults")
    assert "idempotent-replayed" not in (await pay(adyen, key="e1")).headers


async def test_same_key_while_the_first_is_executing_is_704(adyen):
    await adyen.put("/_sandbox/faults/eu", json={"latency_ms": 150})
    first, second = await asyncio.gather(pay(adyen, key="idem-f"), pay(adyen, key="idem-f"))
    codes = sorted(r.json().get("errorCode", "") for r in (first, second))
    assert codes == ["", "704"]
    assert len(await ledger(adyen)) == 1

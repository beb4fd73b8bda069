"""Adyen Checkout mapping: requests as Adyen documents them, and every recorded answer classified."""

from __future__ import annotations

import json

import httpx
import pytest

from orchestrator.providers import adyen
from orchestrator.providers.adyen import AdyenAdapter
from orchestrator.providers.base import LookupState, Outcome, ProviderAdapter
from tests.providers.provider_recordings import ADYEN_SECRET, FAST, recorded


def _with(request, **changes):
    fields = {name: getattr(request, name) for name in type(request).__dataclass_fields__}
    return type(request)(**{**fields, **changes})


def test_charge_request(adyen_endpoint, charge_request):
    req = adyen.build_charge_request(adyen_endpoint, charge_request)
    assert req.method == "POST"
    assert req.url == "http://127.0.0.1:8102/eu/v72/payments"
    assert req.form is None
    assert req.json == {
        "amount": {"currency": "EUR", "value": 1099},
        "reference": "pay_123",
        "merchantAccount": "SandboxMerchantEU",
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": "pm_card_visa"},
        "shopperReference": "mer_7",
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "UnscheduledCardOnFile",
        "countryCode": "DE",
    }
    assert req.headers == {"X-API-Key": ADYEN_SECRET, "Idempotency-Key": "att_42"}
    assert ADYEN_SECRET not in repr(req)


def test_refund_request(adyen_endpoint, refund_request):
    req = adyen.build_refund_request(adyen_endpoint, _with(refund_request, provider_reference="V4HZ4RBFJGXXGN82"))
    assert req.url == "http://127.0.0.1:8102/eu/v72/payments/V4HZ4RBFJGXXGN82/refunds"
    assert req.json == {
        "amount": {"value": 500, "currency": "EUR"},
        "merchantAccount": "SandboxMerchantEU",
        "reference": "re_ours_1",
    }
    assert req.headers["Idempotency-Key"] == "rfa_1"
    odd = adyen.build_refund_request(adyen_endpoint, _with(refund_request, provider_reference="a/b?c"))
    assert odd.url.endswith("/v72/payments/a%2Fb%3Fc/refunds")


def test_idempotency_key_is_at_most_64_characters(adyen_endpoint, charge_request):
    adyen.build_charge_request(adyen_endpoint, _with(charge_request, idempotency_key="k" * 64))
    with pytest.raises(adyen.RequestBuildError) as caught:
        adyen.build_charge_request(adyen_endpoint, _with(charge_request, idempotency_key="k" * 65))
    assert caught.value.code == "idempotency_key_too_long"


@pytest.mark.parametrize(
    "endpoint_change, request_change, code",
    [
        ({"credentials": None}, {}, "missing_credentials"),
        ({"merchant_account": ""}, {}, "missing_merchant_account"),
        ({}, {"merchant_id": ""}, "missing_shopper_reference"),
        ({}, {"idempotency_key": "x" * 100}, "idempotency_key_too_long"),
    ],
)
async def test_unbuildable_requests_are_config_errors_and_never_sent(
    adyen_endpoint, charge_request, endpoint_change, request_change, code
):
    if "credentials" in endpoint_change:
        endpoint_change = {"credentials": type(adyen_endpoint.credentials)({})}
    endpoint = _with(adyen_endpoint, **endpoint_change)
    request = _with(charge_request, **request_change)

    def explode(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    async with httpx.AsyncClient(transport=httpx.MockTransport(explode)) as client:
        result = await AdyenAdapter(client).charge(endpoint, request, timeout=FAST)
    assert result.outcome is Outcome.CONFIG_ERROR
    assert result.code == code


@pytest.mark.parametrize(
    "case, outcome, code, message",
    [
        ("authorised", Outcome.SUCCEEDED, None, None),
        ("authorised_reason_zero", Outcome.SUCCEEDED, None, None),
        ("refused_generic", Outcome.HARD_DECLINE, "2", "Refused"),
        ("refused_not_enough_balance", Outcome.HARD_DECLINE, "12", "Not enough balance"),
        ("refused_blocked_card", Outcome.HARD_DECLINE, "5", "Blocked Card"),
        ("refused_expired_card", Outcome.HARD_DECLINE, "6", "Expired Card"),
        ("refused_cvc_declined", Outcome.HARD_DECLINE, "24", "CVC Declined"),
        ("refused_acquirer_error", Outcome.SOFT_DECLINE, "4", "Acquirer Error"),
        ("refused_issuer_unavailable", Outcome.SOFT_DECLINE, "9", "Issuer Unavailable"),
        ("refused_unlisted_reason", Outcome.HARD_DECLINE, "99", "Something new"),
        ("result_error", Outcome.SOFT_DECLINE, "Error", "Unable to determine variant"),
        ("result_received", Outcome.AMBIGUOUS, "Received", None),
        ("unauthorized", Outcome.CONFIG_ERROR, "000", "HTTP Status Response - Unauthorized"),
        ("forbidden", Outcome.CONFIG_ERROR, "010", "Not allowed"),
        ("validation_error", Outcome.CONFIG_ERROR, "130", "Required field 'reference' is not provided."),
        ("idempotency_conflict", Outcome.AMBIGUOUS, "704", "request already processed or in progress"),
        ("invalid_merchant_account", Outcome.CONFIG_ERROR, "901", "Invalid Merchant Account"),
        ("rate_limited", Outcome.TRANSIENT, "000", "Too many requests"),
        ("internal_error", Outcome.AMBIGUOUS, "000", "An unknown error occurred"),
        ("service_unavailable", Outcome.TRANSIENT, "000", "Unable to process the request: service unavailable"),
    ],
)
def test_payment_answers(case, outcome, code, message):
    status, headers, body = recorded("adyen", case)
    result = adyen.parse_charge_response(status, headers, body)
    assert (result.outcome, result.code, result.message) == (outcome, code, message)
    assert result.http_status == status
    if 200 <= status < 300:
        assert result.provider_reference == body["pspReference"]
        assert result.raw_status == body["resultCode"]


def test_retry_after():
    assert adyen.parse_charge_response(*recorded("adyen", "service_unavailable")).retry_after_s == 3.0
    assert adyen.parse_charge_response(*recorded("adyen", "authorised")).retry_after_s is None


@pytest.mark.parametrize(
    "case, outcome, code, reference",
    [
        ("refund_received", Outcome.SUCCEEDED, None, "JDD6LKT8MBLZNN84"),
        ("refund_invalid_amount", Outcome.HARD_DECLINE, "137", None),
        ("refund_idempotency_conflict", Outcome.AMBIGUOUS, "704", None),
        ("unauthorized", Outcome.CONFIG_ERROR, "000", None),
        ("internal_error", Outcome.AMBIGUOUS, "000", None),
        ("service_unavailable", Outcome.TRANSIENT, "000", None),
    ],
)
def test_refund_answers(case, outcome, code, reference):
    result = adyen.parse_refund_response(*recorded("adyen", case))
    assert (result.outcome, result.code, result.provider_reference) == (outcome, code, reference)


def test_a_422_is_a_refusal_for_a_refund_but_our_error_for_a_payment():
    status, headers, body = recorded("adyen", "refund_invalid_amount")
    assert adyen.parse_refund_response(status, headers, body).outcome is Outcome.HARD_DECLINE
    assert adyen.parse_charge_response(status, headers, body).outcome is Outcome.CONFIG_ERROR


async def test_adapter_round_trip(adyen_endpoint, charge_request, refund_request):
    seen: list[httpx.Request] = []
    answers = iter([recorded("adyen", "authorised"), recorded("adyen", "refund_received")])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, headers, body = next(answers)
        return httpx.Response(status, headers=headers, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = AdyenAdapter(client)
        assert isinstance(adapter, ProviderAdapter) and adapter.name == "adyen"
        charge = await adapter.charge(adyen_endpoint, charge_request, timeout=FAST)
        refund = await adapter.refund(
            adyen_endpoint, _with(refund_request, provider_reference=charge.provider_reference), timeout=FAST
        )
        lookup = await adapter.find_charge(adyen_endpoint, "pay_123", timeout=FAST)
    assert charge.outcome is Outcome.SUCCEEDED and charge.provider_reference == "V4HZ4RBFJGXXGN82"
    assert refund.outcome is Outcome.SUCCEEDED and refund.provider_reference == "JDD6LKT8MBLZNN84"
    assert lookup.state is LookupState.UNKNOWN
    assert len(seen) == 2, "find_charge makes no call: Checkout has no search by reference"
    assert seen[0].headers["x-api-key"] == ADYEN_SECRET
    assert seen[0].headers["idempotency-key"] == "att_42"
    assert seen[0].headers["content-type"] == "application/json"
    assert json.loads(seen[0].content) == adyen.build_charge_request(adyen_endpoint, charge_request).json
    assert seen[1].url.path == "/eu/v72/payments/V4HZ4RBFJGXXGN82/refunds"

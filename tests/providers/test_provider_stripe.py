"""Stripe mapping: requests as Stripe documents them, and every recorded answer classified."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest
from tests.providers.provider_recordings import FAST, STRIPE_SECRET, recorded

from orchestrator.providers import stripe
from orchestrator.providers.base import ChargeRequest, LookupState, Outcome, ProviderAdapter
from orchestrator.providers.stripe import StripeAdapter


def test_charge_request_is_form_encoded_with_bracket_keys(stripe_endpoint, charge_request):
    req = stripe.build_charge_request(stripe_endpoint, charge_request)
    assert req.method == "POST"
    assert req.url == "http://127.0.0.1:8101/eu/v1/payment_intents"
    assert req.json is None
    assert req.form == (
        ("amount", "1099"),
        ("currency", "eur"),
        ("payment_method", "pm_card_visa"),
        ("confirm", "true"),
        ("payment_method_types[]", "card"),
        ("description", "order 42"),
        ("metadata[payment_id]", "pay_123"),
        ("metadata[order_id]", "42"),
    )
    assert req.headers == {
        "Authorization": f"Bearer {STRIPE_SECRET}",
        "Stripe-Version": "2024-06-20",
        "Idempotency-Key": "att_42",
    }


def test_our_payment_id_wins_over_merchant_metadata(stripe_endpoint, charge_request):
    sneaky = ChargeRequest(**{**_fields(charge_request), "metadata": {"payment_id": "pay_other", "a": "1"}, "description": None})
    form = stripe.build_charge_request(stripe_endpoint, sneaky).form
    assert ("metadata[payment_id]", "pay_123") in form
    assert ("metadata[payment_id]", "pay_other") not in form
    assert not any(k == "description" for k, _ in form)


def test_refund_request(stripe_endpoint, refund_request):
    req = stripe.build_refund_request(stripe_endpoint, refund_request)
    assert req.url == "http://127.0.0.1:8101/eu/v1/refunds"
    assert req.form == (
        ("payment_intent", "pi_3MtwBwLkdIwHu7ix28a3tqPa"),
        ("amount", "500"),
        ("metadata[refund_id]", "re_ours_1"),
    )
    assert req.headers["Idempotency-Key"] == "rfa_1"


def test_search_request_uses_stripe_query_language(stripe_endpoint):
    req = stripe.build_search_request(stripe_endpoint, "pay_123")
    assert req.method == "GET"
    assert req.url == "http://127.0.0.1:8101/eu/v1/payment_intents/search"
    assert req.params == {"query": "metadata['payment_id']:'pay_123'"}
    assert "Idempotency-Key" not in req.headers
    assert stripe.search_query("pay_'x\\") == "metadata['payment_id']:'pay_\\'x\\\\'"


def test_no_secret_in_reprs(stripe_endpoint, charge_request):
    req = stripe.build_charge_request(stripe_endpoint, charge_request)
    assert STRIPE_SECRET not in repr(req)
    assert STRIPE_SECRET not in repr(stripe_endpoint)


@pytest.mark.parametrize(
    "case, outcome, code, reference, raw_status",
    [
        ("charge_succeeded", Outcome.SUCCEEDED, None, "pi_3MtwBwLkdIwHu7ix28a3tqPa", "succeeded"),
        ("charge_processing", Outcome.AMBIGUOUS, "processing", "pi_3MtwBwLkdIwHu7ix0processing", "processing"),
        ("charge_requires_action", Outcome.HARD_DECLINE, "requires_action", "pi_3MtwBwLkdIwHu7ix0action", "requires_action"),
        ("charge_declined_in_body", Outcome.SOFT_DECLINE, "issuer_not_available", "pi_3BodyDecline", "requires_payment_method"),
        ("card_declined_generic", Outcome.HARD_DECLINE, "generic_decline", "pi_3MtwBwLkdIwHu7ix1R2GQdXX", "requires_payment_method"),
        ("card_declined_insufficient_funds", Outcome.HARD_DECLINE, "insufficient_funds", "pi_3KiKk8KuuB1fWySn0oTJJX7G", "requires_payment_method"),
        ("card_declined_lost_card", Outcome.HARD_DECLINE, "lost_card", "pi_3Lost", "requires_payment_method"),
        ("card_declined_issuer_not_available", Outcome.SOFT_DECLINE, "issuer_not_available", "pi_3Issuer", "requires_payment_method"),
        ("card_declined_unmapped_decline_code", Outcome.HARD_DECLINE, "some_future_code", None, None),
        ("processing_error", Outcome.SOFT_DECLINE, "processing_error", "pi_3MtwBwLkdIwHu7ix0procErr", "requires_payment_method"),
        ("invalid_api_key", Outcome.CONFIG_ERROR, "invalid_request_error", None, None),
        ("permission_denied", Outcome.CONFIG_ERROR, "invalid_request_error", None, None),
        ("missing_param", Outcome.CONFIG_ERROR, "parameter_missing", None, None),
        ("rate_limited", Outcome.TRANSIENT, "rate_limit", None, None),
        ("rate_limited_error_type", Outcome.TRANSIENT, "rate_limit", None, None),
        ("api_error_500", Outcome.AMBIGUOUS, "api_error", None, None),
        ("api_error_502", Outcome.AMBIGUOUS, None, None, None),
        ("api_error_503", Outcome.TRANSIENT, "api_error", None, None),
        ("idempotency_key_in_use", Outcome.AMBIGUOUS, "idempotency_key_in_use", None, None),
        ("idempotency_key_reused", Outcome.AMBIGUOUS, "idempotency_error", None, None),
    ],
)
def test_charge_answers(case, outcome, code, reference, raw_status):
    status, headers, body = recorded("stripe", case)
    result = stripe.parse_charge_response(status, headers, body)
    assert result.outcome is outcome
    assert result.http_status == status
    assert result.code == code
    assert result.provider_reference == reference
    assert result.raw_status == raw_status
    if outcome in (Outcome.HARD_DECLINE, Outcome.SOFT_DECLINE) and status == 402:
        assert result.message  # a decline carries the provider's message


def test_decline_message_is_stripes():
    result = stripe.parse_charge_response(*recorded("stripe", "card_declined_insufficient_funds"))
    assert result.message == "Your card has insufficient funds."


def test_retry_after_seconds_and_http_date():
    assert stripe.parse_charge_response(*recorded("stripe", "rate_limited")).retry_after_s == 2.0
    dated = stripe.parse_charge_response(*recorded("stripe", "api_error_503"))
    assert dated.retry_after_s == 0.0  # a date in the past means "now"


@pytest.mark.parametrize(
    "case, outcome, code, reference",
    [
        ("refund_succeeded", Outcome.SUCCEEDED, None, "re_1Nispe2eZvKYlo2Cd31jOCgZ"),
        ("refund_pending", Outcome.SUCCEEDED, None, "re_pending"),
        ("refund_failed", Outcome.HARD_DECLINE, "expired_or_canceled_card", "re_failed"),
        ("refund_amount_too_large", Outcome.HARD_DECLINE, "amount_too_large", None),
        ("refund_already_refunded", Outcome.HARD_DECLINE, "charge_already_refunded", None),
        ("invalid_api_key", Outcome.CONFIG_ERROR, "invalid_request_error", None),
        ("api_error_500", Outcome.AMBIGUOUS, "api_error", None),
        ("api_error_503", Outcome.TRANSIENT, "api_error", None),
        ("idempotency_key_in_use", Outcome.AMBIGUOUS, "idempotency_key_in_use", None),
    ],
)
def test_refund_answers(case, outcome, code, reference):
    result = stripe.parse_refund_response(*recorded("stripe", case))
    assert (result.outcome, result.code, result.provider_reference) == (outcome, code, reference)


def test_amount_too_large_means_different_things_per_flow():
    status, headers, body = recorded("stripe", "refund_amount_too_large")
    assert stripe.parse_refund_response(status, headers, body).outcome is Outcome.HARD_DECLINE
    assert stripe.parse_charge_response(status, headers, body).outcome is Outcome.CONFIG_ERROR


@pytest.mark.parametrize(
    "case, state",
    [
        ("search_found", LookupState.CHARGED),
        ("search_empty", LookupState.NOT_CHARGED),
        ("search_declined_only", LookupState.NOT_CHARGED),
        ("search_processing", LookupState.UNKNOWN),
        ("api_error_500", LookupState.UNKNOWN),
        ("invalid_api_key", LookupState.UNKNOWN),
    ],
)
def test_search_answers(case, state):
    result = stripe.parse_search_response(*recorded("stripe", case))
    assert result.state is state
    if state is LookupState.CHARGED:
        assert (result.provider_reference, result.amount, result.currency) == ("pi_3MtwBwLkdIwHu7ix28a3tqPa", 1099, "EUR")


# ------------------------------------------------------------------ the adapter, over a mock transport


def _fields(request: ChargeRequest) -> dict:
    return {name: getattr(request, name) for name in ChargeRequest.__dataclass_fields__}


def mock_client(case: str, seen: list[httpx.Request]) -> httpx.AsyncClient:
    status, headers, body = recorded("stripe", case)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers=headers, json=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_adapter_charge_sends_what_it_built(stripe_endpoint, charge_request):
    seen: list[httpx.Request] = []
    async with mock_client("charge_succeeded", seen) as client:
        adapter = StripeAdapter(client)
        assert isinstance(adapter, ProviderAdapter) and adapter.name == "stripe"
        result = await adapter.charge(stripe_endpoint, charge_request, timeout=FAST)
        replayed = await adapter.replay_charge(stripe_endpoint, charge_request, timeout=FAST)
    assert result.outcome is Outcome.SUCCEEDED and result.provider_reference == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert replayed == result
    first, second = seen
    assert first.headers["authorization"] == f"Bearer {STRIPE_SECRET}"
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "att_42"
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(first.content.decode()) == list(stripe.build_charge_request(stripe_endpoint, charge_request).form)
    assert first.content == second.content


async def test_adapter_refund_and_search(stripe_endpoint, refund_request):
    seen: list[httpx.Request] = []
    async with mock_client("refund_succeeded", seen) as client:
        refund = await StripeAdapter(client).refund(stripe_endpoint, refund_request, timeout=FAST)
    assert refund.outcome is Outcome.SUCCEEDED and refund.provider_reference == "re_1Nispe2eZvKYlo2Cd31jOCgZ"
    async with mock_client("search_found", seen) as client:
        found = await StripeAdapter(client).find_charge(stripe_endpoint, "pay_123", timeout=FAST)
    assert found.state is LookupState.CHARGED
    assert seen[-1].method == "GET"
    assert seen[-1].url.params["query"] == "metadata['payment_id']:'pay_123'"


async def test_bad_key_or_missing_secret_is_config_error_and_nothing_is_sent(stripe_endpoint, charge_request):
    def explode(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    async with httpx.AsyncClient(transport=httpx.MockTransport(explode)) as client:
        adapter = StripeAdapter(client)
        too_long = ChargeRequest(**{**_fields(charge_request), "idempotency_key": "k" * 256})
        result = await adapter.charge(stripe_endpoint, too_long, timeout=FAST)
        assert result.outcome is Outcome.CONFIG_ERROR and result.code == "invalid_idempotency_key"
        bare = type(stripe_endpoint)("stripe", "EU", stripe_endpoint.base_url, type(stripe_endpoint.credentials)({}))
        result = await adapter.charge(bare, charge_request, timeout=FAST)
        assert result.outcome is Outcome.CONFIG_ERROR and result.code == "missing_credentials"
        assert (await adapter.find_charge(bare, "pay_1", timeout=FAST)).state is LookupState.UNKNOWN


async def test_network_failure_becomes_a_result(stripe_endpoint, charge_request):
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    async with httpx.AsyncClient(transport=httpx.MockTransport(drop)) as client:
        adapter = StripeAdapter(client)
        result = await adapter.charge(stripe_endpoint, charge_request, timeout=FAST)
        lookup = await adapter.find_charge(stripe_endpoint, "pay_123", timeout=FAST)
    assert result.outcome is Outcome.AMBIGUOUS and result.http_status is None and result.code == "read_timeout"
    assert lookup.state is LookupState.UNKNOWN

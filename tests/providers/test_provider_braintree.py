"""Braintree GraphQL mapping: requests as Braintree documents them, and every recorded answer classified."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from orchestrator.providers import braintree
from orchestrator.providers.base import LookupState, Outcome, ProviderAdapter
from orchestrator.providers.braintree import BraintreeAdapter
from tests.providers.provider_recordings import BRAINTREE_PRIVATE, BRAINTREE_PUBLIC, FAST, recorded


def _with(value, **changes):
    fields = {name: getattr(value, name) for name in type(value).__dataclass_fields__}
    return type(value)(**{**fields, **changes})


def test_charge_request(braintree_endpoint, charge_request):
    req = braintree.build_charge_request(braintree_endpoint, charge_request)
    assert req.method == "POST"
    assert req.url == "http://127.0.0.1:8103/eu/graphql"
    assert req.json == {
        "query": braintree.CHARGE_MUTATION,
        "variables": {
            "input": {
                "paymentMethodId": "pm_card_visa",
                "transaction": {"amount": "10.99", "orderId": "pay_123", "merchantAccountId": "sandbox_eu"},
            }
        },
    }
    assert "chargePaymentMethod(input: $input)" in req.json["query"]
    token = base64.b64encode(f"{BRAINTREE_PUBLIC}:{BRAINTREE_PRIVATE}".encode()).decode()
    assert req.headers == {
        "Authorization": f"Basic {token}",
        "Braintree-Version": "2019-01-01",
        "Idempotency-Key": "att_42",
    }
    assert BRAINTREE_PRIVATE not in repr(req) and token not in repr(req)


@pytest.mark.parametrize(
    "amount, currency, text", [(1099, "EUR", "10.99"), (1099, "JPY", "1099"), (5, "USD", "0.05"), (1000, "KWD", "1.000")]
)
def test_amounts_are_major_unit_strings(braintree_endpoint, charge_request, amount, currency, text):
    req = braintree.build_charge_request(braintree_endpoint, _with(charge_request, amount=amount, currency=currency))
    assert req.json["variables"]["input"]["transaction"]["amount"] == text


def test_merchant_account_may_name_the_currency(braintree_endpoint, charge_request):
    endpoint = _with(braintree_endpoint, merchant_account="acme_{currency}")
    req = braintree.build_charge_request(endpoint, _with(charge_request, currency="GBP"))
    assert req.json["variables"]["input"]["transaction"]["merchantAccountId"] == "acme_GBP"
    bare = braintree.build_charge_request(_with(braintree_endpoint, merchant_account=""), charge_request)
    assert "merchantAccountId" not in bare.json["variables"]["input"]["transaction"]


def test_refund_request(braintree_endpoint, refund_request):
    req = braintree.build_refund_request(
        braintree_endpoint, _with(refund_request, provider_reference="dHJhbnNhY3Rpb25fa2RwNWJrNHo")
    )
    assert req.json == {
        "query": braintree.REFUND_MUTATION,
        "variables": {
            "input": {
                "transactionId": "dHJhbnNhY3Rpb25fa2RwNWJrNHo",
                "refund": {"amount": "5.00", "orderId": "re_ours_1"},
            }
        },
    }
    assert req.headers["Idempotency-Key"] == "rfa_1"


def test_search_request(braintree_endpoint):
    req = braintree.build_search_request(braintree_endpoint, "pay_123")
    assert req.json == {"query": braintree.SEARCH_QUERY, "variables": {"input": {"orderId": {"is": "pay_123"}}}}
    assert "Idempotency-Key" not in req.headers
    assert req.headers["Braintree-Version"] == "2019-01-01"


@pytest.mark.parametrize("missing", ["public_key", "private_key"])
async def test_missing_key_is_config_error_and_nothing_is_sent(braintree_endpoint, charge_request, missing):
    values = {"public_key": BRAINTREE_PUBLIC, "private_key": BRAINTREE_PRIVATE}
    del values[missing]
    endpoint = _with(braintree_endpoint, credentials=type(braintree_endpoint.credentials)(values))

    def explode(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    async with httpx.AsyncClient(transport=httpx.MockTransport(explode)) as client:
        result = await BraintreeAdapter(client).charge(endpoint, charge_request, timeout=FAST)
    assert result.outcome is Outcome.CONFIG_ERROR and result.code == "missing_credentials"


@pytest.mark.parametrize(
    "case, outcome, code, message",
    [
        ("charge_submitted", Outcome.SUCCEEDED, None, None),
        ("charge_processor_declined_status", Outcome.HARD_DECLINE, "PROCESSOR_DECLINED", None),
        ("declined_do_not_honor", Outcome.HARD_DECLINE, "2000", "Do Not Honor"),
        ("declined_insufficient_funds", Outcome.HARD_DECLINE, "2001", "Insufficient Funds"),
        ("declined_processor_declined", Outcome.HARD_DECLINE, "2038", "Processor Declined"),
        ("declined_network_unavailable", Outcome.SOFT_DECLINE, "3000", "Processor Network Unavailable - Try Again"),
        ("declined_duplicate", Outcome.AMBIGUOUS, "2016", "Duplicate Transaction"),
        ("invalid_amount", Outcome.CONFIG_ERROR, "81503", "Amount is an invalid format."),
        ("request_key_in_progress", Outcome.AMBIGUOUS, "VALIDATION",
         "A request with this Idempotency-Key is still being processed; retry later."),
        ("authentication_failed", Outcome.CONFIG_ERROR, "AUTHENTICATION", "Authentication credentials are invalid."),
        ("authorization_failed", Outcome.CONFIG_ERROR, "AUTHORIZATION", "You do not have permission to perform this action."),
        ("internal_error", Outcome.AMBIGUOUS, "INTERNAL", "An internal error occurred."),
        ("service_availability", Outcome.TRANSIENT, "SERVICE_AVAILABILITY", "The service is temporarily unavailable."),
        ("resource_limit", Outcome.TRANSIENT, "RESOURCE_LIMIT", "Too many requests"),
        ("http_503_unavailable", Outcome.TRANSIENT, "UNAVAILABLE", "Service unavailable"),
        ("http_500_plain", Outcome.AMBIGUOUS, "http_500", None),
    ],
)
def test_charge_answers(case, outcome, code, message):
    status, headers, body = recorded("braintree", case)
    result = braintree.parse_charge_response(status, headers, body)
    assert (result.outcome, result.code, result.message) == (outcome, code, message)
    assert result.http_status == status


def test_successful_charge_carries_the_transaction_id():
    result = braintree.parse_charge_response(*recorded("braintree", "charge_submitted"))
    assert result.provider_reference == "dHJhbnNhY3Rpb25fa2RwNWJrNHo"
    assert result.raw_status == "SUBMITTED_FOR_SETTLEMENT"


def test_retry_after():
    assert braintree.parse_charge_response(*recorded("braintree", "http_503_unavailable")).retry_after_s == 5.0


@pytest.mark.parametrize(
    "case, outcome, code, reference",
    [
        ("refund_submitted", Outcome.SUCCEEDED, None, "dHJhbnNhY3Rpb25fcmVmdW5kMQ"),
        ("refund_too_large", Outcome.HARD_DECLINE, "91521", None),
        ("refund_already_refunded", Outcome.HARD_DECLINE, "91512", None),
        ("authentication_failed", Outcome.CONFIG_ERROR, "AUTHENTICATION", None),
        ("http_503_unavailable", Outcome.TRANSIENT, "UNAVAILABLE", None),
        ("http_500_plain", Outcome.AMBIGUOUS, "http_500", None),
    ],
)
def test_refund_answers(case, outcome, code, reference):
    result = braintree.parse_refund_response(*recorded("braintree", case))
    assert (result.outcome, result.code, result.provider_reference) == (outcome, code, reference)


@pytest.mark.parametrize(
    "case, state, amount, currency",
    [
        ("search_found", LookupState.CHARGED, 1099, "EUR"),
        ("search_found_jpy", LookupState.CHARGED, 1099, "JPY"),
        ("search_declined_only", LookupState.NOT_CHARGED, None, None),
        ("search_empty", LookupState.NOT_CHARGED, None, None),
        ("search_error", LookupState.UNKNOWN, None, None),
        ("http_503_unavailable", LookupState.UNKNOWN, None, None),
    ],
)
def test_search_answers(case, state, amount, currency):
    result = braintree.parse_search_response(*recorded("braintree", case))
    assert (result.state, result.amount, result.currency) == (state, amount, currency)


async def test_adapter_round_trip(braintree_endpoint, charge_request, refund_request):
    seen: list[httpx.Request] = []
    answers = iter(
        [recorded("braintree", "charge_submitted"), recorded("braintree", "refund_submitted"), recorded("braintree", "search_found")]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, headers, body = next(answers)
        return httpx.Response(status, headers=headers, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = BraintreeAdapter(client)
        assert isinstance(adapter, ProviderAdapter) and adapter.name == "braintree"
        charge = await adapter.charge(braintree_endpoint, charge_request, timeout=FAST)
        refund = await adapter.refund(
            braintree_endpoint, _with(refund_request, provider_reference=charge.provider_reference), timeout=FAST
        )
        lookup = await adapter.find_charge(braintree_endpoint, "pay_123", timeout=FAST)
    assert charge.outcome is Outcome.SUCCEEDED and refund.outcome is Outcome.SUCCEEDED
    assert lookup.state is LookupState.CHARGED and lookup.provider_reference == charge.provider_reference
    assert [r.url.path for r in seen] == ["/eu/graphql"] * 3
    assert seen[0].headers["braintree-version"] == "2019-01-01"
    assert seen[0].headers["idempotency-key"] == "att_42"
    assert json.loads(seen[1].content)["variables"]["input"]["transactionId"] == "dHJhbnNhY3Rpb25fa2RwNWJrNHo"
    assert "idempotency-key" not in seen[2].headers

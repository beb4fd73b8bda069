"""Braintree GraphQL: chargePaymentMethod, refundTransaction, and a transaction search by order id.

Wire format (docs/wire-formats.md, "Braintree GraphQL"): `POST /graphql` with a JSON body
`{"query", "variables"}`, `Authorization: Basic base64(public_key:private_key)`,
`Braintree-Version: 2019-01-01`. Amounts are decimal strings in major units (`kit.money`); the
currency is the merchant account's (see `merchant_account_for`). The request key for Braintree's
At-Most-Once Processing travels in the `Idempotency-Key` header. A processor decline comes back as a GraphQL error whose
`extensions` carry `errorClass` and the processor response code as `legacyCode`.

Pure functions build requests and parse answers; `BraintreeAdapter` only composes them with
`transport.send`.
"""

from __future__ import annotations

import base64
from typing import Any, Mapping


from orchestrator.kit import money
from orchestrator.providers import common
from orchestrator.providers.composed import ComposedAdapter
from orchestrator.providers.base import (
    ChargeRequest,
    ChargeResult,
    Endpoint,
    LookupResult,
    LookupState,
    Outcome,
    RefundRequest,
    RefundResult,
)
from orchestrator.providers.common import RequestBuildError, dig, text_or_none
from orchestrator.providers.transport import HttpRequest
from orchestrator.resilience.classification import ErrorMap, default_error_map

NAME = "braintree"
API_VERSION = "2019-01-01"
IDEMPOTENCY_HEADER = "Idempotency-Key"

CHARGE_MUTATION = (
    "mutation ChargePaymentMethod($input: ChargePaymentMethodInput!) { chargePaymentMethod(input: $input) "
    "{ transaction { id legacyId status orderId amount { value currencyCode } } } }"
)
REFUND_MUTATION = (
    "mutation RefundTransaction($input: RefundTransactionInput!) { refundTransaction(input: $input) "
    "{ refund { id status orderId amount { value currencyCode } } } }"
)
SEARCH_QUERY = (
    "query Search($input: TransactionSearchInput!) { search { transactions(input: $input) "
    "{ edges { node { id status orderId amount { value currencyCode } } } } } }"
)


# ------------------------------------------------------------------ requests


def _headers(endpoint: Endpoint, idempotency_key: str | None = None) -> dict[str, str]:
    public_key = endpoint.credentials.get("public_key")
    private_key = endpoint.credentials.get("private_key")
    if not public_key or not private_key:
        raise RequestBuildError(
            "missing_credentials", "Braintree credentials 'public_key' and 'private_key' must both be set"
        )
    token = base64.b64encode(f"{public_key}:{private_key}".encode()).decode("ascii")
    headers = {"Authorization": f"Basic {token}", "Braintree-Version": API_VERSION}
    if idempotency_key is not None:
        if not idempotency_key:
            raise RequestBuildError("invalid_idempotency_key", "an idempotency key is required")
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    return headers


def _amount(amount: int, currency: str) -> str:
    return money.to_major_string(amount, currency)


def _graphql(endpoint: Endpoint, query: str, variables: dict[str, Any], idempotency_key: str | None) -> HttpRequest:
    return HttpRequest(
        method="POST",
        url=common.join_url(endpoint.base_url, "/graphql"),
        headers=_headers(endpoint, idempotency_key),
        json={"query": query, "variables": variables},
    )


def merchant_account_for(endpoint: Endpoint, currency: str) -> str:
    """The merchant account to charge. A Braintree merchant account has one currency, so the
    configured name may hold a `{currency}` placeholder (`acme_{currency}` -> `acme_EUR`)."""
    return endpoint.merchant_account.replace("{currency}", currency)


def build_charge_request(endpoint: Endpoint, request: ChargeRequest) -> HttpRequest:
    transaction: dict[str, Any] = {
        "amount": _amount(request.amount, request.currency),
        "orderId": request.payment_id,
    }
    merchant_account = merchant_account_for(endpoint, request.currency)
    if merchant_account:
        transaction["merchantAccountId"] = merchant_account
    variables = {"input": {"paymentMethodId": request.payment_method, "transaction": transaction}}
    return _graphql(endpoint, CHARGE_MUTATION, variables, request.idempotency_key)


def build_refund_request(endpoint: Endpoint, request: RefundRequest) -> HttpRequest:
    if not request.provider_reference:
        raise RequestBuildError("missing_reference", "a refund needs the transaction id")
    variables = {
        "input": {
            "transactionId": request.provider_reference,
            "refund": {"amount": _amount(request.amount, request.currency), "orderId": request.refund_id},
        }
    }
    return _graphql(endpoint, REFUND_MUTATION, variables, request.idempotency_key)


def build_search_request(endpoint: Endpoint, payment_id: str) -> HttpRequest:
    variables = {"input": {"orderId": {"is": payment_id}}}
    return _graphql(endpoint, SEARCH_QUERY, variables, None)



# ------------------------------------------------------------------ answers


def _first_error(body: Any, field: str) -> Mapping[str, Any] | None:
    """The error about `field` (by its path), else the first error, else None."""
    errors = dig(body, "errors")
    if not isinstance(errors, list):
        return None
    errors = [e for e in errors if isinstance(e, Mapping)]
    for error in errors:
        path = error.get("path")
        if isinstance(path, list) and path and path[0] == field:
            return error
    return errors[0] if errors else None


def _error_facts(status: int, error: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "http_status": status,
        "error_class": text_or_none(dig(error, "extensions", "errorClass")),
        "legacy_code": text_or_none(dig(error, "extensions", "legacyCode")),
    }


def _error_code(facts: Mapping[str, Any], status: int) -> str:
    return facts["legacy_code"] or facts["error_class"] or f"http_{status}"


def _error_message(error: Mapping[str, Any] | None, body: Any) -> str | None:
    return text_or_none(dig(error, "message")) or text_or_none(dig(body, "error", "message"))


def parse_charge_response(
    status: int, headers: Mapping[str, str], body: Any, error_map: ErrorMap | None = None
) -> ChargeResult:
    """The chargePaymentMethod payload: a transaction, or GraphQL errors, classified by the map."""
    error_map = error_map or default_error_map()
    retry_after = common.parse_retry_after(common.header(headers, "retry-after"))
    transaction = dig(body, "data", "chargePaymentMethod", "transaction")
    if 200 <= status < 300 and isinstance(transaction, Mapping):
        tx_status = text_or_none(transaction.get("status"))
        outcome = Outcome(error_map.classify(NAME, "charge", {"http_status": status, "status": tx_status}))
        return ChargeResult(
            outcome=outcome,
            http_status=status,
            provider_reference=text_or_none(transaction.get("id")),
            code=tx_status if outcome is not Outcome.SUCCEEDED else None,
            retry_after_s=retry_after,
            raw_status=tx_status,
        )
    error = _first_error(body, "chargePaymentMethod")
    facts = _error_facts(status, error)
    return ChargeResult(
        outcome=Outcome(error_map.classify(NAME, "charge", facts)),
        http_status=status,
        code=_error_code(facts, status),
        message=_error_message(error, body),
        retry_after_s=retry_after,
        raw_status=facts["error_class"],
    )


def parse_refund_response(
    status: int, headers: Mapping[str, str], body: Any, error_map: ErrorMap | None = None
) -> RefundResult:
    error_map = error_map or default_error_map()
    refund = dig(body, "data", "refundTransaction", "refund")
    if 200 <= status < 300 and isinstance(refund, Mapping):
        refund_status = text_or_none(refund.get("status"))
        outcome = Outcome(error_map.classify(NAME, "refund", {"http_status": status, "status": refund_status}))
        return RefundResult(
            outcome=outcome,
            http_status=status,
            provider_reference=text_or_none(refund.get("id")),
            code=refund_status if outcome is not Outcome.SUCCEEDED else None,
        )
    error = _first_error(body, "refundTransaction")
    facts = _error_facts(status, error)
    return RefundResult(
        outcome=Outcome(error_map.classify(NAME, "refund", facts)),
        http_status=status,
        code=_error_code(facts, status),
        message=_error_message(error, body),
    )


def parse_search_response(
    status: int, headers: Mapping[str, str], body: Any, error_map: ErrorMap | None = None
) -> LookupResult:
    """CHARGED when a transaction for our order id moved money, NOT_CHARGED when none did and
    none is in flight, UNKNOWN when the search failed or a transaction is still undecided."""
    error_map = error_map or default_error_map()
    edges = dig(body, "data", "search", "transactions", "edges")
    if status != 200 or dig(body, "errors") or not isinstance(edges, list):
        return LookupResult(state=LookupState.UNKNOWN)
    pending = False
    for edge in edges:
        node = dig(edge, "node")
        tx_status = text_or_none(dig(node, "status"))
        outcome = error_map.classify(NAME, "charge", {"http_status": 200, "status": tx_status})
        if outcome == Outcome.SUCCEEDED.value:
            currency = text_or_none(dig(node, "amount", "currencyCode"))
            value = text_or_none(dig(node, "amount", "value"))
            amount = None
            if currency and value:
                try:
                    amount = money.from_major_string(value, currency.upper())
                except ValueError:
                    amount = None
            return LookupResult(
                state=LookupState.CHARGED,
                provider_reference=text_or_none(dig(node, "id")),
                amount=amount,
                currency=currency.upper() if currency else None,
            )
        if outcome == Outcome.AMBIGUOUS.value:
            pending = True
    return LookupResult(state=LookupState.UNKNOWN if pending else LookupState.NOT_CHARGED)



# ------------------------------------------------------------------ adapter


class BraintreeAdapter(ComposedAdapter):
    """`ProviderAdapter` for Braintree's GraphQL API."""

    name = NAME
    build_charge = staticmethod(build_charge_request)
    parse_charge = staticmethod(parse_charge_response)
    build_refund = staticmethod(build_refund_request)
    parse_refund = staticmethod(parse_refund_response)
    build_search = staticmethod(build_search_request)
    parse_search = staticmethod(parse_search_response)

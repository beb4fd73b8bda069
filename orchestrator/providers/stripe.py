"""Stripe: PaymentIntents created and confirmed in one call, refunds, search by our payment id.

Wire format (docs/wire-formats.md, "Stripe"): form-encoded bodies with bracketed keys, the
currency in lower case, `Authorization: Bearer <secret_key>`, `Stripe-Version`, and an
`Idempotency-Key` on every POST. Errors come as `{"error": {"type", "code", "decline_code",
"message", ...}}`; card declines are HTTP 402.

Pure functions build requests and parse answers; `StripeAdapter` only composes them with
`transport.send`.
"""

from __future__ import annotations

from typing import Any, Mapping


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

NAME = "stripe"
API_VERSION = "2024-06-20"
MAX_IDEMPOTENCY_KEY = 255
REFERENCE_KEY = "payment_id"  # metadata key carrying our payment id
REFUND_REFERENCE_KEY = "refund_id"


# ------------------------------------------------------------------ requests


def _headers(endpoint: Endpoint, idempotency_key: str | None = None) -> dict[str, str]:
    secret = endpoint.credentials.get("secret_key")
    if not secret:
        raise RequestBuildError("missing_credentials", "Stripe credential 'secret_key' is not set")
    headers = {"Authorization": f"Bearer {secret}", "Stripe-Version": API_VERSION}
    if idempotency_key is not None:
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise RequestBuildError(
                "invalid_idempotency_key",
                f"Stripe idempotency keys are 1 to {MAX_IDEMPOTENCY_KEY} characters",
            )
        headers["Idempotency-Key"] = idempotency_key
    return headers


def build_charge_request(endpoint: Endpoint, request: ChargeRequest) -> HttpRequest:
    form: list[tuple[str, str]] = [
        ("amount", str(request.amount)),
        ("currency", request.currency.lower()),
        ("payment_method", request.payment_method),
        ("confirm", "true"),
        ("payment_method_types[]", "card"),
    ]
    if request.description:
        form.append(("description", request.description))
    form.append((f"metadata[{REFERENCE_KEY}]", request.payment_id))
    for key in sorted(request.metadata):
        if key != REFERENCE_KEY:  # our reference is authoritative: reconciliation searches by it
            form.append((f"metadata[{key}]", str(request.metadata[key])))
    return HttpRequest(
        method="POST",
        url=common.join_url(endpoint.base_url, "/v1/payment_intents"),
        headers=_headers(endpoint, request.idempotency_key),
        form=tuple(form),
    )


def build_refund_request(endpoint: Endpoint, request: RefundRequest) -> HttpRequest:
    form = (
        ("payment_intent", request.provider_reference),
        ("amount", str(request.amount)),
        (f"metadata[{REFUND_REFERENCE_KEY}]", request.refund_id),
    )
    return HttpRequest(
        method="POST",
        url=common.join_url(endpoint.base_url, "/v1/refunds"),
        headers=_headers(endpoint, request.idempotency_key),
        form=form,
    )


def search_query(payment_id: str) -> str:
    """Stripe search query language: a quoted value, with quotes and backslashes escaped."""
    escaped = payment_id.replace("\\", "\\\\").replace("'", "\\'")
    return f"metadata['{REFERENCE_KEY}']:'{escaped}'"


def build_search_request(endpoint: Endpoint, payment_id: str) -> HttpRequest:
    return HttpRequest(
        method="GET",
        url=common.join_url(endpoint.base_url, "/v1/payment_intents/search"),
        headers=_headers(endpoint),
        params={"query": search_query(payment_id)},
    )



# ------------------------------------------------------------------ answers


def _error_facts(status: int, body: Any) -> tuple[dict[str, Any], Mapping[str, Any]]:
    error = dig(body, "error")
    error = error if isinstance(error, Mapping) else {}
    facts = {
        "http_status": status,
        "type": text_or_none(error.get("type")),
        "code": text_or_none(error.get("code")),
        "decline_code": text_or_none(error.get("decline_code")),
    }
    return facts, error


def parse_charge_response(
    status: int, headers: Mapping[str, str], body: Any, error_map: ErrorMap | None = None
) -> ChargeResult:
    """A PaymentIntent (2xx) or a Stripe error object, classified by the error map."""
    error_map = error_map or default_error_map()
    retry_after = common.parse_retry_after(common.header(headers, "retry-after"))
    if 200 <= status < 300:
        intent_status = text_or_none(dig(body, "status"))
        last_error = dig(body, "last_payment_error")
        last_code = text_or_none(dig(last_error, "code"))
        last_decline = text_or_none(dig(last_error, "decline_code"))
        facts = {"http_status": status, "status": intent_status}
        if intent_status == "requires_payment_method":  # declined: the last error says why
            facts.update(code=last_code, decline_code=last_decline)
        outcome = Outcome(error_map.classify(NAME, "charge", facts))
        declined = outcome is not Outcome.SUCCEEDED
        return ChargeResult(
            outcome=outcome,
            http_status=status,
            provider_reference=text_or_none(dig(body, "id")),
            code=(last_decline or last_code or intent_status) if declined else None,
            message=text_or_none(dig(last_error, "message")) if declined else None,
            retry_after_s=retry_after,
            raw_status=intent_status,
        )
    facts, error = _error_facts(status, body)
    outcome = Outcome(error_map.classify(NAME, "charge", facts))
    intent = error.get("payment_intent")
    return ChargeResult(
        outcome=outcome,
        http_status=status,
        provider_reference=text_or_none(dig(intent, "id")),
        code=facts["decline_code"] or facts["code"] or facts["type"],
        message=text_or_none(error.get("message")),
        retry_after_s=retry_after,
        raw_status=text_or_none(dig(intent, "status")),
    )


def parse_refund_response(
    status: int, headers: Mapping[str, str], body: Any, error_map: ErrorMap | None = None
) -> RefundResult:
    error_map = error_map or default_error_map()
    if 200 <= status < 300:
        refund_status = text_or_none(dig(body, "status"))
        outcome = Outcome(error_map.classify(NAME, "refund", {"http_status": status, "status": refund_status}))
        failed = outcome is not Outcome.SUCCEEDED
        return RefundResult(
            outcome=outcome,
            http_status=status,
            provider_reference=text_or_none(dig(body, "id")),
            code=(text_or_none(dig(body, "failure_reason")) or refund_status) if failed else None,
        )
    facts, error = _error_facts(status, body)
    return RefundResult(
        outcome=Outcome(error_map.classify(NAME, "refund", facts)),
        http_status=status,
        code=facts["code"] or facts["type"],
        message=text_or_none(error.get("message")),
    )


def parse_search_response(
    status: int, headers: Mapping[str, str], body: Any, error_map: ErrorMap | None = None
) -> LookupResult:
    """A search result: CHARGED when an intent for our payment succeeded, NOT_CHARGED when none
    did and none is still in flight, UNKNOWN otherwise (or when the search itself failed)."""
    error_map = error_map or default_error_map()
    data = dig(body, "data")
    if status != 200 or not isinstance(data, list):
        return LookupResult(state=LookupState.UNKNOWN)
    pending = False
    for intent in data:
        intent_status = text_or_none(dig(intent, "status"))
        outcome = error_map.classify(NAME, "charge", {"http_status": 200, "status": intent_status})
        if outcome == Outcome.SUCCEEDED.value:
            amount = dig(intent, "amount")
            currency = text_or_none(dig(intent, "currency"))
            return LookupResult(
                state=LookupState.CHARGED,
                provider_reference=text_or_none(dig(intent, "id")),
                amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
                currency=currency.upper() if currency else None,
            )
        if outcome == Outcome.AMBIGUOUS.value:
            pending = True
    return LookupResult(state=LookupState.UNKNOWN if pending else LookupState.NOT_CHARGED)



# ------------------------------------------------------------------ adapter


class StripeAdapter(ComposedAdapter):
    """`ProviderAdapter` for Stripe's PaymentIntents API."""

    name = NAME
    build_charge = staticmethod(build_charge_request)
    parse_charge = staticmethod(parse_charge_response)
    build_refund = staticmethod(build_refund_request)
    parse_refund = staticmethod(parse_refund_response)
    build_search = staticmethod(build_search_request)
    parse_search = staticmethod(parse_search_response)

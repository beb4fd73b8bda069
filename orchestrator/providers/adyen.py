"""Adyen Checkout: card-on-file payments with a stored payment method, and refunds.

Wire format (docs/wire-formats.md, "Adyen Checkout"): JSON bodies, `X-API-Key`, an
`Idempotency-Key` of at most 64 characters on every POST (a longer one is our bug: we answer
CONFIG_ERROR rather than truncate, since a truncated key could collide with another attempt's).
A payment answers HTTP 200 with a `resultCode` (and `refusalReason`, `refusalReasonCode` when
refused); errors answer `{"status", "errorCode", "message", "errorType"}`.

Checkout has no search by merchant reference, so `find_charge` answers UNKNOWN: ambiguity at
Adyen is resolved by replaying the payment with its idempotency key.

Pure functions build requests and parse answers; `AdyenAdapter` only composes them with
`transport.send`.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote


from orchestrator.providers import common
from orchestrator.providers.composed import ComposedAdapter
from orchestrator.providers.base import (
    ChargeRequest,
    ChargeResult,
    Endpoint,
    Outcome,
    RefundRequest,
    RefundResult,
)
from orchestrator.providers.common import RequestBuildError, dig, text_or_none
from orchestrator.providers.transport import HttpRequest
from orchestrator.resilience.classification import ErrorMap, default_error_map

NAME = "adyen"
API_VERSION = "v72"
MAX_IDEMPOTENCY_KEY = 64


# ------------------------------------------------------------------ requests


def _headers(endpoint: Endpoint, idempotency_key: str) -> dict[str, str]:
    api_key = endpoint.credentials.get("api_key")
    if not api_key:
        raise RequestBuildError("missing_credentials", "Adyen credential 'api_key' is not set")
    if not idempotency_key:
        raise RequestBuildError("invalid_idempotency_key", "an idempotency key is required")
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise RequestBuildError(
            "idempotency_key_too_long",
            f"Adyen idempotency keys are at most {MAX_IDEMPOTENCY_KEY} characters, "
            f"this one has {len(idempotency_key)}",
        )
    return {"X-API-Key": api_key, "Idempotency-Key": idempotency_key}


def _merchant_account(endpoint: Endpoint) -> str:
    if not endpoint.merchant_account:
        raise RequestBuildError(
            "missing_merchant_account", f"no Adyen merchantAccount configured for region {endpoint.region}"
        )
    return endpoint.merchant_account


def build_charge_request(endpoint: Endpoint, request: ChargeRequest) -> HttpRequest:
    if not request.merchant_id:
        raise RequestBuildError(
            "missing_shopper_reference", "a stored payment method needs a shopperReference (the merchant id)"
        )
    body = {
        "amount": {"currency": request.currency, "value": request.amount},
        "reference": request.payment_id,
        "merchantAccount": _merchant_account(endpoint),
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": request.payment_method},
        "shopperReference": request.merchant_id,
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "UnscheduledCardOnFile",
        "countryCode": request.country,
    }
    return HttpRequest(
        method="POST",
        url=common.join_url(endpoint.base_url, f"/{API_VERSION}/payments"),
        headers=_headers(endpoint, request.idempotency_key),
        json=body,
    )


def build_refund_request(endpoint: Endpoint, request: RefundRequest) -> HttpRequest:
    if not request.provider_reference:
        raise RequestBuildError("missing_reference", "a refund needs the payment's pspReference")
    body = {
        "amount": {"value": request.amount, "currency": request.currency},
        "merchantAccount": _merchant_account(endpoint),
        "reference": request.refund_id,
    }
    psp_reference = quote(request.provider_reference, safe="")
    return HttpRequest(
        method="POST",
        url=common.join_url(endpoint.base_url, f"/{API_VERSION}/payments/{psp_reference}/refunds"),
        headers=_headers(endpoint, request.idempotency_key),
        json=body,
    )



# ------------------------------------------------------------------ answers


def _error_facts(status: int, body: Any) -> dict[str, Any]:
    return {
        "http_status": status,
        "code": text_or_none(dig(body, "errorCode")),
        "type": text_or_none(dig(body, "errorType")),
    }


def parse_charge_response(
    status: int, headers: Mapping[str, str], body: Any, error_map: ErrorMap | None = None
) -> ChargeResult:
    """A payment response (`resultCode`) or an Adyen error object, classified by the error map."""
    error_map = error_map or default_error_map()
    retry_after = common.parse_retry_after(common.header(headers, "retry-after"))
    if 200 <= status < 300:
        result_code = text_or_none(dig(body, "resultCode"))
        reason_code = text_or_none(dig(body, "refusalReasonCode"))
        facts = {"http_status": status, "result_code": result_code}
        if (result_code or "").lower() != "authorised":
            # Adyen sometimes sends refusalReasonCode "0" with Authorised: ignore it there.
            facts["refusal_reason_code"] = reason_code
        outcome = Outcome(error_map.classify(NAME, "charge", facts))
        declined = outcome is not Outcome.SUCCEEDED
        return ChargeResult(
            outcome=outcome,
            http_status=status,
            provider_reference=text_or_none(dig(body, "pspReference")),
            code=(reason_code or result_code) if declined else None,
            message=text_or_none(dig(body, "refusalReason")) if declined else None,
            retry_after_s=retry_after,
            raw_status=result_code,
        )
    facts = _error_facts(status, body)
    return ChargeResult(
        outcome=Outcome(error_map.classify(NAME, "charge", facts)),
        http_status=status,
        provider_reference=text_or_none(dig(body, "pspReference")),
        code=facts["code"] or facts["type"],
        message=text_or_none(dig(body, "message")),
        retry_after_s=retry_after,
    )


def parse_refund_response(
    status: int, headers: Mapping[str, str], body: Any, error_map: ErrorMap | None = None
) -> RefundResult:
    error_map = error_map or default_error_map()
    if 200 <= status < 300:
        refund_status = text_or_none(dig(body, "status"))
        outcome = Outcome(error_map.classify(NAME, "refund", {"http_status": status, "status": refund_status}))
        return RefundResult(
            outcome=outcome,
            http_status=status,
            provider_reference=text_or_none(dig(body, "pspReference")),
            code=refund_status if outcome is not Outcome.SUCCEEDED else None,
        )
    facts = _error_facts(status, body)
    return RefundResult(
        outcome=Outcome(error_map.classify(NAME, "refund", facts)),
        http_status=status,
        code=facts["code"] or facts["type"],
        message=text_or_none(dig(body, "message")),
    )



# ------------------------------------------------------------------ adapter


class AdyenAdapter(ComposedAdapter):
    """`ProviderAdapter` for Adyen's Checkout API (no search by reference: ambiguity is settled by replay)."""

    name = NAME
    build_charge = staticmethod(build_charge_request)
    parse_charge = staticmethod(parse_charge_response)
    build_refund = staticmethod(build_refund_request)
    parse_refund = staticmethod(parse_refund_response)

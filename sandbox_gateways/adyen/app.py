"""Sandbox Adyen Checkout: `/payments` and `/payments/{pspReference}/refunds` (v71, v72)."""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox_gateways.common import currency as iso
from sandbox_gateways.common.clock import upper_id
from sandbox_gateways.common.faults import REGIONS
from sandbox_gateways.common.gateway import (
    DEFAULT_TIMEOUT_HOLD_S,
    CaptureRawSend,
    Conflicts,
    Gateway,
    after_delay,
    json_response,
    pre_faults,
    run_payment,
)
from sandbox_gateways.common.idempotency import fingerprint
from sandbox_gateways.common.ledger import Charge, RefundExceedsCharge
from sandbox_gateways.common.sandbox_routes import sandbox_routes
from sandbox_gateways.common.tokens import TokenOutcome, token_outcome

VERSIONS = frozenset({"v71", "v72"})
MAX_KEY_LENGTH = 64
MAX_AMOUNT = 99_999_999
_REFUSALS = {
    TokenOutcome.DECLINED: ("Refused", "2"),
    TokenOutcome.INSUFFICIENT_FUNDS: ("Not enough balance", "12"),
    TokenOutcome.PROCESSING_ERROR: ("Acquirer Error", "4"),
}


class _Invalid(Exception):
    def __init__(self, status: int, error_code: str, message: str, error_type: str = "validation"):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.error_type = error_type


def _error(status: int, error_code: str, message: str, error_type: str, headers: dict[str, str] | None = None) -> Response:
    psp = upper_id(16)
    body = {
        "status": status,
        "errorCode": error_code,
        "message": message,
        "errorType": error_type,
        "pspReference": psp,
    }
    return json_response(status, body, {"pspReference": psp, **(headers or {})})


def _from_invalid(exc: _Invalid) -> Response:
    return _error(exc.status, exc.error_code, exc.message, exc.error_type)


def _fault_error(status: int) -> Response:
    if status == 429:
        return _error(429, "000", "Too many requests", "validation", {"Retry-After": "1"})
    if status >= 500:
        headers = {"Retry-After": "1"} if status == 503 else None
        return _error(status, "000", "Unable to process the request: service unavailable", "internal", headers)
    return _error(status, "000", "The request could not be processed", "validation")


def _auth_error(request: Request) -> Response | None:
    if request.headers.get("x-api-key", "").strip():
        return None
    return json_response(
        401,
        {
            "status": 401,
            "errorCode": "000",
            "message": "HTTP Status Response - Unauthorized",
            "errorType": "security",
        },
    )


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _Invalid(400, "702", "Unexpected input: the request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise _Invalid(400, "702", "Unexpected input: the request body must be a JSON object")
    return body


def _parse_amount(body: dict[str, Any], required: bool) -> tuple[int, str] | None:
    amount = body.get("amount")
    if amount is None:
        if required:
            raise _Invalid(422, "100", "Required field 'amount' is not provided.")
        return None
    if not isinstance(amount, dict):
        raise _Invalid(422, "137", "Invalid amount specified")
    value = amount.get("value")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_AMOUNT:
        raise _Invalid(422, "137", "Invalid amount specified")
    currency = amount.get("currency")
    if not isinstance(currency, str) or iso.normalize(currency) != currency:
        raise _Invalid(422, "137", "Invalid amount specified: unknown currency")
    return value, currency


def _require_str(body: dict[str, Any], name: str, code: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _Invalid(422, code, f"Required field '{name}' is not provided.")
    return value


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH:
        raise _Invalid(422, "702", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters long")
    return key


def _echo_key(response: Response, key: str | None) -> Response:
    """Adyen returns the Idempotency-Key header so a client can see the request was keyed."""
    if key is not None:
        response.headers["Idempotency-Key"] = key
    return response


_CONFLICTS = Conflicts(
    mismatch=lambda: _error(422, "704", "request already processed or in progress", "validation"),
    in_flight=lambda: _error(422, "704", "request already processed or in progress", "validation"),
)


class AdyenSandbox:
    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    async def payments(self, request: Request) -> Response:
        region = request.path_params["region"]
        raw = await request.body()
        draw, early = await pre_faults(self.gateway, request, region, _fault_error)
        if early is not None:
            return early
        denied = _auth_error(request)
        if denied is not None:
            return await after_delay(draw, denied)
        try:
            key = _idempotency_key(request)
            body = _parse_json(raw)
            parsed = _parse_amount(body, required=True)
            assert parsed is not None
            value, currency = parsed
            merchant_account = _require_str(body, "merchantAccount", "901")
            reference = _require_str(body, "reference", "130")
            method = body.get("paymentMethod")
            if not isinstance(method, dict):
                raise _Invalid(422, "100", "Required field 'paymentMethod' is not provided.")
            token = method.get("storedPaymentMethodId")
            if not isinstance(token, str) or not token:
                raise _Invalid(
                    422, "100",
                    "Required field 'paymentMethod.storedPaymentMethodId' is not provided "
                    "(the sandbox takes stored payment methods only).",
                )
            if method.get("type", "scheme") != "scheme":
                raise _Invalid(422, "905", "Payment details are not supported")
            outcome = token_outcome(token)
            if outcome is TokenOutcome.INVALID:
                raise _Invalid(422, "800", "Contract not found")
        except _Invalid as exc:
            return await after_delay(draw, _from_invalid(exc))

        def execute() -> Response:
            psp = upper_id(16)
            result: dict[str, Any] = {
                "pspReference": psp,
                "amount": {"currency": currency, "value": value},
                "merchantReference": reference,
                "paymentMethod": {"brand": "visa", "type": "scheme"},
            }
            if outcome is TokenOutcome.APPROVED:
                result["resultCode"] = "Authorised"
                self.gateway.ledger.record(
                    Charge(
                        id=psp,
                        region=region,
                        amount=value,
                        currency=currency,
                        reference=reference,
                        idempotency_key=key,
                        extra={"merchantAccount": merchant_account},
                    )
                )
            else:
                reason, code = _REFUSALS[outcome]
                result["resultCode"] = "Refused"
                result["refusalReason"] = reason
                result["refusalReasonCode"] = code
            return json_response(200, result, {"pspReference": psp})

        fp = fingerprint("POST", "/payments", body)
        response = await run_payment(self.gateway, request, region, draw, key, fp, execute, _CONFLICTS)
        return _echo_key(response, key)

    async def refunds(self, request: Request) -> Response:
        region = request.path_params["region"]
        raw = await request.body()
        draw, early = await pre_faults(self.gateway, request, region, _fault_error)
        if early is not None:
            return early
        denied = _auth_error(request)
        if denied is not None:
            return await after_delay(draw, denied)
        payment_psp = request.path_params["psp"]
        try:
            key = _idempotency_key(request)
            body = _parse_json(raw)
            parsed = _parse_amount(body, required=True)
            assert parsed is not None
            value, currency = parsed
            merchant_account = _require_str(body, "merchantAccount", "901")
            reference = body.get("reference")
            if reference is not None and not isinstance(reference, str):
                raise _Invalid(422, "702", "Unexpected input: reference must be a string")
        except _Invalid as exc:
            return await after_delay(draw, _from_invalid(exc))

        def execute() -> Response:
            charge = self.gateway.ledger.get(payment_psp, region)
            if charge is None:
                return _error(422, "167", "Original pspReference required for this operation", "validation")
            if charge.currency != currency:
                return _error(422, "137", "Invalid amount specified: currency differs from the payment", "validation")
            psp = upper_id(16)
            try:
                self.gateway.ledger.refund(charge, value, psp, reference, key)
            except RefundExceedsCharge as exc:
                return _error(
                    422, "137",
                    f"Invalid amount specified: refund of {exc.requested} exceeds the remaining {exc.remaining}",
                    "validation",
                )
            result = {
                "merchantAccount": merchant_account,
                "paymentPspReference": payment_psp,
                "pspReference": psp,
                "reference": reference,
                "status": "received",
                "amount": {"currency": currency, "value": value},
            }
            return json_response(201, result, {"pspReference": psp})

        fp = fingerprint("POST", f"/payments/{payment_psp}/refunds", body)
        response = await run_payment(self.gateway, request, region, draw, key, fp, execute, _CONFLICTS)
        return _echo_key(response, key)


def _guard(endpoint):
    async def guarded(request: Request) -> Response:
        if request.path_params["region"] not in REGIONS or request.path_params["version"] not in VERSIONS:
            raise HTTPException(404)
        return await endpoint(request)

    return guarded


def create_app(seed: int | None = None, timeout_hold_s: float = DEFAULT_TIMEOUT_HOLD_S) -> CaptureRawSend:
    """The Adyen Checkout sandbox as an ASGI app; `app.gateway` is its state."""
    gateway = Gateway("adyen", "Adyen", seed, timeout_hold_s)
    sandbox = AdyenSandbox(gateway)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return _error(status, "000", f"{request.method} {request.url.path} not found", "validation")

    routes = [
        Route("/{region}/{version}/payments", _guard(sandbox.payments), methods=["POST"]),
        Route("/{region}/{version}/payments/{psp}/refunds", _guard(sandbox.refunds), methods=["POST"]),
        *sandbox_routes(gateway),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    return CaptureRawSend(app, gateway)

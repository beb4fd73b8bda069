"""Sandbox Stripe: PaymentIntents (create+confirm, retrieve, search) and Refunds, form-encoded."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox_gateways.common import currency as iso
from sandbox_gateways.common.clock import random_id, unix_now
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
from sandbox_gateways.common.tokens import TokenOutcome, mask, token_outcome

DEFAULT_API_VERSION = "2024-06-20"
MAX_AMOUNT = 99_999_999
MAX_KEY_LENGTH = 255
_KEY_RE = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9_]+$")
_PI_CREATE_PARAMS = frozenset(
    {
        "amount", "currency", "payment_method", "confirm", "payment_method_types", "description",
        "metadata", "capture_method", "customer", "off_session", "statement_descriptor",
        "statement_descriptor_suffix", "receipt_email", "expand", "return_url",
        "error_on_requires_action", "payment_method_options", "confirmation_method",
        "automatic_payment_methods", "setup_future_usage",
    }
)
_REFUND_PARAMS = frozenset(
    {"payment_intent", "charge", "amount", "metadata", "reason", "expand", "instructions_email"}
)
_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
_SEARCH_CLAUSE_RE = re.compile(
    r"""\s*(?:metadata\[(?:'(?P<sk>[^'\]]+)'|"(?P<dk>[^"\]]+)")\]|(?P<field>status))\s*:\s*"""
    r"""(?:'(?P<sv>(?:\\.|[^'\\])*)'|"(?P<dv>(?:\\.|[^"\\])*)")\s*"""
)
_SEARCH_AND_RE = re.compile(r"AND\b")
_UNESCAPE_RE = re.compile(r"\\(.)")


class _InvalidRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


# --- wire helpers -------------------------------------------------------------------------------


def _headers(request: Request, should_retry: bool | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {
        "Request-Id": "req_" + random_id(14),
        "Stripe-Version": request.headers.get("stripe-version", DEFAULT_API_VERSION),
    }
    key = request.headers.get("idempotency-key")
    if key is not None:
        headers["Idempotency-Key"] = key
    if should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
    if extra:
        headers.update(extra)
    return headers


def _error(
    request: Request,
    status: int,
    type_: str,
    message: str,
    code: str | None = None,
    param: str | None = None,
    should_retry: bool = False,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param is not None:
        error["param"] = param
    if extra:
        error.update(extra)
    error["request_log_url"] = None
    return json_response(status, {"error": error}, _headers(request, should_retry, headers))


def _fault_error(request: Request, status: int) -> Response:
    if status == 429:
        return _error(
            request, 429, "invalid_request_error",
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
            code="rate_limit", should_retry=True, headers={"Retry-After": "1"},
        )
    if status >= 500:
        extra = {"Retry-After": "1"} if status == 503 else None
        return _error(
            request, status, "api_error",
            "An unknown error occurred while processing your request. Please try again.",
            should_retry=True, headers=extra,
        )
    return _error(request, status, "invalid_request_error", "The request could not be processed.")


def _auth_error(request: Request) -> Response | None:
    header = request.headers.get("authorization")
    key: str | None = None
    if header:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            key = value
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value, validate=True).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                key = value
    if not key:
        return _error(
            request, 401, "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the Authorization "
            "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
        )
    if not _KEY_RE.match(key):
        shown = key[:8] + "*" * 4 + key[-4:] if len(key) > 12 else "*" * len(key)
        return _error(
            request, 401, "invalid_request_error", f"Invalid API Key provided: {shown}",
            headers={"WWW-Authenticate": 'Bearer realm="Stripe"'},
        )
    return None


def _parse_form(raw: bytes) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Stripe's form encoding: `a=1`, `metadata[k]=v`, `list[]=x` / `list[0]=x`, `obj[k]=v`."""
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise _InvalidRequest("Invalid request body encoding.") from exc
    params: dict[str, Any] = {}
    for name, value in pairs:
        base, bracket, rest = name.partition("[")
        if not bracket:
            params[base] = value
            continue
        sub = rest.split("]", 1)[0]
        if sub == "" or sub.isdigit():
            existing = params.setdefault(base, [])
            if not isinstance(existing, list):
                raise _InvalidRequest(f"Invalid array: {base}", param=base)
            existing.append(value)
        else:
            existing = params.setdefault(base, {})
            if not isinstance(existing, dict):
                raise _InvalidRequest(f"Invalid hash: {base}", param=base)
            existing[sub] = value
    return params, sorted(pairs)


def _check_unknown(params: dict[str, Any], known: frozenset[str]) -> None:
    for name in params:
        if name not in known:
            raise _InvalidRequest(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def _parse_amount(params: dict[str, Any], required: bool) -> int | None:
    raw = params.get("amount")
    if raw is None:
        if required:
            raise _InvalidRequest("Missing required param: amount.", param="amount", code="parameter_missing")
        return None
    if not isinstance(raw, str) or not raw.isdigit():
        raise _InvalidRequest(f"Invalid integer: {raw}", param="amount", code="parameter_invalid_integer")
    amount = int(raw)
    if amount < 1:
        raise _InvalidRequest("Amount must be at least 1.", param="amount", code="amount_too_small")
    if amount > MAX_AMOUNT:
        raise _InvalidRequest(
            f"Amount must be no more than {MAX_AMOUNT}.", param="amount", code="amount_too_large"
        )
    return amount


def _parse_search_query(query: str) -> list[tuple[str | None, str]]:
    """`metadata['k']:'v'` and `status:'v'` clauses joined by AND; quotes may be single or double
    and a backslash escapes the next character. Returns (metadata key or None for status, value)."""
    conditions: list[tuple[str | None, str]] = []
    position = 0
    while True:
        match = _SEARCH_CLAUSE_RE.match(query, position)
        if match is None:
            raise _InvalidRequest(
                f"Invalid search query: {query}. This sandbox supports metadata['key']:'value' "
                "and status:'value' clauses joined by AND.",
                param="query",
            )
        key = match.group("sk") or match.group("dk")
        raw = match.group("sv") if match.group("sv") is not None else match.group("dv")
        conditions.append((key, _UNESCAPE_RE.sub(r"\1", raw)))
        position = match.end()
        if position == len(query):
            return conditions
        joiner = _SEARCH_AND_RE.match(query, position)
        if joiner is None:
            raise _InvalidRequest(f"Invalid search query: {query}.", param="query")
        position = joiner.end()


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH:
        raise _InvalidRequest(
            f"Idempotency-Key must be between 1 and {MAX_KEY_LENGTH} characters long.",
            param="Idempotency-Key",
        )
    return key


# --- the app ------------------------------------------------------------------------------------


class StripeSandbox:
    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.intents: dict[str, dict[str, Any]] = {}  # every intent created, money moved or not
        self.intent_region: dict[str, str] = {}
        self.charge_to_intent: dict[str, str] = {}
        gateway.on_reset(self._reset)

    def _reset(self) -> None:
        self.intents.clear()
        self.intent_region.clear()
        self.charge_to_intent.clear()

    def _conflicts(self, request: Request) -> Conflicts:
        key = request.headers.get("idempotency-key", "")
        return Conflicts(
            mismatch=lambda: _error(
                request, 400, "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were "
                f"first used with. Try using a key other than '{key}' if you meant to execute a "
                "different request.",
            ),
            in_flight=lambda: _error(
                request, 409, "invalid_request_error",
                "There is currently another in-progress request using this Idempotent Key (that "
                "probably means you submitted twice, and the other request is still going "
                "through): " + key + ". Please try again later.",
                code="idempotency_key_in_use", should_retry=True,
            ),
        )

    # POST /{region}/v1/payment_intents
    async def create_intent(self, request: Request) -> Response:
        region = request.path_params["region"]
        raw = await request.body()
        draw, early = await pre_faults(self.gateway, request, region, lambda s: _fault_error(request, s))
        if early is not None:
            return early
        denied = _auth_error(request)
        if denied is not None:
            return await after_delay(draw, denied)
        try:
            key = _idempotency_key(request)
            params, pairs = _parse_form(raw)
            _check_unknown(params, _PI_CREATE_PARAMS)
            amount = _parse_amount(params, required=True)
            assert amount is not None
            currency_raw = params.get("currency")
            if currency_raw is None:
                raise _InvalidRequest("Missing required param: currency.", param="currency", code="parameter_missing")
            currency = iso.normalize(currency_raw)
            if currency is None:
                raise _InvalidRequest(f"Invalid currency: {str(currency_raw).lower()}.", param="currency")
            metadata = params.get("metadata", {})
            if not isinstance(metadata, dict):
                raise _InvalidRequest("Invalid hash", param="metadata")
            confirm = params.get("confirm", "false")
            if confirm not in ("true", "false"):
                raise _InvalidRequest(f"Invalid boolean: {confirm}", param="confirm")
            if params.get("capture_method", "automatic") not in ("automatic", "automatic_async"):
                raise _InvalidRequest(
                    "Only capture_method=automatic is supported by this sandbox.", param="capture_method"
                )
            payment_method = params.get("payment_method")
            if confirm == "true" and not payment_method:
                raise _InvalidRequest(
                    "You cannot confirm this PaymentIntent because it's missing a payment method.",
                    param="payment_method", code="payment_intent_unexpected_state",
                )
            outcome = token_outcome(payment_method) if payment_method else TokenOutcome.APPROVED
            if outcome is TokenOutcome.INVALID:
                raise _InvalidRequest(
                    f"No such PaymentMethod: '{mask(payment_method or '')}'",
                    param="payment_method", code="resource_missing",
                )
        except _InvalidRequest as exc:
            return await after_delay(
                draw, _error(request, exc.status, "invalid_request_error", exc.message, exc.code, exc.param)
            )

        def execute() -> Response:
            return self._confirm(
                request, region, key, amount, currency, payment_method, metadata,
                params.get("description"), params.get("payment_method_types") or ["card"],
                confirm == "true", outcome,
            )

        fp = fingerprint("POST", "/v1/payment_intents", pairs)
        return await run_payment(self.gateway, request, region, draw, key, fp, execute, self._conflicts(request))

    def _confirm(
        self,
        request: Request,
        region: str,
        key: str | None,
        amount: int,
        currency: str,
        payment_method: str | None,
        metadata: dict[str, str],
        description: str | None,
        payment_method_types: list[str],
        confirm: bool,
        outcome: TokenOutcome,
    ) -> Response:
        intent_id = "pi_" + random_id(24)
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "created": unix_now(),
            "currency": currency.lower(),
            "description": description,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": dict(metadata),
            "payment_method": payment_method,
            "payment_method_types": payment_method_types,
            "status": "requires_payment_method",
        }
        self.intents[intent_id] = intent
        self.intent_region[intent_id] = region
        if not confirm:
            intent["status"] = "requires_confirmation" if payment_method else "requires_payment_method"
            return json_response(200, intent, _headers(request))
        charge_id = "ch_" + random_id(24)
        intent["latest_charge"] = charge_id
        if outcome is TokenOutcome.APPROVED:
            intent["status"] = "succeeded"
            intent["amount_received"] = amount
            self.charge_to_intent[charge_id] = intent_id
            self.gateway.ledger.record(
                Charge(
                    id=intent_id,
                    region=region,
                    amount=amount,
                    currency=currency,
                    reference=metadata.get("payment_id"),
                    idempotency_key=key,
                    extra={"metadata": intent["metadata"], "charge_id": charge_id},
                )
            )
            return json_response(200, intent, _headers(request))
        if outcome is TokenOutcome.PROCESSING_ERROR:
            code, decline_code = "processing_error", None
            message = "An error occurred while processing your card. Try again in a little bit."
        elif outcome is TokenOutcome.INSUFFICIENT_FUNDS:
            code, decline_code, message = "card_declined", "insufficient_funds", "Your card has insufficient funds."
        else:
            code, decline_code, message = "card_declined", "generic_decline", "Your card was declined."
        last_error: dict[str, Any] = {"type": "card_error", "code": code, "message": message, "charge": charge_id}
        if decline_code:
            last_error["decline_code"] = decline_code
        intent["last_payment_error"] = last_error
        extra: dict[str, Any] = {"charge": charge_id, "payment_intent": intent}
        if decline_code:
            extra["decline_code"] = decline_code
        return _error(request, 402, "card_error", message, code=code, extra=extra)

    # GET /{region}/v1/payment_intents/{id}
    async def get_intent(self, request: Request) -> Response:
        region = request.path_params["region"]
        draw, early = await pre_faults(self.gateway, request, region, lambda s: _fault_error(request, s))
        if early is not None:
            return early
        denied = _auth_error(request)
        if denied is not None:
            return await after_delay(draw, denied)
        intent_id = request.path_params["intent_id"]
        intent = self.intents.get(intent_id)
        if intent is None or self.intent_region.get(intent_id) != region:
            response = _error(
                request, 404, "invalid_request_error", f"No such payment_intent: '{intent_id}'",
                code="resource_missing", param="intent",
            )
        else:
            response = json_response(200, intent, _headers(request))
        return await after_delay(draw, response)

    # GET /{region}/v1/payment_intents/search
    async def search_intents(self, request: Request) -> Response:
        region = request.path_params["region"]
        draw, early = await pre_faults(self.gateway, request, region, lambda s: _fault_error(request, s))
        if early is not None:
            return early
        denied = _auth_error(request)
        if denied is not None:
            return await after_delay(draw, denied)
        try:
            data = self._search(region, request.query_params.get("query"), request.query_params.get("limit"))
        except _InvalidRequest as exc:
            return await after_delay(
                draw, _error(request, 400, "invalid_request_error", exc.message, exc.code, exc.param)
            )
        body = {
            "object": "search_result",
            "data": data,
            "has_more": False,
            "next_page": None,
            "url": "/v1/payment_intents/search",
        }
        return await after_delay(draw, json_response(200, body, _headers(request)))

    def _search(self, region: str, query: str | None, limit_raw: str | None) -> list[dict[str, Any]]:
        if not query:
            raise _InvalidRequest("Missing required param: query.", param="query", code="parameter_missing")
        limit = 10
        if limit_raw is not None:
            if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 100:
                raise _InvalidRequest("Invalid limit: must be between 1 and 100", param="limit")
            limit = int(limit_raw)
        conditions = _parse_search_query(query)
        ledger = self.gateway.ledger
        first_key, first_value = conditions[0]
        if first_key == "payment_id":
            candidates = ledger.find_by_reference(region, first_value)
        elif first_key is not None:
            candidates = ledger.find_by_metadata(region, first_key, first_value)
        else:
            candidates = [c for c in ledger.charges() if c.region == region]
        results = []
        for charge in sorted(candidates, key=lambda c: c.created_at, reverse=True):
            intent = self.intents.get(charge.id)
            if intent is None:
                continue
            if all(
                (intent["metadata"].get(key) == value) if key is not None else (intent["status"] == value)
                for key, value in conditions
            ):
                results.append(intent)
        return results[:limit]

    # POST /{region}/v1/refunds
    async def create_refund(self, request: Request) -> Response:
        region = request.path_params["region"]
        raw = await request.body()
        draw, early = await pre_faults(self.gateway, request, region, lambda s: _fault_error(request, s))
        if early is not None:
            return early
        denied = _auth_error(request)
        if denied is not None:
            return await after_delay(draw, denied)
        try:
            key = _idempotency_key(request)
            params, pairs = _parse_form(raw)
            _check_unknown(params, _REFUND_PARAMS)
            amount = _parse_amount(params, required=False)
            metadata = params.get("metadata", {})
            if not isinstance(metadata, dict):
                raise _InvalidRequest("Invalid hash", param="metadata")
            reason = params.get("reason")
            if reason is not None and reason not in _REFUND_REASONS:
                raise _InvalidRequest(f"Invalid reason: {reason}", param="reason")
            intent_id = params.get("payment_intent")
            charge_ref = params.get("charge")
            if not intent_id and not charge_ref:
                raise _InvalidRequest(
                    "One of the following params should be provided for this request: payment_intent or charge.",
                    code="parameter_missing",
                )
            if not intent_id:
                intent_id = self.charge_to_intent.get(charge_ref or "")
                if intent_id is None:
                    raise _InvalidRequest(
                        f"No such charge: '{charge_ref}'", param="charge", code="resource_missing"
                    )
            if intent_id not in self.intents or self.intent_region.get(intent_id) != region:
                raise _InvalidRequest(
                    f"No such payment_intent: '{intent_id}'", param="payment_intent", code="resource_missing"
                )
        except _InvalidRequest as exc:
            return await after_delay(
                draw, _error(request, exc.status, "invalid_request_error", exc.message, exc.code, exc.param)
            )

        def execute() -> Response:
            return self._refund(request, region, key, intent_id, amount, metadata, reason)

        fp = fingerprint("POST", "/v1/refunds", pairs)
        return await run_payment(self.gateway, request, region, draw, key, fp, execute, self._conflicts(request))

    def _refund(
        self,
        request: Request,
        region: str,
        key: str | None,
        intent_id: str,
        amount: int | None,
        metadata: dict[str, str],
        reason: str | None,
    ) -> Response:
        charge = self.gateway.ledger.get(intent_id, region)
        if charge is None:
            return _error(
                request, 400, "invalid_request_error",
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                code="charge_not_refundable", param="payment_intent",
            )
        try:
            refund = self.gateway.ledger.refund(
                charge, amount, "re_" + random_id(24), metadata.get("refund_id"), key
            )
        except RefundExceedsCharge as exc:
            if exc.remaining == 0:
                return _error(
                    request, 400, "invalid_request_error",
                    f"Charge {charge.extra['charge_id']} has already been refunded.",
                    code="charge_already_refunded",
                )
            cur = charge.currency
            return _error(
                request, 400, "invalid_request_error",
                f"Refund amount ({iso.to_major(exc.requested, cur)} {cur}) is greater than unrefunded "
                f"amount on charge ({iso.to_major(exc.remaining, cur)} {cur})",
                code="amount_too_large", param="amount",
            )
        body = {
            "id": refund.id,
            "object": "refund",
            "amount": refund.amount,
            "charge": charge.extra["charge_id"],
            "created": unix_now(),
            "currency": charge.currency.lower(),
            "metadata": dict(metadata),
            "payment_intent": intent_id,
            "reason": reason,
            "status": "succeeded",
        }
        return json_response(200, body, _headers(request))


def _region_guard(endpoint):
    async def guarded(request: Request) -> Response:
        if request.path_params["region"] not in REGIONS:
            raise HTTPException(404)
        return await endpoint(request)

    return guarded


def create_app(seed: int | None = None, timeout_hold_s: float = DEFAULT_TIMEOUT_HOLD_S) -> CaptureRawSend:
    """The Stripe sandbox as an ASGI app; `app.gateway` is its state."""
    gateway = Gateway("stripe", "Stripe", seed, timeout_hold_s)
    sandbox = StripeSandbox(gateway)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return _error(
            request, status, "invalid_request_error",
            f"Unrecognized request URL ({request.method}: {request.url.path}).",
        )

    routes = [
        Route("/{region}/v1/payment_intents", _region_guard(sandbox.create_intent), methods=["POST"]),
        Route("/{region}/v1/payment_intents/search", _region_guard(sandbox.search_intents), methods=["GET"]),
        Route("/{region}/v1/payment_intents/{intent_id}", _region_guard(sandbox.get_intent), methods=["GET"]),
        Route("/{region}/v1/refunds", _region_guard(sandbox.create_refund), methods=["POST"]),
        *sandbox_routes(gateway),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    return CaptureRawSend(app, gateway)

"""Sandbox Braintree GraphQL: `chargePaymentMethod`, `refundTransaction`, transaction search, `ping`.

The sandbox does not run a GraphQL engine: it recognises the operation by its root field and
answers with a fixed selection (every field of the documented subset), which is a superset of
what the adapters select.

Currency: Braintree's `TransactionInput` has no currency; the merchant account decides it. Here a
`merchantAccountId` ending in `_<ISO 4217 code>` (e.g. `acme_EUR`) is an account in that currency;
any other id, or none, is the region's default account (EUR in eu, USD in us, AUD in apac).

Idempotency: Braintree documents "At-Most-Once Processing" with a client-chosen request key; the
sandbox takes that key from the `Idempotency-Key` HTTP header (up to 255 characters).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox_gateways.common import currency as iso
from sandbox_gateways.common.clock import lower_id, utc_now_iso
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

MAX_KEY_LENGTH = 255
REGION_DEFAULT_CURRENCY = {"eu": "EUR", "us": "USD", "apac": "AUD"}
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECLINES = {
    TokenOutcome.DECLINED: ("Do Not Honor", "2000"),
    TokenOutcome.INSUFFICIENT_FUNDS: ("Insufficient Funds", "2001"),
    TokenOutcome.PROCESSING_ERROR: ("Processor Network Unavailable - Try Again", "3000"),
}
_OPERATIONS = (
    ("charge", re.compile(r"\bchargePaymentMethod\b")),
    ("refund", re.compile(r"\brefundTransaction\b")),
    ("search", re.compile(r"\bsearch\b[\s\S]*\btransactions\b")),
    ("ping", re.compile(r"\bping\b")),
)
_PAYMENT_OPERATIONS = frozenset({"charge", "refund"})


def _global_id(kind: str, legacy_id: str) -> str:
    return base64.b64encode(f"{kind}_{legacy_id}".encode()).decode()


def _body(data: Any = None, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if data is not None or errors is None:
        body["data"] = data
    if errors:
        body["errors"] = errors
    body["extensions"] = {"requestId": str(uuid.uuid4())}
    return body


def _gql_error(message: str, error_class: str, path: list[str] | None = None, **extensions: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message}
    if path:
        error["path"] = path
    error["extensions"] = {"errorClass": error_class, **extensions}
    return error


def _error_response(status: int, message: str, error_class: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, _body(errors=[_gql_error(message, error_class)]), headers)


def _fault_error(status: int) -> Response:
    if status == 429:
        return _error_response(429, "Too many requests", "RESOURCE_LIMIT", {"Retry-After": "1"})
    if status == 503:
        return _error_response(503, "Service unavailable", "UNAVAILABLE", {"Retry-After": "1"})
    if status >= 500:
        return _error_response(status, "An internal error occurred", "INTERNAL")
    return _error_response(status, "The request could not be processed", "VALIDATION")


def _auth_error(request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            decoded = ""
        public, sep, private = decoded.partition(":")
        if sep and public and private:
            return None
    return _error_response(401, "Authentication credentials are invalid.", "AUTHENTICATION")


def _version_error(request: Request) -> Response | None:
    version = request.headers.get("braintree-version")
    if version is None:
        return _error_response(
            400, "Braintree-Version header is required (e.g. Braintree-Version: 2019-01-01).", "VALIDATION"
        )
    if not _VERSION_RE.match(version):
        return _error_response(400, f"Braintree-Version '{version}' is not a valid date (YYYY-MM-DD).", "VALIDATION")
    return None


def _classify(payload: Any) -> str | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return None
    query = payload["query"]
    for name, pattern in _OPERATIONS:
        if pattern.search(query):
            return name
    return None


def _account_currency(region: str, merchant_account_id: Any) -> str:
    if isinstance(merchant_account_id, str) and len(merchant_account_id) > 4 and merchant_account_id[-4] == "_":
        code = iso.normalize(merchant_account_id[-3:])
        if code is not None:
            return code
    return REGION_DEFAULT_CURRENCY[region]


class _Validation(Exception):
    def __init__(self, message: str, legacy_code: str | None, input_path: list[str]):
        super().__init__(message)
        self.message = message
        self.legacy_code = legacy_code
        self.input_path = input_path


class BraintreeSandbox:
    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.legacy_ids: dict[str, str] = {}  # legacy id -> charge id (the global id)

        gateway.on_reset(self.legacy_ids.clear)

    @staticmethod
    def _conflicts(root: str) -> Conflicts:
        return Conflicts(
            mismatch=lambda: json_response(
                200,
                _body(
                    {root: None},
                    [_gql_error(
                        "Idempotency-Key was already used with different request details.",
                        "VALIDATION", [root], retryable=False,
                    )],
                ),
            ),
            in_flight=lambda: json_response(
                200,
                _body(
                    {root: None},
                    [_gql_error(
                        "A request with this Idempotency-Key is still being processed; retry later.",
                        "VALIDATION", [root], retryable=True,
                    )],
                ),
            ),
        )

    async def graphql(self, request: Request) -> Response:
        region = request.path_params["region"]
        if region not in REGIONS:
            raise HTTPException(404)
        raw = await request.body()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        operation = _classify(payload)
        draw, early = await pre_faults(self.gateway, request, region, _fault_error)
        if early is not None:
            return early
        denied = _auth_error(request) or _version_error(request)
        if denied is not None:
            return await after_delay(draw, denied)
        if payload is None:
            return await after_delay(draw, _error_response(400, "Request body is not valid JSON.", "VALIDATION"))
        if operation is None:
            return await after_delay(
                draw,
                json_response(
                    200,
                    _body(errors=[_gql_error(
                        "This sandbox serves chargePaymentMethod, refundTransaction, "
                        "search.transactions and ping only.", "VALIDATION",
                    )]),
                ),
            )
        variables = payload.get("variables") or {}
        if not isinstance(variables, dict):
            variables = {}
        if operation == "ping":
            return await after_delay(draw, json_response(200, _body({"ping": "pong"})))
        if operation == "search":
            return await after_delay(draw, self._search(region, variables))

        root = "chargePaymentMethod" if operation == "charge" else "refundTransaction"
        try:
            key = request.headers.get("idempotency-key")
            if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
                raise _Validation(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters long.", None, [])
            if operation == "charge":
                execute = self._prepare_charge(region, variables, key)
            else:
                execute = self._prepare_refund(region, variables, key)
        except _Validation as exc:
            extensions: dict[str, Any] = {"inputPath": exc.input_path} if exc.input_path else {}
            if exc.legacy_code:
                extensions["legacyCode"] = exc.legacy_code
            body = _body({root: None}, [_gql_error(exc.message, "VALIDATION", [root], **extensions)])
            return await after_delay(draw, json_response(200, body))
        fp = fingerprint(operation, variables)
        return await run_payment(self.gateway, request, region, draw, key, fp, execute, self._conflicts(root))

    # --- charge ---------------------------------------------------------------------------------

    def _prepare_charge(self, region: str, variables: dict[str, Any], key: str | None):
        data = variables.get("input")
        if not isinstance(data, dict):
            raise _Validation("Variable 'input' is required.", None, ["input"])
        token = data.get("paymentMethodId")
        if not isinstance(token, str) or not token:
            raise _Validation("Payment method ID is required.", "91508", ["input", "paymentMethodId"])
        transaction = data.get("transaction")
        if not isinstance(transaction, dict):
            raise _Validation("Transaction input is required.", None, ["input", "transaction"])
        currency = _account_currency(region, transaction.get("merchantAccountId"))
        amount_raw = transaction.get("amount")
        if amount_raw is None:
            raise _Validation("Amount is required.", "81502", ["input", "transaction", "amount"])
        amount = iso.to_minor(amount_raw, currency)
        if amount is None:
            raise _Validation("Amount is an invalid format.", "81503", ["input", "transaction", "amount"])
        if amount <= 0:
            raise _Validation("Amount must be greater than zero.", "81531", ["input", "transaction", "amount"])
        order_id = transaction.get("orderId")
        if order_id is not None and (not isinstance(order_id, str) or len(order_id) > 255):
            raise _Validation("Order ID is too long.", "91501", ["input", "transaction", "orderId"])
        outcome = token_outcome(token)
        if outcome is TokenOutcome.INVALID:
            raise _Validation("Unknown or expired payment method ID.", "91565", ["input", "paymentMethodId"])
        merchant_account = transaction.get("merchantAccountId")

        def execute() -> Response:
            if outcome is not TokenOutcome.APPROVED:
                message, code = _DECLINES[outcome]
                error = _gql_error(message, "VALIDATION", ["chargePaymentMethod"], legacyCode=code)
                return json_response(200, _body({"chargePaymentMethod": None}, [error]))
            legacy_id = lower_id(8)
            charge_id = _global_id("transaction", legacy_id)
            created_at = utc_now_iso()
            node = {
                "id": charge_id,
                "legacyId": legacy_id,
                "status": "SUBMITTED_FOR_SETTLEMENT",
                "orderId": order_id,
                "amount": {"value": iso.to_major(amount, currency), "currencyCode": currency},
                "merchantAccountId": merchant_account,
                "createdAt": created_at,
            }
            self.gateway.ledger.record(
                Charge(
                    id=charge_id,
                    region=region,
                    amount=amount,
                    currency=currency,
                    reference=order_id,
                    idempotency_key=key,
                    created_at=created_at,
                    extra={"node": node},
                )
            )
            self.legacy_ids[legacy_id] = charge_id
            return json_response(200, _body({"chargePaymentMethod": {"transaction": node}}))

        return execute

    # --- refund ---------------------------------------------------------------------------------

    def _prepare_refund(self, region: str, variables: dict[str, Any], key: str | None):
        data = variables.get("input")
        if not isinstance(data, dict):
            raise _Validation("Variable 'input' is required.", None, ["input"])
        transaction_id = data.get("transactionId")
        if not isinstance(transaction_id, str) or not transaction_id:
            raise _Validation("Transaction ID is required.", None, ["input", "transactionId"])
        refund_input = data.get("refund") or {}
        if not isinstance(refund_input, dict):
            raise _Validation("Refund input is invalid.", None, ["input", "refund"])
        amount_raw = refund_input.get("amount")
        order_id = refund_input.get("orderId")

        def execute() -> Response:
            ledger = self.gateway.ledger
            charge = ledger.get(self.legacy_ids.get(transaction_id, transaction_id), region)
            if charge is None:
                error = _gql_error(
                    "An object with this ID was not found.", "NOT_FOUND", ["refundTransaction"],
                    inputPath=["input", "transactionId"],
                )
                return json_response(200, _body({"refundTransaction": None}, [error]))
            amount: int | None = None
            if amount_raw is not None:
                amount = iso.to_minor(amount_raw, charge.currency)
                if amount is None or amount <= 0:
                    error = _gql_error(
                        "Amount is an invalid format.", "VALIDATION", ["refundTransaction"],
                        legacyCode="81503", inputPath=["input", "refund", "amount"],
                    )
                    return json_response(200, _body({"refundTransaction": None}, [error]))
            legacy_id = lower_id(8)
            refund_id = _global_id("transaction", legacy_id)
            try:
                refund = ledger.refund(charge, amount, refund_id, order_id, key)
            except RefundExceedsCharge as exc:
                if exc.remaining == 0:
                    message, code = "Transaction has already been fully refunded.", "91512"
                else:
                    message, code = "Refund amount is too large.", "91521"
                error = _gql_error(
                    message, "VALIDATION", ["refundTransaction"], legacyCode=code,
                    inputPath=["input", "refund", "amount"],
                )
                return json_response(200, _body({"refundTransaction": None}, [error]))
            node = {
                "id": refund.id,
                "legacyId": legacy_id,
                "status": "SUBMITTED_FOR_SETTLEMENT",
                "orderId": order_id,
                "amount": {"value": iso.to_major(refund.amount, charge.currency), "currencyCode": charge.currency},
                "refundedTransaction": {"id": charge.id},
                "createdAt": refund.created_at,
            }
            return json_response(200, _body({"refundTransaction": {"refund": node}}))

        return execute

    # --- search ---------------------------------------------------------------------------------

    def _search(self, region: str, variables: dict[str, Any]) -> Response:
        criteria = variables.get("input")
        if not isinstance(criteria, dict):
            error = _gql_error("Variable 'input' is required.", "VALIDATION", ["search"])
            return json_response(200, _body({"search": None}, [error]))
        ledger = self.gateway.ledger
        charges: list[Charge] | None = None
        order = criteria.get("orderId")
        if isinstance(order, dict):
            values = [order["is"]] if "is" in order else order.get("in") or []
            charges = [c for v in values if isinstance(v, str) for c in ledger.find_by_reference(region, v)]
        ident = criteria.get("id")
        if isinstance(ident, dict):
            values = [ident["is"]] if "is" in ident else ident.get("in") or []
            ids = {self.legacy_ids.get(v, v) for v in values if isinstance(v, str)}
            pool = charges if charges is not None else [c for c in ledger.charges() if c.region == region]
            charges = [c for c in pool if c.id in ids]
        if charges is None:
            error = _gql_error(
                "The sandbox searches transactions by orderId or id only.", "VALIDATION", ["search"]
            )
            return json_response(200, _body({"search": None}, [error]))
        edges = []
        for charge in sorted(charges, key=lambda c: c.created_at, reverse=True):
            node = dict(charge.extra["node"])
            edges.append({"node": node})
        connection = {
            "pageInfo": {"hasNextPage": False, "startCursor": None, "endCursor": None},
            "edges": edges,
        }
        return json_response(200, _body({"search": {"transactions": connection}}))


def create_app(seed: int | None = None, timeout_hold_s: float = DEFAULT_TIMEOUT_HOLD_S) -> CaptureRawSend:
    """The Braintree GraphQL sandbox as an ASGI app; `app.gateway` is its state."""
    gateway = Gateway("braintree", "Braintree", seed, timeout_hold_s)
    sandbox = BraintreeSandbox(gateway)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return _error_response(status, f"{request.method} {request.url.path} not found", "NOT_FOUND")

    routes = [
        Route("/{region}/graphql", sandbox.graphql, methods=["POST"]),
        *sandbox_routes(gateway),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    return CaptureRawSend(app, gateway)

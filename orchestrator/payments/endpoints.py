"""The merchant API: payments and refunds."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from orchestrator.kit.errors import invalid
from orchestrator.merchants.auth import current_merchant_id
from orchestrator.payments.idempotency import IdempotencyRequest, request_fingerprint
from orchestrator.payments.schemas import PaymentCreate, PaymentList, PaymentOut, RefundCreate, RefundOut
from orchestrator.payments.validation import check_idempotency_key, parse_payment, parse_refund

router = APIRouter(prefix="/v1", tags=["payments"])

_ERRORS = {401: {"description": "Missing or invalid API key"},
           409: {"description": "Idempotency-Key reused with other parameters, or still in use"},
           422: {"description": "Invalid request"},
           503: {"description": "Load shed, or the database unavailable: retry later with the same "
                                "Idempotency-Key (see Retry-After)"}}


async def _json_body(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return None
        raise invalid("parameter_missing", "A JSON request body is required.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("invalid_json", "The request body is not valid JSON.") from None


def _idempotency(request: Request, key: str | None, body: Any) -> IdempotencyRequest | None:
    key = check_idempotency_key(key)
    if key is None:
        return None
    return IdempotencyRequest(key, request_fingerprint(request.method, request.url.path, body))


def _respond(body: dict, replayed: bool) -> JSONResponse:
    if replayed:
        return JSONResponse(body, 200, headers={"Idempotent-Replayed": "true"})
    return JSONResponse(body, 201)


@router.post(
    "/payments", status_code=201, response_model=PaymentOut, responses=_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": PaymentCreate.model_json_schema()}}}},
)
async def create_payment(
    request: Request,
    merchant_id: str = Depends(current_merchant_id),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    """Take a payment: route it to the best compliant provider and keep it alive through faults.

    A decline is a payment outcome (201 with `status: failed`), not an HTTP error. With an
    `Idempotency-Key`, the same request returns the same payment (200, `Idempotent-Replayed: true`).
    """
    raw = await _json_body(request)
    body, region = parse_payment(raw)
    idem = _idempotency(request, idempotency_key, raw)
    result = await request.app.state.payments.create(merchant_id, body, region, idem)
    return _respond(result.body, result.replayed)


@router.get("/payments/{payment_id}", response_model=PaymentOut, responses=_ERRORS)
async def get_payment(payment_id: str, request: Request, merchant_id: str = Depends(current_merchant_id)):
    """One of the merchant's payments, with every provider attempt. Another merchant's is a 404."""
    return JSONResponse(await request.app.state.payments.get(merchant_id, payment_id))


@router.get("/payments", response_model=PaymentList, responses=_ERRORS)
async def list_payments(
    request: Request,
    merchant_id: str = Depends(current_merchant_id),
    limit: int = Query(10, ge=1, le=100),
    starting_after: str | None = Query(None),
):
    """The merchant's payments, newest first, paginated with `starting_after` like Stripe's lists."""
    data, has_more = await request.app.state.payments.list(merchant_id, limit, starting_after)
    return JSONResponse({"object": "list", "data": data, "has_more": has_more, "url": "/v1/payments"})


@router.post(
    "/payments/{payment_id}/refunds", status_code=201, response_model=RefundOut, responses=_ERRORS,
    openapi_extra={"requestBody": {"required": False, "content": {
        "application/json": {"schema": RefundCreate.model_json_schema()}}}},
)
async def create_refund(
    payment_id: str,
    request: Request,
    merchant_id: str = Depends(current_merchant_id),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    """Refund all or part of a succeeded payment, at the provider that charged it."""
    raw = await _json_body(request, optional=True)
    body = parse_refund(raw)
    idem = _idempotency(request, idempotency_key, raw)
    result = await request.app.state.refunds.create(merchant_id, payment_id, body.amount, idem)
    return _respond(result.body, result.replayed)

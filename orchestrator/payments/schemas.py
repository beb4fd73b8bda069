"""Request validation and the response objects of the merchant API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from orchestrator.kit.clock import isoformat_z
from orchestrator.payments.models import Payment, PaymentAttempt, Refund

MAX_AMOUNT = 99_999_999


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(description="Minor units, 1..99,999,999")
    currency: StrictStr = Field(description="ISO 4217, upper case", examples=["EUR"])
    country: StrictStr = Field(description="ISO 3166-1 alpha-2; decides the region", examples=["DE"])
    payment_method: StrictStr = Field(min_length=1, max_length=255, description="A payment-method token")
    description: StrictStr | None = Field(default=None, max_length=1000)
    metadata: dict[StrictStr, StrictStr] = Field(default_factory=dict, max_length=50)


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt | None = Field(default=None, description="Minor units; omit for all that is left")


class Failure(BaseModel):
    code: str
    message: str
    decline: bool


class Attempt(BaseModel):
    provider: str
    region: str
    number: int
    kind: Literal["charge", "replay"]
    outcome: Literal["pending", "succeeded", "declined", "error", "ambiguous"]
    error_class: str | None
    code: str | None
    http_status: int | None
    latency_ms: float | None
    breaker_state: str | None
    decision: str | None


class Skip(BaseModel):
    provider: str
    reason: str  # breaker_open | concurrency_limit


class Route(BaseModel):
    reason: str  # score | forced | only_option | no_route
    overrides: list[str]  # ids of the overrides applied
    candidates: list[str]  # in the order they were to be tried
    scores: dict[str, float] = {}  # lower is better
    excluded: dict[str, str] = {}  # provider -> why it was not a candidate
    skipped: list[Skip] = []  # candidates passed over at call time (breaker open, concurrency limit)


class PaymentOut(BaseModel):
    id: str
    object: Literal["payment"] = "payment"
    status: Literal["succeeded", "failed", "processing"]
    amount: int
    amount_refunded: int
    currency: str
    country: str
    region: str
    provider: str | None
    provider_reference: str | None
    description: str | None
    metadata: dict[str, str]
    route: Route
    attempts: list[Attempt]
    failure: Failure | None
    created_at: str


class RefundOut(BaseModel):
    id: str
    object: Literal["refund"] = "refund"
    payment_id: str
    amount: int
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    provider: str
    failure: Failure | None
    created_at: str


class PaymentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PaymentOut]
    has_more: bool
    url: str = "/v1/payments"


def attempt_to_dict(attempt: PaymentAttempt) -> dict[str, Any]:
    return {
        "provider": attempt.provider,
        "region": attempt.region,
        "number": attempt.number,
        "kind": attempt.kind,
        "outcome": attempt.outcome,
        "error_class": attempt.error_class,
        "code": attempt.code,
        "http_status": attempt.http_status,
        "latency_ms": None if attempt.latency_ms is None else round(attempt.latency_ms, 1),
        "breaker_state": attempt.breaker_state,
        "decision": attempt.decision,
    }


def payment_to_dict(payment: Payment, attempts: list[PaymentAttempt]) -> dict[str, Any]:
    route = payment.route or {}
    failure = None
    if payment.status == "failed":
        failure = {"code": payment.failure_code, "message": payment.failure_message,
                   "decline": bool(payment.failure_decline)}
    return {
        "id": payment.id,
        "object": "payment",
        "status": payment.status,
        "amount": payment.amount,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "country": payment.country,
        "region": payment.region,
        "provider": payment.provider,
        "provider_reference": payment.provider_reference,
        "description": payment.description,
        "metadata": payment.metadata_ or {},
        "route": {"reason": route.get("reason", "score"), "overrides": route.get("overrides", []),
                  "candidates": route.get("candidates", []), "scores": route.get("scores", {}),
                  "excluded": route.get("excluded", {}), "skipped": route.get("skipped", [])},
        "attempts": [attempt_to_dict(a) for a in sorted(attempts, key=lambda a: a.number)],
        "failure": failure,
        "created_at": isoformat_z(payment.created_at),
    }


def refund_to_dict(refund: Refund) -> dict[str, Any]:
    failure = None
    if refund.status == "failed":
        failure = {"code": refund.failure_code, "message": refund.failure_message, "decline": False}
    return {
        "id": refund.id,
        "object": "refund",
        "payment_id": refund.payment_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "status": refund.status,
        "provider": refund.provider,
        "failure": failure,
        "created_at": isoformat_z(refund.created_at),
    }

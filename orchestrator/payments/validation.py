"""Checks on a payment request beyond its JSON types, in the contract's order and with its codes."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from orchestrator.kit.errors import ApiError, invalid
from orchestrator.kit.money import is_iso4217
from orchestrator.kit.pan import contains_pan
from orchestrator.payments.idempotency import MAX_KEY_LENGTH
from orchestrator.payments.schemas import MAX_AMOUNT, PaymentCreate, RefundCreate
from orchestrator.routing.regions import region_for_country


def _values(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value)
    else:
        yield node


def refuse_card_numbers(body: Any) -> None:
    """A card number anywhere in the request is refused before anything is stored or logged."""
    for value in _values(body):
        if isinstance(value, bool):
            continue
        if isinstance(value, (str, int)) and contains_pan(str(value)):
            raise invalid("pan_not_accepted",
                          "Card numbers are not accepted; send a payment-method token instead.", "payment_method")


def _from_validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first.get("loc", ())) or None
    code = "parameter_missing" if first.get("type") == "missing" else "parameter_invalid"
    if first.get("type") == "extra_forbidden":
        code = "parameter_unknown"
    return invalid(code, f"{param}: {first.get('msg')}" if param else str(first.get("msg")), param)


def parse_payment(raw: Any) -> tuple[PaymentCreate, str]:
    if not isinstance(raw, dict):
        raise invalid("parameter_invalid", "The request body must be a JSON object.")
    refuse_card_numbers(raw)
    try:
        body = PaymentCreate.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None
    if body.amount <= 0:
        raise invalid("amount_too_small", "amount must be a positive integer in minor units.", "amount")
    if body.amount > MAX_AMOUNT:
        raise invalid("amount_too_large", f"amount must be at most {MAX_AMOUNT:,}.", "amount")
    region = region_for_country(body.country)
    if region is None:
        raise invalid("unsupported_country",
                      f"Country '{body.country}' is not supported (ISO 3166-1 alpha-2, upper case).", "country")
    if not (len(body.currency) == 3 and body.currency.isupper() and is_iso4217(body.currency)):
        raise invalid("invalid_currency", f"'{body.currency}' is not an ISO 4217 currency code (upper case).",
                      "currency")
    return body, region


def parse_refund(raw: Any) -> RefundCreate:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise invalid("parameter_invalid", "The request body must be a JSON object.")
    try:
        body = RefundCreate.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None
    if body.amount is not None and body.amount <= 0:
        raise invalid("amount_too_small", "amount must be a positive integer in minor units.", "amount")
    return body


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH:
        raise invalid("idempotency_key_invalid", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
                      "Idempotency-Key")
    if contains_pan(key):
        raise invalid("pan_not_accepted", "Card numbers are not accepted.", "Idempotency-Key")
    return key

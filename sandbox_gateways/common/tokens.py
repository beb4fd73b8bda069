"""Test payment-method tokens understood by all three gateways."""

from __future__ import annotations

import enum


class TokenOutcome(enum.Enum):
    APPROVED = "approved"
    DECLINED = "declined"  # hard decline, generic
    INSUFFICIENT_FUNDS = "insufficient_funds"  # hard decline
    PROCESSING_ERROR = "processing_error"  # soft decline: another provider may succeed
    INVALID = "invalid"  # looks like a card number: refused as an invalid request


_OUTCOMES = {
    "pm_card_visa": TokenOutcome.APPROVED,
    "pm_card_declined": TokenOutcome.DECLINED,
    "pm_card_insufficient_funds": TokenOutcome.INSUFFICIENT_FUNDS,
    "pm_card_processing_error": TokenOutcome.PROCESSING_ERROR,
}


def looks_like_pan(value: str) -> bool:
    """13-19 digits (spaces and dashes ignored) passing the Luhn check."""
    digits = value.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def token_outcome(token: str) -> TokenOutcome:
    outcome = _OUTCOMES.get(token)
    if outcome is not None:
        return outcome
    if looks_like_pan(token):
        return TokenOutcome.INVALID
    return TokenOutcome.APPROVED


def mask(value: str) -> str:
    """What may be echoed back of a value that could be a card number."""
    return "****" + value[-4:] if len(value) > 4 else "****"

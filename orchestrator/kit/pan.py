"""Card-number detection: a PAN must never be accepted, stored, logged or put on a span."""

import re

# 13 to 19 digits, optionally grouped by single spaces or dashes, not part of a longer digit run.
_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def contains_pan(text: str) -> bool:
    """True when `text` holds a 13-19 digit sequence that passes the Luhn check."""
    if len(text) < 13:
        return False
    for match in _CANDIDATE.finditer(text):
        digits = match.group().replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False

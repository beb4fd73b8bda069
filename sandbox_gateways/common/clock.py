"""Timestamps and identifiers."""

from __future__ import annotations

import secrets
import string
import time
from datetime import datetime, timezone

_ALNUM = string.ascii_letters + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits
_LOWER_ALNUM = string.ascii_lowercase + string.digits


def utc_now_iso() -> str:
    """ISO 8601 UTC with millisecond precision, e.g. `2026-12-04T12:00:00.123Z`."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def unix_now() -> int:
    return int(time.time())


def random_id(length: int, alphabet: str = _ALNUM) -> str:
    """Identifiers come from the OS RNG, never from the seeded fault RNG, so that a restarted
    gateway never hands out an identifier that an earlier run already used."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def upper_id(length: int) -> str:
    return random_id(length, _UPPER_ALNUM)


def lower_id(length: int) -> str:
    return random_id(length, _LOWER_ALNUM)

"""Idempotency-Key handling shared by payments and refunds.

The unique (merchant, key) constraint is the lock: the request whose insert commits first owns the key;
a concurrent duplicate fails its insert, then waits for the owner to complete and replays its result.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from orchestrator.kit.clock import utcnow
from orchestrator.kit.errors import ApiError
from orchestrator.payments.models import IdempotencyRecord
from orchestrator.payments.repository import IdempotencyRepository

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class IdempotencyRequest:
    key: str
    request_hash: str


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """Same parameters, same fingerprint, whatever the JSON spacing or key order."""
    canonical = json.dumps({"m": method, "p": path, "b": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_reused() -> ApiError:
    return ApiError(409, "idempotency_error", "idempotency_key_reused",
                    "This Idempotency-Key was already used with different parameters.", "Idempotency-Key")


def key_in_use() -> ApiError:
    return ApiError(409, "idempotency_error", "idempotency_key_in_use",
                    "A request with this Idempotency-Key is still being processed; retry shortly.",
                    "Idempotency-Key", {"Retry-After": "1"})


async def wait_for_owner(
    sessionmaker, merchant_id: str, idem: IdempotencyRequest, *, wait_s: float, stale_after: timedelta
) -> IdempotencyRecord:
    """Wait until the request that owns the key has completed; returns its record for the replay.

    A record left incomplete by a crashed process counts as completed once it is older than
    `stale_after` (the payment deadline and a margin): the resource itself then says where it stands.
    """
    give_up = time.monotonic() + wait_s
    delay = 0.02
    while True:
        async with sessionmaker() as session:
            record = await IdempotencyRepository(session).find(merchant_id, idem.key)
        if record is not None:
            if record.request_hash != idem.request_hash:
                raise key_reused()
            if record.completed or utcnow() - record.created_at > stale_after:
                return record
        if time.monotonic() + delay > give_up:
            raise key_in_use()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)

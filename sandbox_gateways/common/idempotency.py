"""Idempotency store: key -> request fingerprint and the saved response.

A key is scoped to its region (each region is a separate provider account). The fingerprint covers
the endpoint and the request parameters; the same key with another fingerprint is a mismatch. A
key whose first request is still executing is "in flight".
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from typing import Any


class Begin(enum.Enum):
    NEW = "new"  # the caller now owns the key and must complete() or abandon() it
    REPLAY = "replay"  # a saved response exists for the same request
    MISMATCH = "mismatch"  # the key was used with other parameters
    IN_FLIGHT = "in_flight"  # the first request with this key is still executing


@dataclass(slots=True)
class SavedResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    saved: SavedResponse | None = None


def fingerprint(*parts: Any) -> str:
    """A stable digest of the endpoint and parameters (dict order does not matter)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}

    def clear(self) -> None:
        self._entries.clear()

    def begin(self, region: str, key: str, fp: str) -> tuple[Begin, SavedResponse | None]:
        entry = self._entries.get((region, key))
        if entry is None:
            self._entries[(region, key)] = _Entry(fp)
            return Begin.NEW, None
        if entry.fingerprint != fp:
            return Begin.MISMATCH, None
        if entry.saved is None:
            return Begin.IN_FLIGHT, None
        return Begin.REPLAY, entry.saved

    def complete(self, region: str, key: str, saved: SavedResponse) -> None:
        entry = self._entries.get((region, key))
        if entry is not None:
            entry.saved = saved

    def abandon(self, region: str, key: str) -> None:
        """Forget an in-flight key whose request ended without a saved result."""
        entry = self._entries.get((region, key))
        if entry is not None and entry.saved is None:
            del self._entries[(region, key)]

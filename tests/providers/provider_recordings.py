"""Recorded provider payloads (tests/fixtures/providers/*.json) and values shared by the provider tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from orchestrator.providers.base import Timeouts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"


@cache
def _load(provider: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{provider}.json").read_text(encoding="utf-8"))


def recorded(provider: str, case: str) -> tuple[int, dict[str, str], Any]:
    """(status, headers, body) of one recorded answer."""
    entry = _load(provider)[case]
    return entry["status"], dict(entry["headers"]), entry["body"]


def recorded_cases(provider: str) -> list[str]:
    return [name for name in _load(provider) if not name.startswith("_")]


STRIPE_SECRET = "sk_test_51SecretValueNeverLogged"
ADYEN_SECRET = "AQEyhmfxLI3MaBFLw0m/n3Q5qf3VaY9UCJ14XWZE03G/k2NFitRvbe4N1XqH1eHaH2AksaKpSecret"
BRAINTREE_PUBLIC = "v4ndq314c2s5c28r"
BRAINTREE_PRIVATE = "93b78bc88be90d93ac282e50ae569fdd"
FAST = Timeouts(connect_s=0.5, read_s=0.5)

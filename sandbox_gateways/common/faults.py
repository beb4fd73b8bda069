"""Per-region fault configuration and seeded fault draws.

Every faulted request consumes exactly four numbers from the gateway's seeded `random.Random`, in
this order: reset, error, latency jitter, timeout. The same seed and the same request sequence
therefore give the same draws, whatever the configuration.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox_gateways.common.clock import utc_now_iso

REGIONS: tuple[str, ...] = ("eu", "us", "apac")
STATUS_PAGE_VALUES: tuple[str, ...] = (
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
_RATE_FIELDS = ("error_rate", "timeout_rate", "reset_rate")
_MS_FIELDS = ("latency_ms", "latency_jitter_ms")
_MAX_LATENCY_MS = 600_000.0


class FaultValidationError(ValueError):
    """A fault update that cannot be applied; `errors` lists each problem."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(slots=True)
class FaultConfig:
    error_rate: float = 0.0
    error_status: int = 503
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    timeout_rate: float = 0.0
    reset_rate: float = 0.0
    status_page: str = "operational"
    updated_at: str = field(default_factory=utc_now_iso)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Draw:
    """The fault outcome of one request."""

    reset: bool = False
    error: bool = False
    error_status: int = 503
    delay_s: float = 0.0
    timeout: bool = False


NO_FAULT = Draw()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_fault_update(payload: Any) -> dict[str, Any]:
    """Check a `PUT /_sandbox/faults/{region}` body; return the fields to set."""
    if not isinstance(payload, dict):
        raise FaultValidationError([{"field": "body", "message": "must be a JSON object"}])
    errors: list[dict[str, str]] = []
    update: dict[str, Any] = {}
    known = set(_RATE_FIELDS) | set(_MS_FIELDS) | {"error_status", "status_page"}
    for name in payload:
        if name not in known:
            errors.append({"field": name, "message": "unknown field"})
    for name in _RATE_FIELDS:
        if name in payload:
            value = payload[name]
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                errors.append({"field": name, "message": "must be a number between 0 and 1"})
            else:
                update[name] = float(value)
    for name in _MS_FIELDS:
        if name in payload:
            value = payload[name]
            if not _is_number(value) or not 0.0 <= value <= _MAX_LATENCY_MS:
                errors.append(
                    {"field": name, "message": f"must be a number between 0 and {_MAX_LATENCY_MS:.0f}"}
                )
            else:
                update[name] = float(value)
    if "error_status" in payload:
        value = payload["error_status"]
        if not isinstance(value, int) or isinstance(value, bool) or not 400 <= value <= 599:
            errors.append({"field": "error_status", "message": "must be an integer HTTP status 400-599"})
        else:
            update["error_status"] = value
    if "status_page" in payload:
        value = payload["status_page"]
        if value not in STATUS_PAGE_VALUES:
            errors.append(
                {"field": "status_page", "message": "must be one of " + ", ".join(STATUS_PAGE_VALUES)}
            )
        else:
            update["status_page"] = value
    if errors:
        raise FaultValidationError(errors)
    return update


class FaultState:
    """Fault configuration of the three regions of one gateway, and its seeded RNG."""

    def __init__(self, seed: int | None, salt: str):
        self._seed = seed
        self._salt = salt
        self.configs: dict[str, FaultConfig] = {}
        self.rng = random.Random()
        self.clear()
        self.reseed()

    def reseed(self) -> None:
        if self._seed is None:
            self.rng.seed()
        else:
            # A string seed is hashed deterministically (version 2 seeding), so each provider
            # gets its own repeatable sequence from one user-given seed.
            self.rng.seed(f"{self._seed}:{self._salt}")

    def clear(self) -> None:
        self.configs = {region: FaultConfig() for region in REGIONS}

    def update(self, region: str, update: dict[str, Any]) -> None:
        regions = REGIONS if region == "all" else (region,)
        now = utc_now_iso()
        for name in regions:
            config = self.configs[name]
            for key, value in update.items():
                setattr(config, key, value)
            config.updated_at = now

    def draw(self, region: str) -> Draw:
        config = self.configs[region]
        random_ = self.rng.random
        r_reset, r_error, r_jitter, r_timeout = random_(), random_(), random_(), random_()
        if r_reset < config.reset_rate:
            return Draw(reset=True)
        if r_error < config.error_rate:
            return Draw(error=True, error_status=config.error_status)
        delay_ms = config.latency_ms
        if config.latency_jitter_ms:
            delay_ms += (2.0 * r_jitter - 1.0) * config.latency_jitter_ms
        return Draw(delay_s=max(0.0, delay_ms) / 1000.0, timeout=r_timeout < config.timeout_rate)

    def to_dict(self) -> dict[str, Any]:
        return {region: config.to_dict() for region, config in self.configs.items()}

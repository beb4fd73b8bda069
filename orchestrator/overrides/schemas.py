from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from orchestrator.kit.clock import isoformat_z
from orchestrator.overrides.models import AuditEntry, OverrideRow

Action = Literal["force", "disable", "weight"]


class Scope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: Literal["EU", "US", "APAC"] | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    merchant_id: str | None = Field(default=None, max_length=40)


class OverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action
    provider: str
    scope: Scope = Field(default_factory=Scope)
    weight: float | None = Field(default=None, gt=0, le=1000, description="For `weight`: multiplies the share")
    fallback: StrictBool = Field(default=True, description="For `force`: false means the forced provider alone")
    enabled: StrictBool = True
    expires_at: datetime | None = None
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2026-12-04T12:00:00Z)")
        return value


class OverridePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action | None = None
    provider: str | None = None
    scope: Scope | None = None
    weight: float | None = Field(default=None, gt=0, le=1000)
    fallback: StrictBool | None = None
    enabled: StrictBool | None = None
    expires_at: datetime | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class HypotheticalOverride(OverrideCreate):
    reason: str = Field(default="preview", min_length=1, max_length=500)


class PreviewPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(gt=0, le=99_999_999)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    country: str = Field(pattern=r"^[A-Z]{2}$")
    merchant_id: str | None = None


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment: PreviewPayment
    overrides: list[HypotheticalOverride] = Field(default_factory=list, max_length=100)


def override_to_dict(row: OverrideRow, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id, "object": "override", "action": row.action, "provider": row.provider,
        "scope": {"region": row.scope_region, "country": row.scope_country, "currency": row.scope_currency,
                  "merchant_id": row.scope_merchant_id},
        "weight": row.weight, "fallback": row.fallback, "enabled": row.enabled,
        "expires_at": isoformat_z(row.expires_at) if row.expires_at else None,
        "active": row.enabled and (row.expires_at is None or row.expires_at > now),
        "reason": row.reason, "created_by": row.created_by,
        "created_at": isoformat_z(row.created_at), "updated_at": isoformat_z(row.updated_at),
    }


def audit_to_dict(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "object": "audit_entry", "actor": entry.actor, "action": entry.action,
            "target_id": entry.target_id, "at": isoformat_z(entry.at), "before": entry.before,
            "after": entry.after, "reason": entry.reason}

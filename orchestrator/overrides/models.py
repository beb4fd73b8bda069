"""Operators' override flags and the audit log of every admin change."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.kit.clock import utcnow
from orchestrator.kit.db import Base, UtcDateTime


class OverrideRow(Base):
    __tablename__ = "overrides"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))  # force | disable | weight
    provider: Mapped[str] = mapped_column(String(32))
    scope_region: Mapped[str | None] = mapped_column(String(8), nullable=True)
    scope_country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    scope_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    scope_merchant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    fallback: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))  # override.create | override.update | override.delete
    target_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)

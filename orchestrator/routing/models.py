"""The routing table (one row per provider and region) and the version every replica watches."""

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.kit.clock import utcnow
from orchestrator.kit.db import Base, UtcDateTime


class RoutingTableRow(Base):
    __tablename__ = "routing_table"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    region: Mapped[str] = mapped_column(String(8), primary_key=True)
    status_page: Mapped[str] = mapped_column(String(32), default="unknown")
    status_checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    error_rate: Mapped[float | None] = mapped_column(Float, nullable=True)  # provider faults / calls
    p99_latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)  # in the observation window
    recovering_since: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RoutingVersion(Base):
    """One row; bumped on every change to the routing table or the overrides."""

    __tablename__ = "routing_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

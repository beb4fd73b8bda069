"""Every query of the routing table and its version counter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.kit.clock import utcnow
from orchestrator.payments.models import PaymentAttempt
from orchestrator.routing.models import RoutingTableRow, RoutingVersion

NOTIFY_CHANNEL = "orchestrator_routing"


class RoutingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def version(self) -> int:
        return int(await self.session.scalar(select(RoutingVersion.version).where(RoutingVersion.id == 1)) or 0)

    async def bump_version(self) -> int:
        """Mark a change; on Postgres every replica's listener hears of it when this transaction commits."""
        await self.session.execute(update(RoutingVersion).where(RoutingVersion.id == 1)
                                   .values(version=RoutingVersion.version + 1, changed_at=utcnow()))
        version = await self.version()
        if self.session.bind.dialect.name == "postgresql":
            await self.session.execute(text("SELECT pg_notify(:channel, :payload)"),
                                       {"channel": NOTIFY_CHANNEL, "payload": str(version)})
        return version

    async def rows(self) -> list[RoutingTableRow]:
        return list(await self.session.scalars(select(RoutingTableRow)))

    async def save_rows(self, rows: list[RoutingTableRow]) -> None:
        for row in rows:
            await self.session.merge(row)

    async def recent_attempts(self, since: datetime, limit: int = 50_000) -> list[tuple]:
        """(provider, region, outcome, error_class, latency_ms) of finished first-hand calls in the window."""
        result = await self.session.execute(
            select(PaymentAttempt.provider, PaymentAttempt.region, PaymentAttempt.outcome,
                   PaymentAttempt.error_class, PaymentAttempt.latency_ms)
            .where(PaymentAttempt.started_at >= since, PaymentAttempt.kind == "charge",
                   PaymentAttempt.outcome != "pending")
            .order_by(PaymentAttempt.started_at.desc()).limit(limit))
        return list(result.all())

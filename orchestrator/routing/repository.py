"""Every query of the routing table and its version counter."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.kit.clock import utcnow
from orchestrator.payments.models import PaymentAttempt
from orchestrator.routing.models import RoutingTableRow, RoutingVersion

NOTIFY_CHANNEL = "orchestrator_routing"
PROVIDER_FAULTS = ("transient", "ambiguous")  # error classes that count against a provider


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

    async def observations(self, since: datetime) -> dict[tuple[str, str], tuple[int, float | None, float | None]]:
        """(calls, error rate, p99 latency ms) per provider and region of the finished first-hand charge
        calls started since `since`. The error rate counts only provider faults (transient and ambiguous
        outcomes), never declines. Aggregated by the database: the health job must not pull a window of
        rows into the event loop (at 100 payments/s a 60 s window is 6,000 of them, every poll). The p99
        is the discrete percentile: the smallest latency with at least 99 % of the calls at or below it."""
        a = PaymentAttempt
        window = (a.started_at >= since, a.kind == "charge", a.outcome != "pending")
        faults = func.count().filter(a.error_class.in_(PROVIDER_FAULTS))
        postgres = self.session.bind.dialect.name == "postgresql"
        columns = [a.provider, a.region, func.count(), faults, func.count(a.latency_ms)]
        if postgres:
            columns.append(func.percentile_disc(0.99).within_group(a.latency_ms))
        rows = (await self.session.execute(select(*columns).where(*window).group_by(a.provider, a.region))).all()
        observed = {}
        for provider, region, calls, failed, timed, *p99 in rows:
            if not postgres:  # SQLite has no percentile function: the one row at that rank
                p99 = [await self.session.scalar(
                    select(a.latency_ms).where(*window, a.provider == provider, a.region == region,
                                               a.latency_ms.is_not(None))
                    .order_by(a.latency_ms).offset(max(0, math.ceil(0.99 * timed) - 1)).limit(1))] if timed else [None]
            observed[(provider, region)] = (calls, failed / calls if calls else None,
                                            float(p99[0]) if p99[0] is not None else None)
        return observed

"""Every query of overrides and the audit log."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.kit.clock import utcnow
from orchestrator.overrides.models import AuditEntry, OverrideRow
from orchestrator.routing.scoring import Override, OverrideScope


def to_override(row: OverrideRow) -> Override:
    """The routing core's plain value for a stored override."""
    return Override(
        id=row.id, action=row.action, provider=row.provider,
        scope=OverrideScope(region=row.scope_region, country=row.scope_country, currency=row.scope_currency,
                            merchant_id=row.scope_merchant_id),
        weight=row.weight, fallback=row.fallback, enabled=row.enabled,
        expires_at=row.expires_at.timestamp() if row.expires_at else None, reason=row.reason,
        created_at=row.created_at.timestamp())


class OverrideRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active(self) -> list[OverrideRow]:
        """Enabled and not yet expired (expiry is checked again at routing time)."""
        rows = await self.session.scalars(
            select(OverrideRow).where(OverrideRow.enabled.is_(True),
                                      or_(OverrideRow.expires_at.is_(None), OverrideRow.expires_at > utcnow())))
        return list(rows)

    async def all(self) -> list[OverrideRow]:
        return list(await self.session.scalars(select(OverrideRow).order_by(OverrideRow.created_at.desc())))

    async def get(self, override_id: str) -> OverrideRow | None:
        return await self.session.get(OverrideRow, override_id)

    async def add(self, row: OverrideRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def delete(self, row: OverrideRow) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def audit(self, entry: AuditEntry) -> None:
        self.session.add(entry)
        await self.session.flush()

    async def audit_log(self, limit: int, before_id: str | None = None) -> tuple[list[AuditEntry], bool]:
        query = select(AuditEntry)
        if before_id is not None:
            cursor = await self.session.get(AuditEntry, before_id)
            if cursor is not None:
                query = query.where(or_(AuditEntry.at < cursor.at,
                                        (AuditEntry.at == cursor.at) & (AuditEntry.id < cursor.id)))
        rows = list(await self.session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                                               .limit(limit + 1)))
        return rows[:limit], len(rows) > limit

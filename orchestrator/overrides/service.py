"""Overrides: every change is audited and announced to every replica in the same transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.config import ProviderTable
from orchestrator.kit.clock import utcnow
from orchestrator.kit.errors import invalid, not_found
from orchestrator.kit.ids import new_id
from orchestrator.kit.money import is_iso4217
from orchestrator.observability.telemetry import override_changed
from orchestrator.overrides.models import AuditEntry, OverrideRow
from orchestrator.overrides.repository import OverrideRepository
from orchestrator.overrides.schemas import OverrideCreate, OverridePatch, Scope, override_to_dict
from orchestrator.routing.regions import region_for_country
from orchestrator.routing.repository import RoutingRepository


def check_override(providers: ProviderTable, action: str, provider: str, scope: Scope, weight: float | None) -> None:
    try:
        config = providers.get(provider)
    except KeyError:
        raise invalid("unknown_provider", f"No provider named '{provider}'.", "provider") from None
    if action == "weight" and weight is None:
        raise invalid("parameter_missing", "A weight override needs `weight`.", "weight")
    if scope.region is not None and scope.region not in config.regions:
        raise invalid("parameter_invalid", f"{provider} has no {scope.region} endpoint.", "scope.region")
    if scope.country is not None:
        region = region_for_country(scope.country)
        if region is None:
            raise invalid("unsupported_country", f"Country '{scope.country}' is not supported.", "scope.country")
        if scope.region is not None and scope.region != region:
            raise invalid("parameter_invalid", f"{scope.country} is not in {scope.region}.", "scope.country")
    if scope.currency is not None and not is_iso4217(scope.currency):
        raise invalid("invalid_currency", f"'{scope.currency}' is not an ISO 4217 currency.", "scope.currency")


class OverrideService:
    def __init__(self, providers: ProviderTable) -> None:
        self.providers = providers

    async def create(self, session: AsyncSession, actor: str, body: OverrideCreate) -> dict:
        check_override(self.providers, body.action, body.provider, body.scope, body.weight)
        now = utcnow()
        row = OverrideRow(
            id=new_id("ovr"), action=body.action, provider=body.provider, scope_region=body.scope.region,
            scope_country=body.scope.country, scope_currency=body.scope.currency,
            scope_merchant_id=body.scope.merchant_id, weight=body.weight if body.weight is not None else 1.0,
            fallback=body.fallback, enabled=body.enabled, expires_at=body.expires_at, reason=body.reason,
            created_by=actor, created_at=now, updated_at=now)
        repo = OverrideRepository(session)
        await repo.add(row)
        after = override_to_dict(row, now)
        await self._changed(session, actor, "override.create", row.id, None, after, body.reason)
        return after

    async def update(self, session: AsyncSession, actor: str, override_id: str, patch: OverridePatch) -> dict:
        repo = OverrideRepository(session)
        row = await repo.get(override_id)
        if row is None:
            raise not_found("override", override_id)
        now = utcnow()
        before = override_to_dict(row, now)
        changes = patch.model_dump(exclude_unset=True)
        scope = Scope(**{**before["scope"], **(changes.get("scope") or {})}) if "scope" in changes \
            else Scope(**before["scope"])
        action = changes.get("action", row.action)
        provider = changes.get("provider", row.provider)
        weight = changes["weight"] if "weight" in changes else row.weight
        check_override(self.providers, action, provider, scope, weight)
        row.action, row.provider, row.weight = action, provider, weight if weight is not None else 1.0
        row.scope_region, row.scope_country = scope.region, scope.country
        row.scope_currency, row.scope_merchant_id = scope.currency, scope.merchant_id
        for field in ("fallback", "enabled", "expires_at"):
            if field in changes:
                setattr(row, field, changes[field])
        if changes.get("reason"):
            row.reason = changes["reason"]
        row.updated_at = now
        await session.flush()
        after = override_to_dict(row, now)
        await self._changed(session, actor, "override.update", row.id, before, after, changes.get("reason"))
        return after

    async def delete(self, session: AsyncSession, actor: str, override_id: str, reason: str | None) -> dict:
        repo = OverrideRepository(session)
        row = await repo.get(override_id)
        if row is None:
            raise not_found("override", override_id)
        before = override_to_dict(row, utcnow())
        await repo.delete(row)
        await self._changed(session, actor, "override.delete", override_id, before, None, reason)
        return {**before, "deleted": True}

    async def _changed(self, session: AsyncSession, actor: str, action: str, target: str, before, after,
                       reason: str | None) -> None:
        await OverrideRepository(session).audit(AuditEntry(
            id=new_id("aud"), actor=actor, action=action, target_id=target, at=utcnow(), before=before,
            after=after, reason=reason))
        await RoutingRepository(session).bump_version()
        override_changed(action, target, actor, reason, before, after)

"""The admin API: routing table, overrides, routing preview, audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.admin.auth import current_admin
from orchestrator.kit.clock import isoformat_z, utcnow
from orchestrator.kit.db import session_scope
from orchestrator.kit.errors import invalid
from orchestrator.overrides.repository import OverrideRepository, to_override
from orchestrator.overrides.schemas import (
    OverrideCreate,
    OverridePatch,
    PreviewRequest,
    audit_to_dict,
    override_to_dict,
)
from orchestrator.overrides.service import check_override
from orchestrator.overrides.models import OverrideRow
from orchestrator.routing.regions import region_for_country
from orchestrator.routing.scoring import PaymentFacts
from orchestrator.routing.service import decision_to_dict

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(current_admin)])


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the endpoint returns, rolled back if it raises."""
    async for session in session_scope(request.app.state.sessionmaker):
        yield session


async def _changed(request: Request) -> None:
    # The change is already announced to every replica; this one applies it before answering.
    await request.app.state.routing_state.refresh()


@router.get("/routing-table")
async def routing_table(request: Request):
    """One row per provider and region: status page, observations, fee, compliance, this replica's
    circuit state, and the score and traffic weight a reference payment (100.00 in the region's main
    currency) would get now."""
    state = request.app.state.routing_state
    return {"object": "list", "data": request.app.state.routing.table(), "has_more": False,
            "version": state.snapshot.version,
            "poller": {"leader": request.app.state.lease.is_leader, "polls": request.app.state.poller.polls}}


@router.get("/overrides")
async def list_overrides(request: Request, session: AsyncSession = Depends(db_session)):
    """Every override, newest first, with whether it applies now (`active`)."""
    now = utcnow()
    rows = await OverrideRepository(session).all()
    return {"object": "list", "data": [override_to_dict(r, now) for r in rows], "has_more": False}


@router.post("/overrides", status_code=201)
async def create_override(body: OverrideCreate, request: Request, actor: str = Depends(current_admin),
                          session: AsyncSession = Depends(db_session)):
    """Force, disable or re-weight a provider within a scope. `reason` is required; audited."""
    created = await request.app.state.overrides.create(session, actor, body)
    await session.commit()
    await _changed(request)
    return JSONResponse(created, 201)


@router.patch("/overrides/{override_id}")
async def update_override(override_id: str, body: OverridePatch, request: Request,
                          actor: str = Depends(current_admin), session: AsyncSession = Depends(db_session)):
    """Change an override (e.g. `enabled: false`, a new `expires_at`); audited with before and after."""
    updated = await request.app.state.overrides.update(session, actor, override_id, body)
    await session.commit()
    await _changed(request)
    return updated


@router.delete("/overrides/{override_id}")
async def delete_override(override_id: str, request: Request, reason: str | None = Query(None, max_length=500),
                          actor: str = Depends(current_admin), session: AsyncSession = Depends(db_session)):
    """Remove an override; audited with what it was."""
    deleted = await request.app.state.overrides.delete(session, actor, override_id, reason)
    await session.commit()
    await _changed(request)
    return deleted


@router.post("/routing/preview")
async def routing_preview(body: PreviewRequest, request: Request):
    """What such a payment would get now, with the given overrides added as if applied. Changes nothing.

    `candidates` is the order the attempt loop would try them in for the most likely draw: by `share`
    (the chance of being the primary), then by score."""
    facts = body.payment
    region = region_for_country(facts.country)
    if region is None:
        raise invalid("unsupported_country", f"Country '{facts.country}' is not supported.", "payment.country")
    providers = request.app.state.settings.providers
    now = utcnow()
    hypothetical = []
    for index, item in enumerate(body.overrides):
        check_override(providers, item.action, item.provider, item.scope, item.weight)
        row = OverrideRow(id=f"preview_{index}", action=item.action, provider=item.provider,
                          scope_region=item.scope.region, scope_country=item.scope.country,
                          scope_currency=item.scope.currency, scope_merchant_id=item.scope.merchant_id,
                          weight=item.weight if item.weight is not None else 1.0, fallback=item.fallback,
                          enabled=item.enabled, expires_at=item.expires_at, reason=item.reason,
                          created_by="preview", created_at=now, updated_at=now)
        hypothetical.append(to_override(row))
    payment = PaymentFacts(amount=facts.amount, currency=facts.currency, country=facts.country, region=region,
                           merchant_id=facts.merchant_id)
    decision = request.app.state.routing.preview(payment, hypothetical)
    return {"object": "routing_preview", "payment": {**facts.model_dump(), "region": region},
            **decision_to_dict(decision), "generated_at": isoformat_z(now)}


@router.get("/audit")
async def audit(request: Request, limit: int = Query(50, ge=1, le=500), starting_after: str | None = None,
                session: AsyncSession = Depends(db_session)):
    """Every admin change, newest first: actor, action, time, before, after, reason."""
    entries, has_more = await OverrideRepository(session).audit_log(limit, starting_after)
    return {"object": "list", "data": [audit_to_dict(e) for e in entries], "has_more": has_more}

"""Admin authentication: `Authorization: Bearer <admin token>`; the actor is the token's name."""

from __future__ import annotations

from fastapi import Request

from orchestrator.admin.service import actor_for_token
from orchestrator.kit.errors import unauthorized
from orchestrator.kit.secrets_hash import secrets_equal
from orchestrator.merchants.auth import bearer_token

BOOTSTRAP_ACTOR = "bootstrap"


async def current_admin(request: Request) -> str:
    """FastAPI dependency: the acting operator's name, or 401 (a merchant key is not an admin token)."""
    token = bearer_token(request)
    if token is None:
        raise unauthorized("Invalid or missing admin token.")
    bootstrap = request.app.state.settings.admin_token
    if bootstrap is not None and secrets_equal(token, bootstrap.get_secret_value()):
        return BOOTSTRAP_ACTOR
    async with request.app.state.sessionmaker() as session:
        actor = await actor_for_token(session, token)
    if actor is None:
        raise unauthorized("Invalid or missing admin token.")
    return actor

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.admin.models import AdminToken
from orchestrator.kit.ids import new_id
from orchestrator.kit.secrets_hash import hash_secret, new_secret


async def create_admin_token(session: AsyncSession, name: str) -> tuple[AdminToken, str]:
    token = new_secret("adm")
    row = AdminToken(id=new_id("adt", 16), name=name, token_hash=hash_secret(token))
    session.add(row)
    await session.flush()
    return row, token


async def actor_for_token(session: AsyncSession, token: str) -> str | None:
    return await session.scalar(select(AdminToken.name).where(AdminToken.token_hash == hash_secret(token)))

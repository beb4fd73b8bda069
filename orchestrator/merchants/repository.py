from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.merchants.models import Merchant


class MerchantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, merchant: Merchant) -> Merchant:
        self.session.add(merchant)
        await self.session.flush()
        return merchant

    async def id_by_key_hash(self, key_hash: str) -> str | None:
        return await self.session.scalar(select(Merchant.id).where(Merchant.api_key_hash == key_hash))

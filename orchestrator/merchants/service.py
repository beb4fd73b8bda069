from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.kit.ids import new_id
from orchestrator.kit.secrets_hash import hash_secret, new_secret
from orchestrator.merchants.models import Merchant
from orchestrator.merchants.repository import MerchantRepository


async def create_merchant(session: AsyncSession, name: str) -> tuple[Merchant, str]:
    """Returns the merchant and its API key; only the key's hash is stored."""
    api_key = new_secret("sk_orch")
    merchant = Merchant(id=new_id("mer", 16), name=name, api_key_hash=hash_secret(api_key))
    await MerchantRepository(session).add(merchant)
    return merchant, api_key

"""Every query of the payments feature."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.payments.models import IdempotencyRecord, Payment, PaymentAttempt, Refund


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_for_merchant(self, merchant_id: str, payment_id: str) -> Payment | None:
        return await self.session.scalar(
            select(Payment).where(Payment.id == payment_id, Payment.merchant_id == merchant_id))

    async def get(self, payment_id: str) -> Payment | None:
        return await self.session.get(Payment, payment_id)

    async def attempts(self, payment_id: str) -> list[PaymentAttempt]:
        rows = await self.session.scalars(
            select(PaymentAttempt).where(PaymentAttempt.payment_id == payment_id).order_by(PaymentAttempt.number))
        return list(rows)

    async def attempts_for(self, payment_ids: list[str]) -> dict[str, list[PaymentAttempt]]:
        grouped: dict[str, list[PaymentAttempt]] = defaultdict(list)
        if payment_ids:
            rows = await self.session.scalars(
                select(PaymentAttempt).where(PaymentAttempt.payment_id.in_(payment_ids)))
            for row in rows:
                grouped[row.payment_id].append(row)
        return grouped

    async def list_for_merchant(
        self, merchant_id: str, limit: int, starting_after: Payment | None
    ) -> tuple[list[Payment], bool]:
        """Newest first; the cursor is the last payment of the previous page."""
        query = select(Payment).where(Payment.merchant_id == merchant_id)
        if starting_after is not None:
            query = query.where(or_(
                Payment.created_at < starting_after.created_at,
                and_(Payment.created_at == starting_after.created_at, Payment.id < starting_after.id),
            ))
        rows = list(await self.session.scalars(
            query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit + 1)))
        return rows[:limit], len(rows) > limit

    async def processing_older_than(self, cutoff: datetime, limit: int = 100) -> list[Payment]:
        rows = await self.session.scalars(
            select(Payment).where(Payment.status == "processing", Payment.deadline_at < cutoff)
            .order_by(Payment.created_at).limit(limit))
        return list(rows)

    async def pending_refunds_older_than(self, cutoff: datetime, limit: int = 100) -> list[Refund]:
        rows = await self.session.scalars(
            select(Refund).where(Refund.status == "pending", Refund.created_at < cutoff)
            .order_by(Refund.created_at).limit(limit))
        return list(rows)

    async def reserve_refund(self, payment_id: str, amount: int) -> bool:
        """Atomically add `amount` to what is refunded, only if it stays within the charge."""
        result = await self.session.execute(
            update(Payment)
            .where(Payment.id == payment_id, Payment.status == "succeeded",
                   Payment.amount_refunded + amount <= Payment.amount)
            .values(amount_refunded=Payment.amount_refunded + amount)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def release_refund(self, payment_id: str, amount: int) -> None:
        await self.session.execute(
            update(Payment).where(Payment.id == payment_id)
            .values(amount_refunded=Payment.amount_refunded - amount)
            .execution_options(synchronize_session=False))

    async def get_refund(self, refund_id: str) -> Refund | None:
        return await self.session.get(Refund, refund_id)


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, merchant_id: str, key: str) -> IdempotencyRecord | None:
        return await self.session.scalar(
            select(IdempotencyRecord).where(IdempotencyRecord.merchant_id == merchant_id,
                                            IdempotencyRecord.key == key))

    async def mark_completed(self, merchant_id: str, key: str) -> None:
        await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.merchant_id == merchant_id, IdempotencyRecord.key == key)
            .values(completed=True).execution_options(synchronize_session=False))

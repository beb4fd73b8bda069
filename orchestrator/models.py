"""Every table, imported in one place for Alembic's autogenerate and the drift test."""

from orchestrator.admin.models import AdminToken
from orchestrator.kit.db import Base
from orchestrator.merchants.models import Merchant
from orchestrator.payments.models import IdempotencyRecord, Payment, PaymentAttempt, Refund

__all__ = ["Base", "AdminToken", "Merchant", "Payment", "PaymentAttempt", "Refund", "IdempotencyRecord"]

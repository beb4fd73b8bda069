"""Every table, imported in one place for Alembic's autogenerate and the drift test."""

from orchestrator.admin.models import AdminToken
from orchestrator.kit.db import Base
from orchestrator.merchants.models import Merchant
from orchestrator.overrides.models import AuditEntry, OverrideRow
from orchestrator.payments.models import IdempotencyRecord, Payment, PaymentAttempt, Refund
from orchestrator.routing.models import RoutingTableRow, RoutingVersion

__all__ = ["Base", "AdminToken", "Merchant", "Payment", "PaymentAttempt", "Refund", "IdempotencyRecord",
           "OverrideRow", "AuditEntry", "RoutingTableRow", "RoutingVersion"]

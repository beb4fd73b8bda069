"""The ledger: charges that moved money, and the refunds against them.

Declines and errors are not charges and are never recorded here. Amounts are integer minor units
and currencies upper case, whatever the provider's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox_gateways.common.clock import utc_now_iso


class RefundExceedsCharge(Exception):
    """A refund larger than what is left of the charge."""

    def __init__(self, requested: int, remaining: int):
        super().__init__(f"refund of {requested} exceeds the remaining {remaining}")
        self.requested = requested
        self.remaining = remaining


@dataclass(slots=True)
class Refund:
    id: str
    charge_id: str
    amount: int
    reference: str | None
    idempotency_key: str | None
    created_at: str = field(default_factory=utc_now_iso)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Charge:
    id: str
    region: str
    amount: int
    currency: str
    reference: str | None
    idempotency_key: str | None
    refunded_amount: int = 0
    created_at: str = field(default_factory=utc_now_iso)
    refunds: list[Refund] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific fields

    @property
    def remaining(self) -> int:
        return self.amount - self.refunded_amount

    @property
    def status(self) -> str:
        if self.refunded_amount == 0:
            return "succeeded"
        if self.refunded_amount >= self.amount:
            return "refunded"
        return "partially_refunded"

    def to_ledger_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "region": self.region,
            "amount": self.amount,
            "currency": self.currency,
            "reference": self.reference,
            "idempotency_key": self.idempotency_key,
            "status": self.status,
            "refunded_amount": self.refunded_amount,
            "created_at": self.created_at,
        }


class Ledger:
    def __init__(self) -> None:
        self._charges: dict[str, Charge] = {}
        self._by_reference: dict[tuple[str, str], list[Charge]] = {}

    def clear(self) -> None:
        self._charges.clear()
        self._by_reference.clear()

    def record(self, charge: Charge) -> Charge:
        self._charges[charge.id] = charge
        if charge.reference is not None:
            self._by_reference.setdefault((charge.region, charge.reference), []).append(charge)
        return charge

    def get(self, charge_id: str, region: str | None = None) -> Charge | None:
        charge = self._charges.get(charge_id)
        if charge is None or (region is not None and charge.region != region):
            return None
        return charge

    def find_by_reference(self, region: str, reference: str) -> list[Charge]:
        return list(self._by_reference.get((region, reference), ()))

    def find_by_metadata(self, region: str, key: str, value: str) -> list[Charge]:
        return [
            c
            for c in self._charges.values()
            if c.region == region and c.extra.get("metadata", {}).get(key) == value
        ]

    def refund(
        self,
        charge: Charge,
        amount: int | None,
        refund_id: str,
        reference: str | None,
        idempotency_key: str | None,
        extra: dict[str, Any] | None = None,
    ) -> Refund:
        """Refund `amount` (None: all that is left); never more than what is left."""
        remaining = charge.remaining
        requested = remaining if amount is None else amount
        if requested <= 0 or requested > remaining:
            raise RefundExceedsCharge(requested, remaining)
        refund = Refund(
            id=refund_id,
            charge_id=charge.id,
            amount=requested,
            reference=reference,
            idempotency_key=idempotency_key,
            extra=extra or {},
        )
        charge.refunded_amount += requested
        charge.refunds.append(refund)
        return refund

    def charges(self) -> list[Charge]:
        return list(self._charges.values())

    def to_dict(self) -> dict[str, Any]:
        return {"charges": [c.to_ledger_dict() for c in self._charges.values()]}

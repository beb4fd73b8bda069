"""What every provider adapter offers, and the plain values that cross the adapter boundary.

Adapters know their provider's wire format and nothing of payments, routing or the database.
Each adapter module is split into pure mapping functions (request building, response parsing,
unit-tested on recorded payloads) and one send step (`transport.send`), the only place that
does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, Protocol, runtime_checkable


class Outcome(str, enum.Enum):
    """How one provider call ended, from the point of view of money movement."""

    SUCCEEDED = "succeeded"
    HARD_DECLINE = "hard_decline"  # the card was refused; trying elsewhere is pointless
    SOFT_DECLINE = "soft_decline"  # refused for a reason another provider may not share
    TRANSIENT = "transient"  # provider fault, and certainly nothing was charged
    AMBIGUOUS = "ambiguous"  # provider fault after the request may have been processed
    CONFIG_ERROR = "config_error"  # our credentials or request are wrong; a human must act


@dataclass(frozen=True, slots=True)
class Credentials:
    """Secrets resolved from the environment; never logged or put on a span."""

    values: Mapping[str, str]

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def __repr__(self) -> str:  # keep secrets out of reprs and tracebacks
        return f"Credentials({sorted(self.values)!r})"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One provider region: where to send and with which credentials."""

    provider: str
    region: str  # "EU", "US" or "APAC"
    base_url: str  # e.g. "http://127.0.0.1:8101/eu"; the adapter appends its paths
    credentials: Credentials
    merchant_account: str = ""  # Adyen merchantAccount / Braintree merchantAccountId, if any


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    payment_id: str  # our id; sent as the provider-side reference so a charge can be found
    idempotency_key: str  # unique per attempt; replaying it must never charge twice
    amount: int  # minor units
    currency: str  # ISO 4217, upper case
    country: str  # ISO 3166-1 alpha-2
    payment_method: str  # a token, never a card number
    description: str | None = None
    merchant_id: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChargeResult:
    outcome: Outcome
    http_status: int | None = None  # None when no HTTP response arrived
    provider_reference: str | None = None  # the provider's id for the charge, when known
    code: str | None = None  # provider's error/decline code, as the provider spells it
    message: str | None = None
    retry_after_s: float | None = None  # from a Retry-After header on 429/503
    raw_status: str | None = None  # provider's own status word (e.g. resultCode)


@dataclass(frozen=True, slots=True)
class RefundRequest:
    refund_id: str  # our id, sent as the provider-side reference
    payment_id: str
    provider_reference: str  # the provider's charge id from the payment
    idempotency_key: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class RefundResult:
    outcome: Outcome  # SUCCEEDED, TRANSIENT, AMBIGUOUS, CONFIG_ERROR, or HARD_DECLINE when refused
    http_status: int | None = None
    provider_reference: str | None = None
    code: str | None = None
    message: str | None = None


class LookupState(str, enum.Enum):
    CHARGED = "charged"  # the provider holds a charge that moved money
    NOT_CHARGED = "not_charged"  # the provider confirms no charge exists (or it was declined)
    UNKNOWN = "unknown"  # could not tell (provider unreachable, or no search API)


@dataclass(frozen=True, slots=True)
class LookupResult:
    state: LookupState
    provider_reference: str | None = None
    amount: int | None = None
    currency: str | None = None


class ComponentStatus(str, enum.Enum):
    """Atlassian Statuspage component states, best first."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    UNKNOWN = "unknown"


@runtime_checkable
class ProviderAdapter(Protocol):
    """One payment provider. Implementations keep wire formats to themselves.

    Every method returns a classified value and never raises for a provider or network fault:
    the caller decides what to do next from the `Outcome`, not from exception types.
    """

    name: str

    async def charge(self, endpoint: Endpoint, request: ChargeRequest, *, timeout: "Timeouts") -> ChargeResult:
        """Authorise and capture `request.amount` once, idempotently under `request.idempotency_key`."""
        ...

    async def replay_charge(
        self, endpoint: Endpoint, request: ChargeRequest, *, timeout: "Timeouts"
    ) -> ChargeResult:
        """Send the same charge again with the same idempotency key, to learn the first one's fate."""
        ...

    async def refund(self, endpoint: Endpoint, request: RefundRequest, *, timeout: "Timeouts") -> RefundResult:
        """Refund part or all of a charge made by this provider."""
        ...

    async def find_charge(self, endpoint: Endpoint, payment_id: str, *, timeout: "Timeouts") -> LookupResult:
        """Look up the charge made for our payment id, if the provider can search by reference."""
        ...

    async def fetch_status(self, status_url: str, *, timeout: "Timeouts") -> dict[str, ComponentStatus]:
        """Read the provider's status page: component state per region ("EU", "US", "APAC")."""
        ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-call limits, kept below the payment's overall deadline by the caller."""

    connect_s: float = 1.0
    read_s: float = 5.0

"""The routers the gauntlet compares. Each takes one planned payment and returns what happened.

- `static`: one fixed provider per region (the cheapest in the provider table), one call, no retry.
- `naive`: what a careful team writes by hand: tenacity retries (3 tries, exponential backoff with
  jitter) and a pybreaker circuit breaker per provider and region, failing over to a fixed second
  provider. Like most hand-written integrations it sends each try under a new idempotency key, so a
  timeout followed by a retry may charge twice; the ledgers show whether it did.
- `orchestrator`: this project, through its REST API (`POST /v1/payments`).
- `oracle`: knows the fault timeline and sends each payment to the cheapest compliant provider that is
  healthy at that instant; an ambiguous answer is resolved by replaying the same key there.

The direct routers (all but `orchestrator`) call the sandboxes with this project's provider adapters,
so every router speaks the same wire formats. The payment id `pay_<router>_<n>` is sent as the
provider reference, so the ledgers attribute every charge.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pybreaker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from orchestrator.config import ProviderTable
from orchestrator.gauntlet.ledger import fee_minor
from orchestrator.gauntlet.scenario import PROVIDERS, FaultTimeline, Scenario, badness
from orchestrator.gauntlet.traffic import PlannedPayment
from orchestrator.providers.base import ChargeRequest, ChargeResult, Endpoint, Outcome, Timeouts
from orchestrator.providers.registry import build_adapters

ROUTERS: tuple[str, ...] = ("static", "naive", "orchestrator", "oracle")
DIRECT_TIMEOUTS = Timeouts(connect_s=1.0, read_s=5.0)
NAIVE_TRIES = 3
NAIVE_FAIL_MAX = 5  # consecutive failures that open a pybreaker breaker
NAIVE_RESET_TIMEOUT_S = 5.0  # pybreaker's wait before a trial call; the orchestrator breaker's first wait
ORACLE_REPLAYS = 3
ORACLE_MARGIN_S = 0.2
MERCHANT_ID = "mer_gauntlet"  # Adyen needs a shopper reference with a stored payment method

_FAILURE_CODE = {Outcome.HARD_DECLINE: "card_declined", Outcome.SOFT_DECLINE: "processing_error",
                 Outcome.TRANSIENT: "provider_unavailable", Outcome.AMBIGUOUS: "timeout_unknown",
                 Outcome.CONFIG_ERROR: "config_error"}


@dataclass
class PaymentRecord:
    """One payment as a router's caller saw it."""

    n: int
    region: str
    currency: str
    amount: int
    sent: float  # seconds after the start of the traffic
    latency_s: float = 0.0
    payment_id: str | None = None
    status: str = "error"  # succeeded, failed, processing (orchestrator only), error (no answer)
    code: str | None = None  # failure code when not succeeded
    provider: str | None = None  # the provider reported as having charged
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (provider, outcome) per call
    final_status: str | None = None  # after reconciliation settled a `processing` payment

    @property
    def first(self) -> str | None:
        return self.attempts[0][0] if self.attempts else None

    @property
    def settled_status(self) -> str:
        return self.final_status or self.status

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "attempts": [list(a) for a in self.attempts]}


def _decline_code(result: ChargeResult) -> str:
    text = " ".join(filter(None, (result.code, result.message, result.raw_status))).lower()
    if result.outcome is Outcome.HARD_DECLINE and any(m in text for m in ("insufficient", "not enough balance")):
        return "insufficient_funds"
    return _FAILURE_CODE[result.outcome]


class DirectProviders:
    """The provider adapters pointed at one set of sandboxes, with the provider table's fees."""

    def __init__(self, table: ProviderTable, sandbox_urls: dict[str, str], client: httpx.AsyncClient):
        self.table = table
        self.adapters = build_adapters(client)
        self.endpoints: dict[tuple[str, str], Endpoint] = {}
        for config in table.providers:
            target = urlsplit(sandbox_urls[config.adapter])
            for region in config.regions:
                endpoint = config.endpoint(region)
                path = urlsplit(endpoint.base_url).path
                url = urlunsplit((target.scheme, target.netloc, path, "", ""))
                self.endpoints[(config.name, region)] = dataclasses.replace(endpoint, base_url=url)

    def fee(self, provider: str, region: str, amount: int) -> float:
        return fee_minor(self.table, provider, region, amount)

    def by_fee(self, region: str, currency: str, amount: int) -> list[str]:
        """Compliant providers for the payment, cheapest first (ties: table order)."""
        compliant = self.table.compliant(region, currency)
        return [p.name for p in sorted(compliant, key=lambda p: self.fee(p.name, region, amount))]

    async def charge(self, provider: str, payment: PlannedPayment, payment_id: str, key: str, *,
                     replay: bool = False) -> ChargeResult:
        adapter = self.adapters[self.table.get(provider).adapter]
        request = ChargeRequest(payment_id=payment_id, idempotency_key=key, amount=payment.amount,
                                currency=payment.currency, country=payment.country, payment_method=payment.token,
                                merchant_id=MERCHANT_ID)
        endpoint = self.endpoints[(provider, payment.region)]
        if replay:
            return await adapter.replay_charge(endpoint, request, timeout=DIRECT_TIMEOUTS)
        return await adapter.charge(endpoint, request, timeout=DIRECT_TIMEOUTS)


def fixed_ranking(providers: DirectProviders, scenario: Scenario) -> dict[str, list[str]]:
    """Per region, the providers that take every currency the scenario sends there, cheapest first at
    the scenario's typical amount: `static` uses the first, `naive` the first two."""
    amounts = scenario.traffic.amounts
    typical = int(math.sqrt(amounts.min * amounts.max))
    ranking: dict[str, list[str]] = {}
    for region in scenario.regions:
        currencies = {m.currency for m in scenario.traffic.markets if m.region == region}
        names = [p.name for p in providers.table.providers
                 if region in p.regions and currencies <= p.currencies]
        ranking[region] = sorted(names, key=lambda name: providers.fee(name, region, typical))
    return ranking


class Router:
    name = "router"

    async def pay(self, payment: PlannedPayment, record: PaymentRecord) -> None:  # pragma: no cover
        raise NotImplementedError


def _finish(record: PaymentRecord, provider: str, result: ChargeResult) -> None:
    if result.outcome is Outcome.SUCCEEDED:
        record.status, record.provider, record.code = "succeeded", provider, None
    else:
        record.status, record.code = "failed", _decline_code(result)


class StaticRouter(Router):
    name = "static"

    def __init__(self, providers: DirectProviders, scenario: Scenario):
        self.providers = providers
        self.fixed = {region: names[0] for region, names in fixed_ranking(providers, scenario).items() if names}

    async def pay(self, payment: PlannedPayment, record: PaymentRecord) -> None:
        provider = self.fixed.get(payment.region)
        record.payment_id = f"pay_static_{payment.n}"
        if provider is None or payment.currency not in self.providers.table.get(provider).currencies:
            record.status, record.code = "failed", "no_route"
            return
        result = await self.providers.charge(provider, payment, record.payment_id, record.payment_id)
        record.attempts.append((provider, result.outcome.value))
        _finish(record, provider, result)


class _ProviderFault(Exception):
    def __init__(self, result: ChargeResult):
        super().__init__(result.outcome.value)
        self.result = result


class NaiveRouter(Router):
    name = "naive"

    def __init__(self, providers: DirectProviders, scenario: Scenario):
        self.providers = providers
        self.order = {region: names[:2] for region, names in fixed_ranking(providers, scenario).items()}
        self.breakers = {(p, r): pybreaker.CircuitBreaker(fail_max=NAIVE_FAIL_MAX, reset_timeout=NAIVE_RESET_TIMEOUT_S,
                                                          name=f"{p}-{r}")
                         for r in scenario.regions for p in PROVIDERS}

    async def _tries(self, provider: str, payment: PlannedPayment, record: PaymentRecord) -> ChargeResult:
        breaker = self.breakers[(provider, payment.region)]
        retrying = AsyncRetrying(stop=stop_after_attempt(NAIVE_TRIES),
                                 wait=wait_exponential_jitter(initial=0.1, max=2.0, jitter=0.1),
                                 retry=retry_if_exception_type(_ProviderFault), reraise=True)
        async for attempt in retrying:
            with attempt:
                key = f"{record.payment_id}-{uuid.uuid4().hex[:12]}"  # a fresh key per try
                with breaker.calling():
                    result = await self.providers.charge(provider, payment, record.payment_id, key)
                    record.attempts.append((provider, result.outcome.value))
                    if result.outcome in (Outcome.TRANSIENT, Outcome.AMBIGUOUS, Outcome.CONFIG_ERROR):
                        raise _ProviderFault(result)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def pay(self, payment: PlannedPayment, record: PaymentRecord) -> None:
        record.payment_id = f"pay_naive_{payment.n}"
        candidates = [p for p in self.order.get(payment.region, [])
                      if payment.currency in self.providers.table.get(p).currencies]
        record.status, record.code = "failed", "no_route" if not candidates else "provider_unavailable"
        for provider in candidates:
            try:
                result = await self._tries(provider, payment, record)
            except pybreaker.CircuitBreakerError:
                continue
            except _ProviderFault as fault:
                record.code = _decline_code(fault.result)
                continue
            _finish(record, provider, result)
            return


class OracleRouter(Router):
    name = "oracle"

    def __init__(self, providers: DirectProviders, scenario: Scenario, faults: FaultTimeline, clock):
        self.providers = providers
        self.faults = faults
        self.clock = clock  # seconds since the start of the traffic

    def choose(self, payment: PlannedPayment, t: float) -> str | None:
        ranked = self.providers.by_fee(payment.region, payment.currency, payment.amount)
        if not ranked:
            return None
        for provider in ranked:
            # A margin around each change of the timeline: a fault applied at t must not catch a payment
            # sent a moment before it, nor a payment sent just after a clear find the fault still there.
            if all(self.faults.healthy_at(provider, payment.region, when)
                   for when in (t - ORACLE_MARGIN_S, t, t + ORACLE_MARGIN_S)):
                return provider
        return min(ranked, key=lambda p: badness(self.faults.state_at(p, payment.region, t)))

    async def pay(self, payment: PlannedPayment, record: PaymentRecord) -> None:
        record.payment_id = f"pay_oracle_{payment.n}"
        provider = self.choose(payment, self.clock())
        if provider is None:
            record.status, record.code = "failed", "no_route"
            return
        result = await self.providers.charge(provider, payment, record.payment_id, record.payment_id)
        record.attempts.append((provider, result.outcome.value))
        replays = 0
        while result.outcome is Outcome.AMBIGUOUS and replays < ORACLE_REPLAYS:
            replays += 1
            result = await self.providers.charge(provider, payment, record.payment_id, record.payment_id,
                                                 replay=True)
            record.attempts.append((provider, f"replay:{result.outcome.value}"))
        _finish(record, provider, result)


class OrchestratorRouter(Router):
    """This project over its REST API; the payment id is the one it assigns."""

    name = "orchestrator"

    def __init__(self, client: httpx.AsyncClient, run_tag: str):
        self.client = client  # base_url and merchant key set
        self.run_tag = run_tag

    async def pay(self, payment: PlannedPayment, record: PaymentRecord) -> None:
        body = {"amount": payment.amount, "currency": payment.currency, "country": payment.country,
                "payment_method": payment.token, "metadata": {"gauntlet_n": str(payment.n)}}
        try:
            response = await self.client.post("/v1/payments", json=body,
                                              headers={"Idempotency-Key": f"{self.run_tag}-{payment.n}"})
        except httpx.HTTPError as exc:
            record.status, record.code = "error", f"client:{type(exc).__name__}"
            return
        if response.status_code == 503:
            record.status, record.code = "failed", "shed"
            return
        if response.status_code not in (200, 201):
            record.status, record.code = "error", f"http_{response.status_code}"
            return
        apply_payment_object(record, response.json())


def apply_payment_object(record: PaymentRecord, data: dict) -> None:
    record.payment_id = data["id"]
    record.status = data["status"]
    record.provider = data.get("provider") if data["status"] == "succeeded" else None
    record.code = (data.get("failure") or {}).get("code") if data["status"] == "failed" else None
    record.attempts = [(a["provider"], a["outcome"] or "pending") for a in data.get("attempts", [])]


async def timed(router: Router, payment: PlannedPayment, record: PaymentRecord) -> PaymentRecord:
    started = time.perf_counter()
    try:
        await router.pay(payment, record)
    except Exception as exc:  # noqa: BLE001 - a router bug must not stop the run; it shows as an error
        record.status, record.code = "error", f"exception:{type(exc).__name__}"
    record.latency_s = time.perf_counter() - started
    return record

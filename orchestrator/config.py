"""Settings from the environment (ORCH_ prefix) and the provider table file."""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.providers.base import Credentials, Endpoint, Timeouts
from orchestrator.resilience.backoff import BackoffConfig
from orchestrator.resilience.breaker import BreakerConfig
from orchestrator.resilience.budget import RetryBudgetConfig
from orchestrator.resilience.concurrency import AIMDConfig
from orchestrator.resilience.guards import ResiliencePolicy
from orchestrator.routing.scoring import RoutingWeights

Region = Literal["EU", "US", "APAC"]
REGIONS: tuple[Region, ...] = ("EU", "US", "APAC")
DEFAULT_PROVIDERS_FILE = Path(__file__).with_name("providers.default.yaml")


class Settings(BaseSettings):
    """Every setting, from ORCH_ variables; nested ones by `__`, e.g. ORCH_BREAKER__WINDOW_SIZE=50."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", env_nested_delimiter="__", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./orchestrator.db"
    providers_file: Path = DEFAULT_PROVIDERS_FILE
    admin_token: SecretStr | None = None

    # A payment request is answered within this; provider calls are bounded below it.
    payment_deadline_s: float = Field(10.0, gt=0, le=120)
    provider_connect_timeout_s: float = Field(1.0, gt=0)
    provider_read_timeout_s: float = Field(4.0, gt=0)
    # How long a duplicate request waits for the first one holding its Idempotency-Key.
    idempotency_wait_s: float = Field(11.0, ge=0)
    # Authenticated API keys are cached this long; a revoked key stops working within it.
    auth_cache_ttl_s: float = Field(30.0, ge=0)
    http_max_connections: int = Field(256, ge=1)
    # Payments in flight in this process above which new ones are refused at once with 503.
    max_inflight_payments: int = Field(256, ge=1)
    # Payments left `processing` are settled from the providers' records this often.
    reconcile_interval_s: float = Field(5.0, gt=0)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    retry_budget: RetryBudgetConfig = Field(default_factory=RetryBudgetConfig)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    concurrency: AIMDConfig = Field(default_factory=AIMDConfig)
    error_map_file: Path | None = None  # provider codes -> outcome; the packaged map when unset
    # Health: the leader folds our own traffic into the routing table every `observation_interval_s`
    # (one aggregate query) and polls the providers' status pages every `status_poll_interval_s`.
    observation_interval_s: float = Field(1.0, gt=0)
    status_poll_interval_s: float = Field(5.0, gt=0)
    status_timeout_s: float = Field(2.0, gt=0)
    observation_window_s: float = Field(60.0, gt=0)
    # Every replica re-reads the routing version at least this often (Postgres also pushes changes).
    routing_refresh_interval_s: float = Field(0.5, gt=0)
    routing: RoutingWeights = Field(default_factory=RoutingWeights)
    log_level: str = "INFO"

    def provider_timeouts(self, remaining_s: float = float("inf")) -> Timeouts:
        """Per-call limits to a provider, never beyond what is left of the caller's deadline."""
        return Timeouts(connect_s=min(self.provider_connect_timeout_s, remaining_s),
                        read_s=min(self.provider_read_timeout_s, remaining_s))

    def resilience_policy(self) -> ResiliencePolicy:
        return ResiliencePolicy(breaker=self.breaker, budget=self.retry_budget, backoff=self.backoff,
                                concurrency=self.concurrency)

    @cached_property
    def providers(self) -> "ProviderTable":
        return load_provider_table(self.providers_file)


class Fee(BaseModel):
    percent: float = Field(ge=0, le=100)  # 2.9 means 2.9 %
    fixed: int = Field(ge=0)  # minor units of the payment's currency

    def for_amount(self, amount: int) -> float:
        return amount * self.percent / 100.0 + self.fixed


class RegionEndpoint(BaseModel):
    base_url: str
    merchant_account: str = ""
    fee: Fee | None = None  # overrides the provider's fee in this region


class CredentialRef(BaseModel):
    """A secret named by the environment variable that holds it; `default` serves the sandbox only."""

    env: str
    default: str | None = None

    def resolve(self) -> str | None:
        return os.environ.get(self.env, self.default)


class ProviderConfig(BaseModel):
    name: str
    adapter: Literal["stripe", "adyen", "braintree"]
    status_url: str
    credentials: dict[str, CredentialRef]
    fee: Fee
    regions: dict[Region, RegionEndpoint]
    currencies: frozenset[str]

    @field_validator("currencies", mode="before")
    @classmethod
    def _upper(cls, value: list[str]) -> frozenset[str]:
        return frozenset(str(c).upper() for c in value)

    def fee_in(self, region: str) -> Fee:
        endpoint = self.regions.get(region)  # type: ignore[call-overload]
        return endpoint.fee if endpoint and endpoint.fee else self.fee

    def endpoint(self, region: str) -> Endpoint:
        where = self.regions[region]  # type: ignore[index]
        values = {}
        for key, ref in self.credentials.items():
            secret = ref.resolve()
            if secret is not None:
                values[key] = secret
        return Endpoint(
            provider=self.name,
            region=region,
            base_url=where.base_url.rstrip("/"),
            credentials=Credentials(values),
            merchant_account=where.merchant_account,
        )


class ProviderTable(BaseModel):
    """The providers in priority order, as the file lists them."""

    providers: list[ProviderConfig]

    @model_validator(mode="after")
    def _unique(self) -> "ProviderTable":
        names = [p.name for p in self.providers]
        if len(names) != len(set(names)):
            raise ValueError("provider names must be unique")
        return self

    def get(self, name: str) -> ProviderConfig:
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)

    def compliant(self, region: str, currency: str) -> list[ProviderConfig]:
        return [p for p in self.providers if region in p.regions and currency in p.currencies]


_ENV_PATTERN = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def _expand_env(text: str) -> str:
    """Expand ${NAME} and ${NAME:-default}, so one file serves the sandbox on any port."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is None:
                raise ValueError(f"environment variable {name} is not set and has no default")
            return default
        return value

    return _ENV_PATTERN.sub(substitute, text)


class ProviderFileError(ValueError):
    pass


def load_provider_table(path: Path | str) -> ProviderTable:
    path = Path(path)
    try:
        raw = yaml.safe_load(_expand_env(path.read_text()))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ProviderFileError(f"cannot read provider file {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("providers"), dict):
        raise ProviderFileError(f"{path}: expected a mapping with a 'providers' mapping")
    items = [{"name": name, **(body or {})} for name, body in raw["providers"].items()]
    try:
        return ProviderTable(providers=items)
    except ValidationError as exc:
        raise ProviderFileError(f"{path}: {exc}") from exc


def get_settings() -> Settings:
    return Settings()

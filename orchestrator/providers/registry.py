"""The adapters by provider name, all sharing one HTTP client and one error map."""

from __future__ import annotations

import httpx

from orchestrator.providers.adyen import AdyenAdapter
from orchestrator.providers.base import ProviderAdapter
from orchestrator.providers.braintree import BraintreeAdapter
from orchestrator.providers.stripe import StripeAdapter
from orchestrator.resilience.classification import ErrorMap, default_error_map

ADAPTER_TYPES: dict[str, type] = {
    StripeAdapter.name: StripeAdapter,
    AdyenAdapter.name: AdyenAdapter,
    BraintreeAdapter.name: BraintreeAdapter,
}


def build_adapters(client: httpx.AsyncClient, error_map: ErrorMap | None = None) -> dict[str, ProviderAdapter]:
    """{"stripe": ..., "adyen": ..., "braintree": ...}; the packaged error map unless one is given."""
    error_map = error_map or default_error_map()
    return {name: kind(client, error_map) for name, kind in ADAPTER_TYPES.items()}

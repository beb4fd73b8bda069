"""The one shape every adapter class has: pure build -> `transport.send` -> pure parse.

A provider module subclasses `ComposedAdapter` and names its pure mapping functions; the I/O, the
handling of transport failures and of requests that cannot be built live here, once.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import httpx

from orchestrator.providers import common
from orchestrator.providers.base import (
    ChargeRequest,
    ChargeResult,
    ComponentStatus,
    Endpoint,
    LookupResult,
    LookupState,
    RefundRequest,
    RefundResult,
    Timeouts,
)
from orchestrator.providers.common import RequestBuildError
from orchestrator.providers.transport import TransportFailure, send
from orchestrator.resilience.classification import ErrorMap, default_error_map

Parse = Callable[..., Any]


class ComposedAdapter:
    """`ProviderAdapter` made of a provider module's pure functions."""

    name: ClassVar[str]
    build_charge: ClassVar[Callable[[Endpoint, ChargeRequest], Any]]
    parse_charge: ClassVar[Parse]
    build_refund: ClassVar[Callable[[Endpoint, RefundRequest], Any]]
    parse_refund: ClassVar[Parse]
    # None where the provider cannot search by our payment id: ambiguity is then settled by replay.
    build_search: ClassVar[Callable[[Endpoint, str], Any] | None] = None
    parse_search: ClassVar[Parse | None] = None

    def __init__(self, client: httpx.AsyncClient, error_map: ErrorMap | None = None) -> None:
        self._client = client
        self._error_map = error_map or default_error_map()

    async def charge(self, endpoint: Endpoint, request: ChargeRequest, *, timeout: Timeouts) -> ChargeResult:
        try:
            http_request = type(self).build_charge(endpoint, request)
        except RequestBuildError as exc:
            return common.charge_build_error(exc)
        answer = await send(self._client, http_request, timeout)
        if isinstance(answer, TransportFailure):
            return common.charge_failure(answer)
        return type(self).parse_charge(answer.status, answer.headers, answer.body, self._error_map)

    async def replay_charge(self, endpoint: Endpoint, request: ChargeRequest, *, timeout: Timeouts) -> ChargeResult:
        # The same request under the same idempotency key: the provider answers with the first one's
        # outcome (or, if the first never arrived, processes this one, once).
        return await self.charge(endpoint, request, timeout=timeout)

    async def refund(self, endpoint: Endpoint, request: RefundRequest, *, timeout: Timeouts) -> RefundResult:
        try:
            http_request = type(self).build_refund(endpoint, request)
        except RequestBuildError as exc:
            return common.refund_build_error(exc)
        answer = await send(self._client, http_request, timeout)
        if isinstance(answer, TransportFailure):
            return common.refund_failure(answer)
        return type(self).parse_refund(answer.status, answer.headers, answer.body, self._error_map)

    async def find_charge(self, endpoint: Endpoint, payment_id: str, *, timeout: Timeouts) -> LookupResult:
        build, parse = type(self).build_search, type(self).parse_search
        if build is None or parse is None:
            return LookupResult(state=LookupState.UNKNOWN)
        try:
            http_request = build(endpoint, payment_id)
        except RequestBuildError:
            return LookupResult(state=LookupState.UNKNOWN)
        answer = await send(self._client, http_request, timeout)
        if isinstance(answer, TransportFailure):
            return LookupResult(state=LookupState.UNKNOWN)
        return parse(answer.status, answer.headers, answer.body, self._error_map)

    async def fetch_status(self, status_url: str, *, timeout: Timeouts) -> dict[str, ComponentStatus]:
        answer = await send(self._client, common.build_status_request(status_url), timeout)
        return common.status_from_response(answer)

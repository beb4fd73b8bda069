"""The health job: status pages and our own traffic, folded into the routing table.

Run by the leader every `observation_interval_s`. For each provider and region: the status page's
component state (fetched every `status_poll_interval_s`, with its own short timeout; `unknown` when
unreachable) and, over the last
`observation_window_s`, what our payments saw there: the error rate counting only provider faults
(transient and ambiguous outcomes, never declines) and the p99 latency of calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from orchestrator.config import ProviderTable
from orchestrator.health.leader import LeaderLease
from orchestrator.kit.clock import utcnow
from orchestrator.providers.base import ComponentStatus, Timeouts
from orchestrator.routing.models import RoutingTableRow
from orchestrator.routing.repository import RoutingRepository

log = logging.getLogger(__name__)

UNHEALTHY_STATUS = frozenset({"partial_outage", "major_outage"})


class HealthPoller:
    def __init__(self, sessionmaker, adapters, providers: ProviderTable, lease: LeaderLease, *,
                 observation_window_s: float, unhealthy_error_rate: float, min_calls: int,
                 status_timeout_s: float, status_interval_s: float = 0.0, on_change=None) -> None:
        self.sessionmaker = sessionmaker
        self.adapters = adapters
        self.providers = providers
        self.lease = lease
        self.window = timedelta(seconds=observation_window_s)
        self.unhealthy_error_rate = unhealthy_error_rate
        self.min_calls = min_calls
        self.status_timeouts = Timeouts(connect_s=status_timeout_s, read_s=status_timeout_s)
        self.on_change = on_change
        self.polls = 0
        self.status_interval_s = status_interval_s
        self._statuses: dict[str, dict[str, ComponentStatus]] | None = None
        self._statuses_fetched = 0.0  # monotonic
        self._statuses_checked_at = None  # when the cached pages were read, for the rows

    async def run_once(self) -> bool:
        """One poll if this replica leads; True when it polled."""
        if not await self.lease.try_lead():
            return False
        # A small tolerance, so that a job interval equal to the status interval fetches every time.
        if self._statuses is None or time.monotonic() - self._statuses_fetched >= self.status_interval_s * 0.95:
            self._statuses = await self._status_pages()
            self._statuses_fetched = time.monotonic()
            self._statuses_checked_at = utcnow()
        statuses = self._statuses
        now = utcnow()
        async with self.sessionmaker() as session:
            repo = RoutingRepository(session)
            previous = {(r.provider, r.region): r for r in await repo.rows()}
            observed = await repo.observations(now - self.window)
            rows = []
            for provider in self.providers.providers:
                for region in provider.regions:
                    key = (provider.name, region)
                    calls, error_rate, p99_ms = observed.get(key, (0, None, None))
                    status = statuses.get(provider.name, {}).get(region, ComponentStatus.UNKNOWN).value
                    before = previous.get(key)
                    rows.append(RoutingTableRow(
                        provider=provider.name, region=region, status_page=status,
                        status_checked_at=self._statuses_checked_at,
                        error_rate=error_rate, p99_latency_ms=p99_ms, calls=calls,
                        recovering_since=self._recovering_since(before, status, error_rate, calls, now),
                        updated_at=now))
            await repo.save_rows(rows)
            await repo.bump_version()
            await session.commit()
        self.polls += 1
        if self.on_change is not None:
            self.on_change()
        return True

    def _healthy(self, status: str, error_rate: float | None) -> bool:
        if error_rate is not None:  # our observations win over the status page
            return error_rate <= self.unhealthy_error_rate
        return status not in UNHEALTHY_STATUS

    def _recovering_since(self, before: RoutingTableRow | None, status: str, error_rate: float | None,
                          calls: int, now):
        """Set when a provider turns healthy again on the status page's word alone; it then gets only an
        exploration share until our own calls show it healthy (or the recovery period ends). A provider
        our own calls already show healthy (its breaker's probes passed and traffic flows again) is not
        held back: the evidence is in."""
        if not self._healthy(status, error_rate):
            return None
        if error_rate is not None and calls >= self.min_calls:
            return None
        if before is None:
            return None
        if not self._healthy(before.status_page, before.error_rate):
            return now
        return before.recovering_since

    async def _status_pages(self) -> dict[str, dict[str, ComponentStatus]]:
        async def one(provider):
            adapter = self.adapters[provider.adapter]
            try:
                return provider.name, await adapter.fetch_status(provider.status_url, timeout=self.status_timeouts)
            except Exception:  # a broken status page must not stop the poll
                log.warning("status page of %s unreadable", provider.name, exc_info=True)
                return provider.name, {}

        return dict(await asyncio.gather(*(one(p) for p in self.providers.providers)))

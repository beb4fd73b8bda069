"""The routing snapshot each replica keeps in memory, so routing a payment costs no query.

It is rebuilt from the provider table (compliance, fees), the routing table rows (status pages and
observations) and the active overrides whenever the routing version changes: Postgres announces a
change by NOTIFY and every replica LISTENs; a short poll of the version covers SQLite and any notice
missed while a listener reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time

from orchestrator.config import ProviderTable
from orchestrator.kit.db import asyncpg_dsn, is_sqlite
from orchestrator.overrides.repository import OverrideRepository, to_override
from orchestrator.routing.models import RoutingTableRow
from orchestrator.routing.repository import NOTIFY_CHANNEL, RoutingRepository
from orchestrator.routing.scoring import Override, ProviderRoute, RoutingSnapshot

log = logging.getLogger(__name__)


def build_snapshot(providers: ProviderTable, rows: list[RoutingTableRow], version: int) -> RoutingSnapshot:
    by_key = {(row.provider, row.region): row for row in rows}
    routes: dict[tuple[str, str], ProviderRoute] = {}
    for provider in providers.providers:
        for region in provider.regions:
            row = by_key.get((provider.name, region))
            fee = provider.fee_in(region)
            routes[(provider.name, region)] = ProviderRoute(
                provider=provider.name, region=region, enabled=True, currencies=frozenset(provider.currencies),
                fee_percent=fee.percent, fee_fixed=fee.fixed,
                status_page=row.status_page if row else "unknown",
                observed_error_rate=row.error_rate if row else None,
                observed_p99_ms=row.p99_latency_ms if row else None,
                observed_calls=row.calls if row else 0,
                recovering_since=row.recovering_since.timestamp() if row and row.recovering_since else None,
                updated_at=row.updated_at.timestamp() if row else 0.0)
    return RoutingSnapshot(routes=routes, version=version, updated_at=time.time())


class RoutingState:
    def __init__(self, sessionmaker, providers: ProviderTable, database_url: str, *, poll_interval_s: float) -> None:
        self.sessionmaker = sessionmaker
        self.providers = providers
        self.database_url = database_url
        self.poll_interval_s = poll_interval_s
        self.snapshot: RoutingSnapshot = build_snapshot(providers, [], -1)
        self.overrides: tuple[Override, ...] = ()
        self.loaded_at = 0.0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listener = None

    async def refresh(self, force: bool = False) -> bool:
        """Reload if the version moved; True when something was reloaded."""
        async with self.sessionmaker() as session:
            routing = RoutingRepository(session)
            version = await routing.version()
            if not force and version == self.snapshot.version:
                self.loaded_at = time.time()
                return False
            rows = await routing.rows()
            overrides = await OverrideRepository(session).active()
        self.snapshot = build_snapshot(self.providers, rows, version)
        self.overrides = tuple(to_override(row) for row in overrides)
        self.loaded_at = time.time()
        return True

    def freshness(self, *, max_table_age_s: float, max_snapshot_age_s: float) -> dict:
        """Whether this replica routes from current data: a recent reload and recent health rows."""
        now = time.time()
        table_updated = max((r.updated_at for r in self.snapshot.routes.values()), default=0.0)
        table_age = now - table_updated if table_updated else None
        snapshot_age = now - self.loaded_at
        return {"fresh": table_age is not None and table_age <= max_table_age_s
                and snapshot_age <= max_snapshot_age_s,
                "table_age_s": None if table_age is None else round(table_age, 3),
                "snapshot_age_s": round(snapshot_age, 3), "version": self.snapshot.version}

    def notify(self) -> None:
        """A change made by this process: apply it without waiting for the poll."""
        self._changed.set()

    async def start(self) -> None:
        await self.refresh(force=True)
        if not is_sqlite(self.database_url):
            await self._listen()
        self._task = asyncio.create_task(self._run(), name="routing-state")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._listener is not None:
            await self._listener.close()

    async def _listen(self) -> None:
        import asyncpg

        dsn = asyncpg_dsn(self.database_url)
        try:
            self._listener = await asyncpg.connect(dsn)
            await self._listener.add_listener(NOTIFY_CHANNEL, lambda *_args: self._changed.set())
        except (OSError, asyncpg.PostgresError):
            log.warning("cannot LISTEN for routing changes; polling only", exc_info=True)
            self._listener = None

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=self.poll_interval_s)
            except asyncio.TimeoutError:
                pass
            self._changed.clear()
            try:
                await self.refresh()
            except Exception:  # the last good snapshot keeps serving while the database is away
                log.warning("routing snapshot refresh failed", exc_info=True)
            if self._listener is not None and self._listener.is_closed():
                await self._listen()

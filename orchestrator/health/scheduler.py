"""Background jobs of the `serve` process, on APScheduler's asyncio scheduler."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from orchestrator.health.poller import HealthPoller
from orchestrator.health.reconciler import Reconciler

log = logging.getLogger(__name__)


def build_scheduler(reconciler: Reconciler, poller: HealthPoller, *, reconcile_interval_s: float,
                    health_interval_s: float) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
    scheduler.add_job(_safely(reconciler.run_once), "interval", seconds=reconcile_interval_s, id="reconcile")
    # The first poll runs at start, so a fresh replica has status pages at once.
    scheduler.add_job(_safely(poller.run_once), "interval", seconds=health_interval_s, id="health",
                      next_run_time=datetime.now(timezone.utc))
    return scheduler


def _safely(job):
    async def run() -> None:
        try:
            await job()
        except Exception:  # a failed run is logged and retried at the next interval
            log.exception("background job %s failed", getattr(job, "__qualname__", job))

    return run

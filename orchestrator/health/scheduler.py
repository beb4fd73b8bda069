"""Background jobs of the `serve` process, on APScheduler's asyncio scheduler."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from orchestrator.health.reconciler import Reconciler

log = logging.getLogger(__name__)


def build_scheduler(reconciler: Reconciler, *, reconcile_interval_s: float) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
    scheduler.add_job(_safely(reconciler.run_once), "interval", seconds=reconcile_interval_s, id="reconcile")
    return scheduler


def _safely(job):
    async def run() -> None:
        try:
            await job()
        except Exception:  # a failed run is logged and retried at the next interval
            log.exception("background job %s failed", getattr(job, "__qualname__", job))

    return run

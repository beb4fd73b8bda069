"""A scratch database for the `orchestrator` router: a fresh Postgres database, or a SQLite file."""

from __future__ import annotations

import contextlib
import logging
import uuid
from pathlib import Path
from typing import Iterator

from orchestrator.devstack import DEFAULT_POSTGRES_URL, scratch_postgres_database  # noqa: F401 - re-exported

log = logging.getLogger("orchestrator.gauntlet")


@contextlib.contextmanager
def scratch_database(postgres_url: str | None, workdir: Path, prefix: str = "orch_gauntlet") -> Iterator[str]:
    """Yield a database URL for one run. With `postgres_url` (a database to connect to for CREATE
    DATABASE), a new database beside it, dropped afterwards; without it, or when Postgres cannot be
    reached, a SQLite file in `workdir`."""
    if postgres_url:
        scratch = scratch_postgres_database(postgres_url, prefix)
        try:
            database_url = scratch.__enter__()
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to SQLite, and say so
            log.warning("Postgres at %s unavailable (%s); using SQLite", postgres_url.rpartition("@")[2],
                        type(exc).__name__)
        else:
            try:
                yield database_url
            finally:
                with contextlib.suppress(Exception):
                    scratch.__exit__(None, None, None)
            return
    path = Path(workdir) / f"{prefix}_{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite+aiosqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{path}{suffix}").unlink()

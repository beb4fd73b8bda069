"""A scratch database for the `orchestrator` router: a fresh Postgres database, or a SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path
from typing import Iterator

log = logging.getLogger("orchestrator.gauntlet")

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _execute(admin_url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_plain(admin_url), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _run(admin_url: str, sql: str) -> None:
    asyncio.run(_execute(admin_url, sql))


@contextlib.contextmanager
def scratch_database(postgres_url: str | None, workdir: Path, prefix: str = "orch_gauntlet") -> Iterator[str]:
    """Yield a database URL for one run. With `postgres_url` (a database to connect to for CREATE
    DATABASE), a new database beside it, dropped afterwards; without it, or when Postgres cannot be
    reached, a SQLite file in `workdir`."""
    if postgres_url:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        try:
            _run(postgres_url, f'CREATE DATABASE "{name}"')
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to SQLite, and say so
            log.warning("Postgres at %s unavailable (%s); using SQLite", postgres_url.rpartition("@")[2],
                        type(exc).__name__)
        else:
            base = postgres_url.rpartition("/")[0]
            try:
                yield f"{base}/{name}"
            finally:
                with contextlib.suppress(Exception):
                    _run(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
    path = Path(workdir) / f"{prefix}_{uuid.uuid4().hex[:8]}.db"
    try:
        yield f"sqlite+aiosqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{path}{suffix}").unlink()

"""Exactly one replica polls: the one holding a Postgres session-level advisory lock.

The lock lives as long as the holder's connection: when the leader dies, its connection closes, the
lock is released, and another replica's next try (every poll interval) takes it, so a new leader is
polling within two intervals. On SQLite there is one process, which always leads.
"""

from __future__ import annotations

import logging

from orchestrator.kit.db import asyncpg_dsn, is_sqlite

log = logging.getLogger(__name__)

# An arbitrary constant naming this lock among any others on the database.
ADVISORY_LOCK_KEY = 0x6F72636865737472  # "orchestr"


class LeaderLease:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._connection = None
        self.is_leader = is_sqlite(database_url)

    async def try_lead(self) -> bool:
        """Keep or take the lease; False when another replica holds it or the database is away."""
        if is_sqlite(self.database_url):
            return True
        import asyncpg

        try:
            if self._connection is not None and not self._connection.is_closed():
                await self._connection.fetchval("SELECT 1")  # still ours while this connection lives
                if self.is_leader:
                    return True
            else:
                dsn = asyncpg_dsn(self.database_url)
                self._connection = await asyncpg.connect(dsn, timeout=5)
                self.is_leader = False
            acquired = await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_LOCK_KEY)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            log.warning("leader lease check failed", exc_info=True)
            await self.release()
            return False
        if acquired and not self.is_leader:
            log.info("this replica now leads the health polling")
        self.is_leader = bool(acquired)
        return self.is_leader

    async def release(self) -> None:
        if self._connection is not None:
            try:
                await self._connection.close(timeout=2)
            except Exception:  # closing a broken connection may fail; the lock goes with it anyway
                pass
        self._connection = None
        self.is_leader = is_sqlite(self.database_url)

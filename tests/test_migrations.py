"""Alembic builds the whole schema from empty on both databases, and the models do not drift from it."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from orchestrator.kit.db import create_engine
from orchestrator.kit.migrate import upgrade
from orchestrator.models import Base
from tests.fixtures.database import fresh_postgres_database

EXPECTED_TABLES = {"merchants", "admin_tokens", "payments", "payment_attempts", "refunds", "idempotency_records",
                   "alembic_version", "routing_table", "routing_version", "overrides", "audit_log"}


def schema_state(url: str) -> tuple[set[str], list]:
    async def inspect_it():
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                def compare(sync_connection):
                    context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
                    return set(inspect(sync_connection).get_table_names()), compare_metadata(context, Base.metadata)
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(inspect_it())


def test_migrations_build_the_schema_on_postgres_without_drift():
    with fresh_postgres_database("orch_migrate") as url:
        upgrade(url)
        tables, diff = schema_state(url)
    assert EXPECTED_TABLES <= tables
    assert diff == []


def test_migrations_build_the_schema_on_sqlite_without_drift(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"
    upgrade(url)
    tables, diff = schema_state(url)
    assert EXPECTED_TABLES <= tables
    assert diff == []


def test_upgrading_twice_is_harmless(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'again.db'}"
    upgrade(url)
    upgrade(url)
    assert EXPECTED_TABLES <= schema_state(url)[0]

"""Alembic migrations are the only way the schema is made."""

from pathlib import Path

from alembic import command
from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str, *, configure_logging: bool = False) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = configure_logging
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking; run it before the event loop starts, or in a thread."""
    command.upgrade(alembic_config(database_url), revision)

"""The `orchestrator` command. Results go to stdout as JSON; logs go to stderr, always."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from orchestrator.config import Settings
from orchestrator.devstack import SANDBOX_URL_ENV

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
merchant_app = typer.Typer(no_args_is_help=True, help="Merchants and their API keys.")
admin_token_app = typer.Typer(no_args_is_help=True, help="Admin API tokens.")
app.add_typer(db_app, name="db")
app.add_typer(merchant_app, name="merchant")
app.add_typer(admin_token_app, name="admin-token")



def _configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr, with trace and span ids inside a span; stdout is left to results."""
    from orchestrator.observability.logging import configure_logging

    configure_logging(level)


def _print_json(value: dict) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def _exit_cleanly(_signum, _frame) -> None:
    raise SystemExit(0)


def _upgrade(settings: Settings) -> None:
    from orchestrator.kit.migrate import upgrade

    upgrade(settings.database_url)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    sandbox: bool = typer.Option(False, "--sandbox", help="Also start the three sandbox gateways and use them."),
    sandbox_base_port: int = typer.Option(8101, help="With --sandbox: Stripe here, Adyen +1, Braintree +2."),
    no_migrate: bool = typer.Option(False, "--no-migrate", help="Do not run the migrations first."),
) -> None:
    """Run the API and its scheduler (health polling, reconciliation)."""
    import uvicorn

    settings = Settings()
    _configure_logging(settings.log_level)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler that was
    # there before it; this one turns that into a clean exit, so the sandboxes are stopped too.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    gateways = None
    if sandbox:
        from sandbox_gateways.runner import start_sandboxes

        gateways = start_sandboxes(host="127.0.0.1", base_port=sandbox_base_port)
        for name, url in gateways.urls.items():
            os.environ[SANDBOX_URL_ENV[name]] = url
        settings = Settings()
    try:
        if not no_migrate:
            _upgrade(settings)
        from orchestrator.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=15, log_config=None)  # uvicorn's records go to the JSON handler
    finally:
        if gateways is not None:
            gateways.stop()


@app.command("sandbox")
def sandbox_command(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    base_port: int = typer.Option(8101, help="Stripe on this port, Adyen on +1, Braintree on +2."),
    seed: int = typer.Option(0, help="Seed of the fault draws, for repeatable runs."),
) -> None:
    """Run the three sandbox gateways until SIGTERM or SIGINT."""
    from sandbox_gateways.runner import start_sandboxes

    _configure_logging()
    gateways = start_sandboxes(host=host, base_port=base_port, seed=seed)
    for name, url in gateways.urls.items():
        logging.getLogger("orchestrator.sandbox").info("%s sandbox at %s", name, url)
    stop = {"now": False}

    def _stop(*_args) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop["now"]:
            time.sleep(0.2)
    finally:
        gateways.stop()


@app.command()
def demo(
    duration: float = typer.Option(60.0, help="Seconds of traffic, incident included."),
    seed: int = typer.Option(7, help="Seed of the traffic and the sandboxes' fault draws."),
    rate: float = typer.Option(40.0, help="Payments per second."),
) -> None:
    """Watch an outage being routed around live, on embedded defaults (SQLite, sandbox gateways)."""
    from orchestrator.demo import run_demo

    _configure_logging("WARNING")
    raise typer.Exit(run_demo(duration_s=duration, seed=seed, rate=rate))


@app.command()
def gauntlet(
    scenarios: list[Path] = typer.Argument(None, help="Scenario files; default: every bench/scenarios/*.yaml "
                                                      "but the short ci-*.yaml."),
    routers: str = typer.Option("static,naive,orchestrator,oracle", help="Comma-separated routers to compare."),
    out: Path = typer.Option(Path("bench/results"), help="Where the JSON results and the plots go."),
    seed: int = typer.Option(1, help="Seed of the traffic and the fault draws."),
    postgres: str = typer.Option("postgresql+asyncpg://postgres@127.0.0.1:5432/test",
                                 help="Database to connect to for CREATE DATABASE (the orchestrator router gets a "
                                      "fresh one per scenario); 'none' for a SQLite file."),
    parallel: bool = typer.Option(True, "--parallel/--sequential",
                                  help="Run static, naive and oracle side by side (the orchestrator always alone)."),
    orch_env: list[str] = typer.Option([], "--orch-env", metavar="ORCH_NAME=VALUE",
                                       help="A setting for the orchestrator router's server (repeatable); "
                                            "results record it."),
) -> None:
    """Replay seeded provider failures through several routers, side by side, and compare them."""
    from orchestrator.gauntlet import run_gauntlet

    _configure_logging("WARNING")
    settings = {}
    for item in orch_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("ORCH_"):
            raise typer.BadParameter(f"expected ORCH_NAME=VALUE, got {item!r}", param_hint="--orch-env")
        settings[name] = value
    raise typer.Exit(run_gauntlet(scenarios or [], routers=[r.strip() for r in routers.split(",") if r.strip()],
                                  out_dir=out, seed=seed, postgres_url="" if postgres == "none" else postgres,
                                  parallel=parallel, orchestrator_env=settings))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Run the Alembic migrations up to the newest revision."""
    settings = Settings()
    _configure_logging(settings.log_level)
    _upgrade(settings)
    logging.getLogger("orchestrator").info("database at head")


def _in_session(work) -> dict:
    """Run `work(session)` in one committed transaction against the configured database."""
    from orchestrator.kit.db import create_engine, create_sessionmaker

    settings = Settings()
    _configure_logging(settings.log_level)

    async def run() -> dict:
        engine = create_engine(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


@merchant_app.command("create")
def merchant_create(name: str) -> None:
    """Create a merchant; prints {"id", "api_key"} once (only a hash is stored)."""
    from orchestrator.merchants.service import create_merchant

    async def work(session) -> dict:
        merchant, api_key = await create_merchant(session, name)
        return {"id": merchant.id, "api_key": api_key}

    _print_json(_in_session(work))


@admin_token_app.command("create")
def admin_token_create(name: str) -> None:
    """Create an admin token; prints {"name", "token"} once (only a hash is stored)."""
    from orchestrator.admin.service import create_admin_token

    async def work(session) -> dict:
        row, token = await create_admin_token(session, name)
        return {"name": row.name, "token": token}

    _print_json(_in_session(work))


def main(argv: Optional[list[str]] = None) -> None:  # pragma: no cover - console entry
    app(argv)

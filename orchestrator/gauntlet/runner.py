"""Run one scenario through the routers, each against fresh sandbox processes.

The direct routers (`static`, `naive`, `oracle`) run side by side in one event loop, each with its own
three sandboxes; the `orchestrator` router runs alone afterwards (its own sandboxes, a scratch
database and one `serve` process), so its server has the machine to itself. Every router replays the
same planned payments at the same offsets and gets the same fault timeline, with the same sandbox
seed. Every process started here is stopped before the function returns, on errors and Ctrl-C too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from orchestrator.devstack import orchestrator_env, run_cli, start_server, wait_ready
from orchestrator.gauntlet.database import scratch_database
from orchestrator.gauntlet.ledger import fetch_ledgers, provider_table, request_again
from orchestrator.gauntlet.routers import (
    DirectProviders,
    NaiveRouter,
    OracleRouter,
    OrchestratorRouter,
    PaymentRecord,
    Router,
    StaticRouter,
    apply_payment_object,
    timed,
)
from orchestrator.gauntlet.scenario import NO_FAULT, Scenario
from orchestrator.gauntlet.traffic import PlannedPayment

log = logging.getLogger("orchestrator.gauntlet")

CLIENT_LIMITS = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
CONTROL_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=0)  # rare calls: a new connection each
SETTLE_TIMEOUT_S = 40.0  # how long `processing` orchestrator payments are given to be reconciled
START_DELAY_S = 0.3


@dataclass
class RouterRun:
    router: str
    records: list[PaymentRecord]
    charges: dict[str, list[dict]]
    wall_s: float
    notes: list[str] = field(default_factory=list)


@dataclass
class RunOptions:
    sandbox_seed: int = 1
    postgres_url: str | None = None
    orchestrator_env: dict[str, str] = field(default_factory=dict)  # extra ORCH_ settings, documented
    parallel: bool = True
    log_dir: Path | None = None


async def _put_fault(client: httpx.AsyncClient, url: str, region: str, body: dict) -> None:
    response = await request_again(client, "PUT", f"{url}/_sandbox/faults/{region.lower()}", json=body, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"fault control refused {body}: {response.status_code} {response.text}")


async def prepare_sandboxes(client: httpx.AsyncClient, sandbox_urls: dict[str, str], scenario: Scenario) -> None:
    """No faults, empty ledgers, then the scenario's baseline everywhere."""
    for url in sandbox_urls.values():
        (await request_again(client, "POST", f"{url}/_sandbox/reset", timeout=10)).raise_for_status()
        baseline = scenario.baseline.given()
        if baseline:
            await _put_fault(client, url, "all", baseline)


async def play_faults(client: httpx.AsyncClient, sandbox_urls: dict[str, str], scenario: Scenario,
                      t0: float, on_event: Callable[[float, str], None] | None = None) -> None:
    """Apply the timeline at its offsets from loop time `t0`: a fault's fields, or back to the baseline."""
    loop = asyncio.get_running_loop()
    clear_body = {**NO_FAULT, **scenario.baseline.given()}
    for event in sorted(scenario.timeline, key=lambda e: e.at):
        delay = t0 + event.at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        body = clear_body if event.clear else event.fault.given()  # type: ignore[union-attr]
        await asyncio.gather(*(_put_fault(client, sandbox_urls[provider], region, body)
                               for provider, region in event.targets()))
        if on_event is not None:
            on_event(event.at, event.note or "")


async def drive(router: Router, planned: list[PlannedPayment], t0: float) -> list[PaymentRecord]:
    """Open loop: each payment leaves at its planned offset, whatever the answers to earlier ones."""
    loop = asyncio.get_running_loop()
    tasks = []
    for payment in planned:
        delay = t0 + payment.at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        record = PaymentRecord(n=payment.n, region=payment.region, currency=payment.currency, amount=payment.amount,
                               sent=loop.time() - t0)
        tasks.append(asyncio.create_task(timed(router, payment, record)))
    return list(await asyncio.gather(*tasks))


# --- the direct routers ---------------------------------------------------------------------------


async def _run_direct(names: list[str], gateways: dict[str, dict[str, str]], scenario: Scenario,
                      planned: list[PlannedPayment]) -> dict[str, RouterRun]:
    table = provider_table()
    faults = scenario.faults()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        control = await stack.enter_async_context(httpx.AsyncClient(timeout=10, limits=CONTROL_LIMITS))
        routers: dict[str, Router] = {}
        t0_box: list[float] = []
        for name in names:
            await prepare_sandboxes(control, gateways[name], scenario)
            client = await stack.enter_async_context(httpx.AsyncClient(limits=CLIENT_LIMITS, timeout=30))
            providers = DirectProviders(table, gateways[name], client)
            if name == "static":
                routers[name] = StaticRouter(providers, scenario)
            elif name == "naive":
                routers[name] = NaiveRouter(providers, scenario)
            elif name == "oracle":
                routers[name] = OracleRouter(providers, scenario, faults, lambda: loop.time() - t0_box[0])
            else:  # pragma: no cover - checked by the caller
                raise ValueError(name)
        t0 = loop.time() + START_DELAY_S
        t0_box.append(t0)
        started = time.monotonic()
        jobs = [drive(routers[name], planned, t0) for name in names]
        jobs += [play_faults(control, gateways[name], scenario, t0) for name in names]
        results = await asyncio.gather(*jobs)
        wall = time.monotonic() - started
        runs = {}
        for index, name in enumerate(names):
            charges = await fetch_ledgers(control, gateways[name])
            runs[name] = RouterRun(name, results[index], charges, wall)
        return runs


def run_direct(names: list[str], scenario: Scenario, planned: list[PlannedPayment],
               options: RunOptions) -> dict[str, RouterRun]:
    from sandbox_gateways.runner import start_sandboxes

    groups = [names] if options.parallel else [[name] for name in names]
    runs: dict[str, RouterRun] = {}
    for group in groups:
        with contextlib.ExitStack() as stack:
            gateways = {name: stack.enter_context(start_sandboxes(
                host="127.0.0.1", base_port=None, seed=options.sandbox_seed,
                timeout_hold_s=scenario.sandbox.timeout_hold_s)).urls for name in group}
            runs.update(asyncio.run(_run_direct(group, gateways, scenario, planned)))
    return runs


# --- the orchestrator -----------------------------------------------------------------------------


async def _settle(client: httpx.AsyncClient, records: list[PaymentRecord], timeout_s: float) -> list[str]:
    """Wait for reconciliation to settle `processing` payments; find payments whose answer was lost."""
    notes = []
    pending = {r.payment_id: r for r in records if r.status == "processing" and r.payment_id}
    give_up = time.monotonic() + timeout_s
    while pending and time.monotonic() < give_up:
        await asyncio.sleep(1.0)
        for payment_id, record in list(pending.items()):
            response = await request_again(client, "GET", f"/v1/payments/{payment_id}", timeout=10)
            if response.status_code == 200 and response.json()["status"] != "processing":
                record.final_status = response.json()["status"]
                if record.final_status == "succeeded":
                    record.provider = response.json()["provider"]
                del pending[payment_id]
    if pending:
        notes.append(f"{len(pending)} payments still processing after {timeout_s:g} s")
    if any(r.payment_id is None for r in records):
        # Answers lost on the client side: find those payments by the run number in their metadata.
        by_n = {r.n: r for r in records if r.payment_id is None}
        cursor = None
        while by_n:
            params = {"limit": 100, **({"starting_after": cursor} if cursor else {})}
            page = (await request_again(client, "GET", "/v1/payments", params=params, timeout=30)).json()
            for data in page["data"]:
                n = int(data.get("metadata", {}).get("gauntlet_n", -1))
                if n in by_n:
                    record = by_n.pop(n)
                    status, code = record.status, record.code
                    apply_payment_object(record, data)
                    record.final_status, record.status, record.code = record.status, status, code
            if not page["has_more"] or not page["data"]:
                break
            cursor = page["data"][-1]["id"]
        if by_n:
            notes.append(f"{len(by_n)} requests left no payment")
    return notes


async def _run_orchestrator(base_url: str, api_key: str, sandbox_urls: dict[str, str], scenario: Scenario,
                            planned: list[PlannedPayment]) -> RouterRun:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=10, limits=CONTROL_LIMITS) as control, \
            httpx.AsyncClient(base_url=base_url, limits=CLIENT_LIMITS, timeout=30,
                              headers={"Authorization": f"Bearer {api_key}"}) as client:
        await prepare_sandboxes(control, sandbox_urls, scenario)
        await wait_ready(client)
        router = OrchestratorRouter(client, f"gauntlet-{secrets.token_hex(4)}")
        t0 = loop.time() + START_DELAY_S
        started = time.monotonic()
        records, _ = await asyncio.gather(drive(router, planned, t0), play_faults(control, sandbox_urls, scenario, t0))
        wall = time.monotonic() - started
        notes = await _settle(client, records, SETTLE_TIMEOUT_S)
        charges = await fetch_ledgers(control, sandbox_urls)
        return RouterRun("orchestrator", records, charges, wall, notes)


def run_orchestrator(scenario: Scenario, planned: list[PlannedPayment], options: RunOptions) -> RouterRun:
    from sandbox_gateways.runner import start_sandboxes

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gauntlet-")))
        log_dir = options.log_dir or workdir
        log_dir.mkdir(parents=True, exist_ok=True)
        gateways = stack.enter_context(start_sandboxes(host="127.0.0.1", base_port=None, seed=options.sandbox_seed,
                                                       timeout_hold_s=scenario.sandbox.timeout_hold_s))
        database_url = stack.enter_context(scratch_database(options.postgres_url, workdir))
        env = orchestrator_env(database_url, gateways.urls, ORCH_LOG_LEVEL="WARNING", **options.orchestrator_env)
        server = start_server(env, log_dir, extra_args=(), ready_timeout_s=60)  # serve migrates the new database
        stack.callback(server.stop)
        api_key = run_cli(["merchant", "create", "Gauntlet"], env)["api_key"]
        run = asyncio.run(_run_orchestrator(server.base_url, api_key, gateways.urls, scenario, planned))
        if database_url.startswith("sqlite"):
            run.notes.append("database: SQLite (Postgres unavailable)")
        return run


def run_scenario(scenario: Scenario, planned: list[PlannedPayment], routers: list[str],
                 options: RunOptions) -> dict[str, RouterRun]:
    runs: dict[str, RouterRun] = {}
    direct = [r for r in routers if r != "orchestrator"]
    if direct:
        runs.update(run_direct(direct, scenario, planned, options))
    if "orchestrator" in routers:
        runs["orchestrator"] = run_orchestrator(scenario, planned, options)
    return {name: runs[name] for name in routers}

"""`orchestrator demo`: a live outage, routed around, on embedded defaults.

Starts the three sandbox gateways and one `serve` process (SQLite in a temporary directory, migrated
by `serve`), creates a merchant, sends a steady stream of payments across regions and currencies, plays
the scripted incident of `incident.py` through the sandbox's fault control and the admin API, and
shows what the orchestrator does about it. Ends with a summary and the money invariant checked against
the sandbox ledgers. Every process it starts is stopped at the end, also on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live

from orchestrator.demo.incident import OVERRIDE_REASON, DemoPayment, Step, incident, traffic
from orchestrator.demo.view import Answer, DemoState, plain_line, render
from orchestrator.devstack import orchestrator_env, run_cli, start_server, wait_ready
from orchestrator.gauntlet.ledger import (
    Reported,
    fee_minor,
    fetch_ledgers,
    invariant_violations,
    provider_table,
    request_again,
)
from orchestrator.kit.money import exponent
from orchestrator.routing.regions import region_for_country

MIN_DURATION_S = 5.0
ADMIN_POLL_S = 1.0
SETTLE_TIMEOUT_S = 20.0


class Interrupted(Exception):
    pass


def run_demo(duration_s: float = 60.0, seed: int = 7, rate: float = 40.0) -> int:
    """Run the demo; 0 when the money invariant holds, 1 when it does not, 2 for bad options, 130 on
    Ctrl-C. Output: the live view (or plain lines without a terminal) and the summary on stdout."""
    if duration_s < MIN_DURATION_S or rate <= 0 or rate > 500:
        print(f"--duration must be at least {MIN_DURATION_S:g} s and --rate within (0, 500]", file=sys.stderr)
        return 2
    from sandbox_gateways.runner import start_sandboxes

    live = sys.stdout.isatty()
    console = Console(highlight=False) if live else Console(highlight=False, markup=False, width=220, no_color=True)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with tempfile.TemporaryDirectory(prefix="orchestrator-demo-") as workdir, \
                start_sandboxes(host="127.0.0.1", base_port=None, seed=seed) as gateways:
            database_url = f"sqlite+aiosqlite:///{Path(workdir) / 'demo.db'}"
            admin_token = secrets.token_urlsafe(24)
            scale = time_scale(duration_s)
            env = orchestrator_env(database_url, gateways.urls, ORCH_ADMIN_TOKEN=admin_token, ORCH_LOG_LEVEL="WARNING",
                                   **{name: f"{value:g}" for name, value in scale.items()})
            console.print(f"Sandbox gateways: {', '.join(f'{k} {v}' for k, v in gateways.urls.items())}")
            console.print(f"Time scale of the demo: the orchestrator judges providers on the last "
                          f"{scale['ORCH_OBSERVATION_WINDOW_S']:g} s of its own calls and explores a recovered one "
                          f"for {scale['ORCH_ROUTING__RECOVERY_S']:g} s (defaults: 60 s and 60 s), and reads the "
                          f"status pages every {scale['ORCH_STATUS_POLL_INTERVAL_S']:g} s (default 5 s), so the "
                          f"whole incident, recovery included, fits in {duration_s:g} s.")
            server = start_server(env, Path(workdir), extra_args=())  # serve migrates the new SQLite file
            try:
                console.print(f"Orchestrator: {server.base_url} (SQLite in {workdir}); log in {server.log_path.name}")
                merchant = run_cli(["merchant", "create", "Demo Shop"], env)
                return asyncio.run(_demo(console, live, server.base_url, merchant["api_key"], admin_token,
                                         gateways.urls, duration_s, rate, seed))
            finally:
                server.stop()
    except (KeyboardInterrupt, Interrupted):
        print("\nInterrupted: every process the demo started has been stopped.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def time_scale(duration_s: float) -> dict[str, float]:
    """The orchestrator's health time constants, shrunk so that the incident and the return of traffic
    after it both fit in the demo (by default they span minutes)."""
    return {"ORCH_OBSERVATION_WINDOW_S": round(max(5.0, duration_s / 6), 1),
            "ORCH_ROUTING__RECOVERY_S": round(max(3.0, duration_s / 10), 1),
            "ORCH_STATUS_POLL_INTERVAL_S": 1.0}


def _raise_interrupt(_signum, _frame) -> None:
    raise Interrupted()


async def _demo(console: Console, live: bool, base_url: str, api_key: str, admin_token: str,
                sandbox_urls: dict[str, str], duration_s: float, rate: float, seed: int) -> int:
    state = DemoState(duration_s=duration_s, rate=rate)
    planned = traffic(duration_s, rate, seed)
    script = incident(duration_s)
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits,
                                 headers={"Authorization": f"Bearer {api_key}"}) as api, \
            httpx.AsyncClient(base_url=base_url, timeout=10,
                              headers={"Authorization": f"Bearer {admin_token}"}) as admin, \
            httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as control:
        await wait_ready(api)
        await _poll_admin(admin, state)
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.2

        def clock() -> float:
            return max(0.0, loop.time() - t0)

        def note(text: str) -> None:
            state.events.append((clock(), text))
            state.phase = text
            if not live:
                console.print(f"t={clock():5.1f}s  >> {text}")

        if not live:
            console.print(f"Sending {rate:g} payments/s for {duration_s:g} s across EU, US and APAC; "
                          f"incident on Stripe EU from t={script[0].at:.1f}s.")
        traffic_task = asyncio.create_task(_send_all(api, planned, state, t0, clock))
        script_task = asyncio.create_task(_play(script, control, admin, sandbox_urls, t0, note))
        poller = asyncio.create_task(_keep_polling(admin, state))
        try:
            if live:
                with Live(render(state), console=console, refresh_per_second=4, transient=False) as view:
                    while not traffic_task.done():
                        state.now = clock()
                        view.update(render(state))
                        await asyncio.sleep(0.25)
                    state.now = clock()
                    view.update(render(state))
            else:
                every = max(2.0, duration_s / 12)
                while not traffic_task.done():
                    await asyncio.wait({traffic_task}, timeout=every)
                    state.now = clock()
                    console.print(plain_line(state))
            await traffic_task
            await script_task
        finally:
            for task in (traffic_task, script_task, poller):
                task.cancel()
            await asyncio.gather(traffic_task, script_task, poller, return_exceptions=True)
        return await _summary(console, api, control, sandbox_urls, state, duration_s)


async def _send_all(api: httpx.AsyncClient, planned: list[DemoPayment], state: DemoState, t0: float,
                    clock) -> None:
    """Open loop: each payment leaves at its time, whatever the answers to the earlier ones."""
    loop = asyncio.get_running_loop()
    tasks = []
    for payment in planned:
        delay = t0 + payment.at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        state.sent += 1
        tasks.append(asyncio.create_task(_pay(api, payment, state, clock)))
    await asyncio.gather(*tasks)


async def _pay(api: httpx.AsyncClient, payment: DemoPayment, state: DemoState, clock) -> None:
    sent = clock()
    region = region_for_country(payment.country) or "?"
    body = {"amount": payment.amount, "currency": payment.currency, "country": payment.country,
            "payment_method": payment.token, "description": f"demo order {payment.n}",
            "metadata": {"order_id": str(payment.n)}}
    answer = Answer(sent=sent, done=sent, region=region, currency=payment.currency, amount=payment.amount,
                    payment_id=None, status="error", code=None, provider=None)
    try:
        response = await api.post("/v1/payments", json=body, headers={"Idempotency-Key": f"demo-order-{payment.n}"})
        if response.status_code in (200, 201):
            data = response.json()
            answer.payment_id, answer.status, answer.provider = data["id"], data["status"], data.get("provider")
            answer.code = (data.get("failure") or {}).get("code")
            answer.attempts = data.get("attempts", [])
            answer.overrides = list(data.get("route", {}).get("overrides", []))
        else:
            answer.code = f"http_{response.status_code}"
    except httpx.HTTPError as exc:
        answer.code = f"client_{type(exc).__name__}"
    answer.done = clock()
    state.answers.append(answer)


async def _poll_admin(admin: httpx.AsyncClient, state: DemoState) -> None:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        table = (await admin.get("/admin/routing-table")).json()["data"]
        state.routing = {(row["provider"], row["region"]): row for row in table}
        overrides = (await admin.get("/admin/overrides")).json()["data"]
        state.overrides = [o for o in overrides if o.get("active")]


async def _keep_polling(admin: httpx.AsyncClient, state: DemoState) -> None:
    while True:
        await _poll_admin(admin, state)
        await asyncio.sleep(ADMIN_POLL_S)


async def _play(script: list[Step], control: httpx.AsyncClient, admin: httpx.AsyncClient,
                sandbox_urls: dict[str, str], t0: float, note) -> None:
    loop = asyncio.get_running_loop()
    override_id = None
    for step in script:
        delay = t0 + step.at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if step.kind == "fault":
            response = await request_again(control, "PUT", f"{sandbox_urls['stripe']}/_sandbox/faults/eu",
                                           json=step.fault)
            response.raise_for_status()
        elif step.kind == "override":
            expires = datetime.now(timezone.utc) + timedelta(seconds=step.expires_after_s)
            response = await admin.post("/admin/overrides", json={
                "action": "disable", "provider": "stripe", "scope": {"region": "EU"}, "reason": OVERRIDE_REASON,
                "expires_at": expires.isoformat().replace("+00:00", "Z")})
            response.raise_for_status()
            override_id = response.json()["id"]
        elif step.kind == "remove_override" and override_id:
            response = await admin.delete(f"/admin/overrides/{override_id}",
                                          params={"reason": "Stripe EU recovered (demo)"})
            response.raise_for_status()
        note(step.title)
    note("Incident over: traffic continues until the end")


async def _all_payments(api: httpx.AsyncClient) -> list[dict]:
    """Every payment of the demo merchant, as the orchestrator reports it now."""
    payments, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"starting_after": cursor} if cursor else {})}
        page = (await request_again(api, "GET", "/v1/payments", params=params)).json()
        payments.extend(page["data"])
        if not page["has_more"] or not page["data"]:
            return payments
        cursor = page["data"][-1]["id"]


async def _summary(console: Console, api: httpx.AsyncClient, control: httpx.AsyncClient,
                   sandbox_urls: dict[str, str], state: DemoState, duration_s: float) -> int:
    give_up = time.monotonic() + SETTLE_TIMEOUT_S
    payments = await _all_payments(api)
    while any(p["status"] == "processing" for p in payments) and time.monotonic() < give_up:
        await asyncio.sleep(1.0)  # reconciliation settles them from the providers' records
        payments = await _all_payments(api)
    charges = await fetch_ledgers(control, sandbox_urls)
    reported = [Reported(p["id"], p["status"], p.get("provider"), p["amount"]) for p in payments]
    violations = invariant_violations(reported, charges)
    known = {p["id"] for p in payments}
    violations += [f"{ref}: charged, but the orchestrator has no such payment" for ref in charges if ref not in known]

    answers = state.answers
    by_status = Counter(p["status"] for p in payments)
    failed_by_code = Counter((p.get("failure") or {}).get("code") or "unknown" for p in payments
                             if p["status"] == "failed")
    unanswered = Counter(a.code for a in answers if a.status == "error")
    failovers = sum(a.failed_over for a in answers)
    retries = sum(a.retries for a in answers)
    with_override = sum(1 for a in answers if a.overrides)
    table = provider_table()
    fees: dict[str, float] = defaultdict(float)
    per_provider: Counter = Counter()
    for found in charges.values():
        for charge in found:
            fees[charge["currency"]] += fee_minor(table, charge["provider"], charge["region"].upper(), charge["amount"])
            per_provider[charge["provider"]] += 1
    charged = sum(len(found) for found in charges.values())

    lines = ["", f"Summary: {duration_s:g} s at {state.rate:g} payments/s",
             f"  payments taken: {len(payments)} (sent {state.sent})",
             f"  succeeded: {by_status['succeeded']} ({_pct(by_status['succeeded'], len(payments))})",
             f"  failed: {by_status['failed']}" + _by_cause(failed_by_code)]
    if by_status["processing"]:
        lines.append(f"  still processing: {by_status['processing']}")
    if unanswered:
        lines.append("  requests without a payment answer: " + ", ".join(f"{c} {n}" for c, n in unanswered.items()))
    lines += [f"  failovers: {failovers} payments moved to another provider within their request; "
              f"retries at the same provider: {retries}",
              f"  payments routed under the operator's override: {with_override}",
              "  charges by provider: " + ", ".join(f"{p} {per_provider[p]}" for p in ("stripe", "adyen", "braintree")),
              "  fees paid: " + ", ".join(f"{c} {v / 10 ** exponent(c):,.2f}" for c, v in sorted(fees.items()))]
    if violations:
        lines.append(f"  money invariant: BROKEN ({len(violations)} problems), e.g.:")
        lines += [f"    {v}" for v in violations[:10]]
    else:
        lines.append(f"  money invariant: holds. {charged} charges in the three sandbox ledgers for "
                     f"{by_status['succeeded']} succeeded payments; no payment charged twice, none charged "
                     "when failed.")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    example = next((a.payment_id for a in answers if a.failed_over and a.payment_id), None)
    if endpoint:
        service = os.environ.get("OTEL_SERVICE_NAME", "payment-orchestrator")
        lines.append(f"  traces: one per payment, sent by OTLP to {endpoint} as service `{service}`; find one by "
                     f"its tag payment.id" + (f", e.g. payment.id={example} (a failover)" if example else "") +
                     " (Jaeger: http://127.0.0.1:16686).")
    else:
        lines.append("  traces: set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4318 for a local Jaeger) "
                     "to get one trace per payment: routing decision, each provider attempt, retries, failovers.")
    for line in lines:
        console.print(line, markup=False)
    return 1 if violations else 0


def _by_cause(counts: Counter) -> str:
    return (": " + ", ".join(f"{code} {n}" for code, n in counts.most_common())) if counts else ""


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"

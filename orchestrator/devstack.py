"""A local topology on loopback: `serve` processes on free ports, pointed at sandbox gateways.

Used by the tests, the benchmarks, the demo and the gauntlet. Every process started here is stopped
by its owner (`ServerProcess.stop`), with SIGTERM first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import uuid
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SANDBOX_URL_ENV = {"stripe": "ORCH_SANDBOX_STRIPE_URL", "adyen": "ORCH_SANDBOX_ADYEN_URL",
                   "braintree": "ORCH_SANDBOX_BRAINTREE_URL"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def orchestrator_env(database_url: str, sandbox_urls: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment for an orchestrator process: this one's, less any ORCH_ settings, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_DATABASE_URL"] = database_url
    for name, url in sandbox_urls.items():
        env[SANDBOX_URL_ENV[name]] = url
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str]) -> dict:
    """Run `orchestrator ARGS` and return the one JSON object it prints."""
    done = subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"orchestrator {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


@dataclass
class ServerProcess:
    process: subprocess.Popen
    base_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout_s: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def start_server(env: dict[str, str], log_dir: Path, *, extra_args: tuple[str, ...] = ("--no-migrate",),
                 ready_timeout_s: float = 30.0) -> ServerProcess:
    """Start `orchestrator serve` on a free port and wait until it answers /healthz."""
    port = free_port()
    log_path = Path(log_dir) / f"serve-{port}.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--host", "127.0.0.1", "--port", str(port),
             *extra_args], env=env, cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path, env)
    give_up = time.monotonic() + ready_timeout_s
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=0.5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"serve did not become ready:\n{server.log()}")


DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def wait_ready(client: httpx.AsyncClient, timeout_s: float = 30.0) -> None:
    """Wait until the `serve` behind `client` answers /readyz with 200 (routing data loaded)."""
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/readyz", timeout=2)).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("the orchestrator did not become ready")


def postgres_admin(admin_url: str, sql: str) -> None:
    """Run one statement outside any transaction; in a thread of its own, so callers may have a loop."""
    import asyncpg

    from orchestrator.kit.db import asyncpg_dsn

    async def execute() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(admin_url),
                                           timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, execute()).result()


@contextlib.contextmanager
def scratch_postgres_database(admin_url: str = DEFAULT_POSTGRES_URL, prefix: str = "orch_scratch") -> Iterator[str]:
    """An empty database beside the one `admin_url` names, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    postgres_admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        postgres_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

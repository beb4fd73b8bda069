"""Start the three sandbox gateways as separate processes, and stop them.

    with start_sandboxes(seed=0) as sandboxes:
        sandboxes.urls["stripe"]  # "http://127.0.0.1:PORT"

Each listening socket is bound here, in the parent, and handed to its child, so a port is never
lost to a race between choosing it and listening on it. Children exit by themselves when the
parent process disappears.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Sequence

from sandbox_gateways import PROVIDERS
from sandbox_gateways.common.gateway import DEFAULT_TIMEOUT_HOLD_S

STATUS_PATH = "/api/v2/summary.json"


class SandboxStartError(RuntimeError):
    """A sandbox process did not come up."""


class SandboxProcesses:
    """The running sandbox gateways: `urls` by provider name, `stop()` to end them all."""

    def __init__(self, urls: dict[str, str], processes: dict[str, subprocess.Popen]):
        self.urls = urls
        self.processes = processes
        atexit.register(self.stop)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes.values())

    def dead(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate every process, wait, and kill what is still running. Safe to call twice."""
        atexit.unregister(self.stop)
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    process.terminate()
                except ProcessLookupError:  # pragma: no cover - raced with its exit
                    pass
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> "SandboxProcesses":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + STATUS_PATH, timeout=1.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_sandboxes(
    host: str = "127.0.0.1",
    base_port: int | None = None,
    seed: int | None = 0,
    timeout_hold_s: float = DEFAULT_TIMEOUT_HOLD_S,
    providers: Sequence[str] = PROVIDERS,
    startup_timeout_s: float = 20.0,
) -> SandboxProcesses:
    """Start one process per provider (Stripe on `base_port`, Adyen on +1, Braintree on +2; each on
    a free port when `base_port` is None), wait until each answers its status endpoint, and return
    them. Raises `OSError` when a port is taken and `SandboxStartError` when a process fails."""
    sockets: dict[str, socket.socket] = {}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for index, provider in enumerate(providers):
            port = 0 if base_port is None else base_port + PROVIDERS.index(provider)
            sockets[provider] = _bind(host, port)
        urls: dict[str, str] = {}
        for provider in providers:
            sock = sockets[provider]
            fd = sock.fileno()
            command = [
                sys.executable, "-m", "sandbox_gateways.serve",
                "--provider", provider, "--host", host, "--fd", str(fd),
                "--timeout-hold", repr(float(timeout_hold_s)), "--parent-pid", str(os.getpid()),
            ]
            if seed is not None:
                command += ["--seed", str(seed)]
            processes[provider] = subprocess.Popen(command, pass_fds=(fd,), stdin=subprocess.DEVNULL)
            urls[provider] = _url(host, sock.getsockname()[1])
    except BaseException:
        SandboxProcesses({}, processes).stop()
        raise
    finally:
        for sock in sockets.values():
            sock.close()
    sandboxes = SandboxProcesses(urls, processes)
    try:
        deadline = time.monotonic() + startup_timeout_s
        pending = dict(urls)
        while pending:
            dead = sandboxes.dead()
            if dead:
                raise SandboxStartError(f"sandbox process exited during startup: {', '.join(dead)}")
            for provider, url in list(pending.items()):
                if _ready(url):
                    del pending[provider]
            if pending:
                if time.monotonic() > deadline:
                    raise SandboxStartError(f"sandbox not ready in {startup_timeout_s} s: {', '.join(pending)}")
                time.sleep(0.05)
    except BaseException:
        sandboxes.stop()
        raise
    return sandboxes

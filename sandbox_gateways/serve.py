"""Run one sandbox gateway: `python -m sandbox_gateways.serve --provider stripe --port 8101`."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Sequence

import uvicorn

from sandbox_gateways import PROVIDERS
from sandbox_gateways.common.gateway import DEFAULT_TIMEOUT_HOLD_S


def create_app(provider: str, seed: int | None = None, timeout_hold_s: float = DEFAULT_TIMEOUT_HOLD_S) -> Any:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    module = importlib.import_module(f"sandbox_gateways.{provider}.app")
    return module.create_app(seed=seed, timeout_hold_s=timeout_hold_s)


def _watch_parent(server: uvicorn.Server, parent_pid: int) -> None:
    """Stop when the process that started us is gone (so a crashed test leaks nothing)."""
    while not server.should_exit:
        if os.getppid() != parent_pid:
            server.should_exit = True
            return
        time.sleep(0.5)


def _exit_cleanly(signum: int, frame: Any) -> None:
    # uvicorn re-raises the signal it handled after its graceful shutdown; end with status 0.
    sys.exit(0)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox_gateways.serve", description=__doc__)
    parser.add_argument("--provider", required=True, choices=PROVIDERS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="port to listen on")
    parser.add_argument("--fd", type=int, default=None, help="an already bound, listening socket to serve on")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault draws (default: random)")
    parser.add_argument(
        "--timeout-hold", type=float, default=DEFAULT_TIMEOUT_HOLD_S,
        help="seconds a timeout fault holds the response (default 30)",
    )
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this parent process is gone")
    args = parser.parse_args(argv)
    if (args.port is None) == (args.fd is None):
        parser.error("give exactly one of --port and --fd")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    app = create_app(args.provider, seed=args.seed, timeout_hold_s=args.timeout_hold)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port or 0,
        access_log=False,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        server_header=False,
    )
    server = uvicorn.Server(config)
    sockets = None
    if args.fd is not None:
        sockets = [socket.socket(fileno=args.fd)]
    if args.parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(server, args.parent_pid), daemon=True).start()
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    server.run(sockets=sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m sandbox_gateways`: run the three sandbox gateways in the foreground.

Stripe listens on --base-port, Adyen on --base-port + 1 and Braintree on --base-port + 2, each in
its own process. SIGTERM or SIGINT stops all of them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Sequence

from sandbox_gateways.common.gateway import DEFAULT_TIMEOUT_HOLD_S
from sandbox_gateways.runner import start_sandboxes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox_gateways", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--base-port", type=int, default=8101)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timeout-hold", type=float, default=DEFAULT_TIMEOUT_HOLD_S,
        help="seconds a timeout fault holds the response (default 30)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        sandboxes = start_sandboxes(
            host=args.host, base_port=args.base_port, seed=args.seed, timeout_hold_s=args.timeout_hold
        )
    except OSError as exc:
        print(f"sandbox gateways: cannot start: {exc}", file=sys.stderr)
        return 1
    print(
        "sandbox gateways ready: " + ", ".join(f"{name} {url}" for name, url in sandboxes.urls.items()),
        file=sys.stderr,
        flush=True,
    )
    status = 0
    try:
        while not stop.wait(0.5):
            dead = sandboxes.dead()
            if dead and not stop.wait(0.3):
                print(f"sandbox gateways: process exited: {', '.join(dead)}", file=sys.stderr)
                status = 1
                break
    finally:
        sandboxes.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())

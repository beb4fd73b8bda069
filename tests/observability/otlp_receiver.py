"""A tiny OTLP/HTTP trace receiver: POST /v1/traces with an ExportTraceServiceRequest (protobuf).

In a test it runs in a thread and keeps every span, decoded into plain dicts. As a process
(`python -m tests.observability.otlp_receiver --port N`) it keeps the request bodies and counts their
spans only when stopped, so it takes as little CPU as possible from what a benchmark measures.
"""

from __future__ import annotations

import argparse
import gzip
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def any_value(value) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def attributes(items) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in items}


@dataclass
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status_code: int
    start_ns: int
    end_ns: int
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""


def decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(ReceivedSpan(
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(), name=span.name, kind=KINDS.get(span.kind, "?"),
                    attributes=attributes(span.attributes),
                    events=[(e.name, attributes(e.attributes)) for e in span.events],
                    status_code=span.status.code, start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
                    resource=resource, scope=scope_spans.scope.name))
    return spans


def count(body: bytes) -> int:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)


class OtlpReceiver:
    """Start with `start()`, stop with `stop()`; `spans` holds what arrived, `url` is the OTLP endpoint."""

    def __init__(self, *, keep: bool = True, port: int = 0) -> None:
        self.keep = keep
        self.spans: list[ReceivedSpan] = []
        self.span_count = 0
        self.requests = 0
        self.raw: list[bytes] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver._received(body)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)

    def _received(self, body: bytes) -> None:
        if self.keep:
            spans = decode(body)
            with self._lock:
                self.raw.append(body)
                self.spans.extend(spans)
                self.span_count += len(spans)
                self.requests += 1
        else:
            with self._lock:
                self.raw.append(body)
                self.requests += 1

    def start(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "OtlpReceiver":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def wait_for(self, ready: Callable[[list[ReceivedSpan]], bool], timeout_s: float = 15.0) -> list[ReceivedSpan]:
        give_up = time.monotonic() + timeout_s
        while True:
            spans = self.snapshot()
            if ready(spans):
                return spans
            if time.monotonic() > give_up:
                raise AssertionError(f"spans did not arrive in {timeout_s} s; have {[s.name for s in spans]}")
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description="Count OTLP/HTTP spans; prints the total on SIGTERM.")
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    import signal
    import sys

    receiver = OtlpReceiver(keep=False, port=args.port)

    def stop(*_args) -> None:
        threading.Thread(target=receiver.server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening {receiver.url}", file=sys.stderr, flush=True)
    receiver.server.serve_forever()
    print(sum(count(body) for body in receiver.raw), flush=True)


if __name__ == "__main__":
    main()

"""JSON lines on stderr, one object per record, with the trace and span ids of the current span.

    {"ts": "2026-12-04T12:00:00.123Z", "level": "WARNING", "logger": "orchestrator.payments",
     "message": "failover stripe -> adyen in EU after transient", "trace_id": "4bf9...", "span_id": "00f0...",
     "event": "failover", "payment_id": "pay_...", "from_provider": "stripe", ...}

Fields passed with `extra=` are written as top-level keys, so events can be filtered without parsing
the message. Logs never go to stdout: the CLI prints its results there.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from opentelemetry import trace

# Attributes every LogRecord has; anything else on a record came from `extra=` and is written out.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


_CHATTY = ("httpx", "httpcore", "apscheduler")


def _timestamp(created: float) -> str:
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the root logger; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that log every request or job run at INFO (a line per payment) speak up only when asked.
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)

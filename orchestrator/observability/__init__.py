"""Traces, metrics and logs: set up once per app, fed by the code that decides.

`Telemetry` (in `telemetry.py`) is what the payment path, the reconciler and the breakers talk to;
`tracing.py` sets the OpenTelemetry SDK up from the standard `OTEL_*` variables, `metrics.py` owns
the Prometheus registry of one app, `logging.py` writes JSON lines with trace and span ids.
"""

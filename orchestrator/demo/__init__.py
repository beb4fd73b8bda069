"""`orchestrator demo`: watch an outage being routed around live, on embedded defaults.

See `run.py` for what it starts and `incident.py` for the script it plays.
"""

from orchestrator.demo.run import run_demo

__all__ = ["run_demo"]

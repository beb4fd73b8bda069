"""Print the OpenAPI schema: `python -m orchestrator.openapi > docs/openapi.json`."""

import json
import sys

from orchestrator.app import create_app


def schema() -> dict:
    return create_app().openapi()


if __name__ == "__main__":
    json.dump(schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")

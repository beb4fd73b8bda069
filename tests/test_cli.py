"""The CLI's machine-readable output: one JSON object on stdout, logs on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.fixtures.processes import PROJECT_ROOT


def cli(args: list[str], database_url: str) -> subprocess.CompletedProcess:
    env = {"ORCH_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)


def test_db_upgrade_then_merchant_and_admin_token_print_one_json_object(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    assert cli(["db", "upgrade"], url).returncode == 0

    merchant = cli(["merchant", "create", "Acme"], url)
    assert merchant.returncode == 0, merchant.stderr
    body = json.loads(merchant.stdout)
    assert set(body) == {"id", "api_key"} and body["api_key"]

    token = cli(["admin-token", "create", "oncall"], url)
    assert token.returncode == 0, token.stderr
    assert json.loads(token.stdout)["name"] == "oncall"

    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as connection:
        stored = repr(connection.execute("SELECT * FROM merchants").fetchall()) + \
            repr(connection.execute("SELECT * FROM admin_tokens").fetchall())
    assert body["api_key"] not in stored  # only hashes are kept
    assert json.loads(token.stdout)["token"] not in stored


def test_a_bad_provider_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "providers.yaml"
    bad.write_text("providers:\n  stripe:\n    adapter: paypal\n")
    env = {"ORCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "ORCH_PROVIDERS_FILE": str(bad)}
    done = subprocess.run([sys.executable, "-c", "from orchestrator.config import Settings; Settings().providers"],
                          env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode != 0
    assert "providers.yaml" in done.stderr and "adapter" in done.stderr

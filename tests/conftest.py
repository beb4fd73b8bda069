"""Shared fixtures. End-to-end fixtures start real processes on free loopback ports and stop them."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.database import fresh_postgres_database
from tests.fixtures.processes import orchestrator_env, run_cli, start_server

# Provider read timeout for e2e servers; the sandboxes hold "timed out" responses longer than this.
E2E_READ_TIMEOUT_S = "1.5"
SANDBOX_TIMEOUT_HOLD_S = 6.0
ADMIN_TOKEN = "adm_test_bootstrap_token"


def pytest_collection_modifyitems(config, items):
    """Tests marked `last` (the money invariant over everything the suite did) run at the very end."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "last: run after every other test")


@pytest.fixture(scope="session")
def sandboxes():
    from sandbox_gateways.runner import start_sandboxes

    gateways = start_sandboxes(host="127.0.0.1", base_port=None, seed=7, timeout_hold_s=SANDBOX_TIMEOUT_HOLD_S)
    try:
        yield gateways
    finally:
        gateways.stop()


@pytest.fixture(scope="session")
def database_url():
    from orchestrator.kit.migrate import upgrade

    with fresh_postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def server(database_url, sandboxes, tmp_path_factory):
    # Strict cost order (no random spread): these tests are about the payment path, and they place
    # faults at the provider that must be tried first. Routing's draw has its own tests.
    env = orchestrator_env(database_url, sandboxes.urls, ORCH_PROVIDER_READ_TIMEOUT_S=E2E_READ_TIMEOUT_S,
                           ORCH_ROUTING__FRESHNESS_SHARE="0", ORCH_ROUTING__TEMPERATURE="0.00001",
                           ORCH_ADMIN_TOKEN=ADMIN_TOKEN)
    process = start_server(env, tmp_path_factory.mktemp("logs"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def merchant(server) -> dict:
    return run_cli(["merchant", "create", "Acme Books"], server.env)


@pytest.fixture(scope="session")
def other_merchant(server) -> dict:
    return run_cli(["merchant", "create", "Globex"], server.env)


@pytest.fixture
async def api(server, merchant):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {merchant['api_key']}"}) as client:
        yield client


@pytest.fixture
async def other_api(server, other_merchant):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {other_merchant['api_key']}"}) as client:
        yield client


@pytest.fixture
async def admin_api(server):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield client


@pytest.fixture(autouse=True)
def _clear_sandbox_faults(request):
    """Faults set by one test never leak into the next (the ledgers are kept for the invariant)."""
    yield
    if "sandboxes" in request.fixturenames:
        gateways = request.getfixturevalue("sandboxes")
        for url in gateways.urls.values():
            httpx.delete(f"{url}/_sandbox/faults", timeout=5)

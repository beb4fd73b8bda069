from datetime import datetime, timezone


def test_a_provider_turning_healthy_on_thin_evidence_starts_its_recovery():
    from orchestrator.health.poller import HealthPoller
    from orchestrator.routing.models import RoutingTableRow

    poller = HealthPoller.__new__(HealthPoller)
    poller.unhealthy_error_rate = 0.1
    poller.min_calls = 20
    now = datetime(2026, 12, 4, tzinfo=timezone.utc)
    sick = RoutingTableRow(provider="stripe", region="EU", status_page="operational", error_rate=0.9)
    fine = RoutingTableRow(provider="stripe", region="EU", status_page="operational", error_rate=0.0,
                           recovering_since=None)
    # A few clean calls after an outage: explore before full weight.
    assert poller._recovering_since(sick, "operational", 0.0, 5, now) == now
    assert poller._recovering_since(fine, "operational", 0.0, 5, now) is None
    assert poller._recovering_since(fine, "operational", 0.5, 50, now) is None
    # Enough clean calls of our own (its breaker let traffic through again): no holding back.
    assert poller._recovering_since(sick, "operational", 0.0, 40, now) is None
    exploring = RoutingTableRow(provider="stripe", region="EU", status_page="operational", error_rate=0.0,
                                recovering_since=now)
    assert poller._recovering_since(exploring, "operational", 0.01, 25, now) is None
    assert poller._recovering_since(exploring, "operational", 0.01, 8, now) == now
    # The status page alone counts only without observations.
    assert poller._recovering_since(RoutingTableRow(provider="s", region="EU", status_page="major_outage",
                                                    error_rate=None), "operational", None, 0, now) == now


async def test_observations_are_folded_in_every_run_and_status_pages_read_at_their_own_interval(tmp_path, monkeypatch):
    from orchestrator.config import Settings
    from orchestrator.health.leader import LeaderLease
    from orchestrator.health.poller import HealthPoller
    from orchestrator.kit.db import create_engine, create_sessionmaker
    from orchestrator.kit.migrate import upgrade
    from orchestrator.providers.base import ComponentStatus
    from orchestrator.routing.repository import RoutingRepository
    from tests.fixtures.sync import in_own_thread

    database_url = f"sqlite+aiosqlite:///{tmp_path / 'health.db'}"
    in_own_thread(upgrade, database_url)
    settings = Settings(database_url=database_url)
    reads = []

    class StatusPage:
        async def fetch_status(self, url, timeout):
            reads.append(url)
            return {"EU": ComponentStatus.DEGRADED_PERFORMANCE}

    clock = [1000.0]
    monkeypatch.setattr("orchestrator.health.poller.time.monotonic", lambda: clock[0])
    engine = create_engine(database_url)
    try:
        poller = HealthPoller(create_sessionmaker(engine), {name: StatusPage() for name in ("stripe", "adyen", "braintree")},
                              settings.providers, LeaderLease(database_url), observation_window_s=60,
                              unhealthy_error_rate=0.1, min_calls=20, status_timeout_s=1, status_interval_s=5)
        providers = len(settings.providers.providers)
        versions = []
        for _ in range(5):  # one run a second, as the scheduler does
            assert await poller.run_once()
            async with create_sessionmaker(engine)() as session:
                versions.append(await RoutingRepository(session).version())
            clock[0] += 1.0
        assert len(reads) == providers  # pages read once in the first five seconds
        assert versions == sorted(set(versions))  # but the table was written at every run
        assert await poller.run_once()
        assert len(reads) == 2 * providers
        async with create_sessionmaker(engine)() as session:
            rows = await RoutingRepository(session).rows()
        assert {row.status_page for row in rows if row.region == "EU"} == {"degraded_performance"}
    finally:
        await engine.dispose()

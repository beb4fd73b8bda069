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

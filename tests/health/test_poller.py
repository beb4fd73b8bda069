from datetime import datetime, timezone

from orchestrator.health.poller import observe, p99


def test_observations_count_only_provider_faults_as_errors():
    attempts = [("stripe", "EU", "succeeded", None, 100.0)] * 6 + \
               [("stripe", "EU", "declined", "hard_decline", 90.0)] * 2 + \
               [("stripe", "EU", "error", "transient", 10.0), ("stripe", "EU", "ambiguous", "ambiguous", 4000.0),
                ("adyen", "EU", "error", "config_error", 5.0)]
    observed = observe(attempts)
    calls, error_rate, latency = observed[("stripe", "EU")]
    assert calls == 10 and error_rate == 0.2  # declines are calls, not errors
    assert latency == 4000.0
    assert observed[("adyen", "EU")][1] == 0.0  # our own configuration error is not the provider's fault


def test_p99():
    assert p99([]) is None
    assert p99([float(i) for i in range(1, 101)]) == 100.0
    assert p99([5.0]) == 5.0


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

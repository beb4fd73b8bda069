"""The scenario format: every shipped file loads; bad files get errors that name the file and field."""

from __future__ import annotations

import textwrap

import pytest

from orchestrator.gauntlet import SCENARIO_DIR, ScenarioError, default_scenarios, load_scenario
from orchestrator.gauntlet.traffic import plan_traffic

GOOD = """
name: tiny
traffic:
  rate: 10
  duration: 20
  markets:
    - {country: DE, currency: EUR, weight: 2}
    - {country: US, currency: USD}
  tokens: {pm_card_visa: 9, pm_card_declined: 1}
baseline: {latency_ms: 10}
timeline:
  - {at: 5, provider: stripe, region: eu, fault: {error_rate: 1.0}}
  - {at: 8, provider: stripe, region: EU, fault: {status_page: major_outage}}
  - {at: 12, provider: stripe, region: EU, clear: true}
  - {at: 14, provider: all, region: US, fault: {latency_ms: 2500}}
"""


def write(tmp_path, text: str, name: str = "scenario.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(tmp_path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert str(path) in message  # the file is named
    return message


def test_every_shipped_scenario_loads_and_has_a_fault():
    paths = default_scenarios()
    names = {p.stem for p in paths}
    assert {"regional-outage", "brownout", "latency-spike", "ambiguous-timeouts", "flapping",
            "status-page-lies", "region-blackout", "slow-recovery"} <= names
    assert "ci-short" not in names  # the CI scenario is run by the tests, not by default
    for path in paths + [SCENARIO_DIR / "ci-short.yaml"]:
        scenario = load_scenario(path)
        assert scenario.name == path.stem
        assert scenario.faults().windows(scenario.regions), f"{path.name} has no fault window"


def test_a_good_file_and_its_timeline(tmp_path):
    scenario = load_scenario(write(tmp_path, GOOD))
    faults = scenario.faults()
    assert scenario.regions == ["EU", "US"]
    assert faults.state_at("stripe", "EU", 4.9)["error_rate"] == 0
    assert faults.state_at("stripe", "EU", 9)["error_rate"] == 1.0  # the page change keeps the error rate
    assert faults.state_at("stripe", "EU", 9)["status_page"] == "major_outage"
    assert faults.state_at("stripe", "EU", 12)["latency_ms"] == 10  # clear: back to the baseline
    windows = {(w.provider, w.region): w for w in faults.windows(scenario.regions)}
    eu = windows[("stripe", "EU")]
    assert (eu.start, eu.end, eu.cleared, eu.alternative) == (5, 12, True, True)
    us = windows[("adyen", "US")]  # every US provider slow from 14 s: nowhere to go, never cleared
    assert (us.start, us.end, us.cleared, us.alternative) == (14, 20, False, False)
    assert faults.has_slow_provider()


def test_the_traffic_is_seeded_and_follows_the_weights(tmp_path):
    scenario = load_scenario(write(tmp_path, GOOD))
    first, again, other = plan_traffic(scenario, 1), plan_traffic(scenario, 1), plan_traffic(scenario, 2)
    assert first == again and first != other
    assert 120 < len(first) < 280  # Poisson arrivals at 10/s over 20 s
    assert all(0 <= p.at < 20 for p in first) and [p.at for p in first] == sorted(p.at for p in first)
    assert {p.region for p in first} == {"EU", "US"}
    assert sum(p.country == "DE" for p in first) > sum(p.country == "US" for p in first)
    assert all(p.currency == {"DE": "EUR", "US": "USD"}[p.country] for p in first)


@pytest.mark.parametrize("text, expected", [
    ("traffic: {rate: 0, duration: 10, markets: [{country: DE, currency: EUR}]}",
     "traffic.rate: Input should be greater than 0"),
    ("traffic: {rate: 5, duration: 10, markets: []}", "traffic.markets: List should have at least 1 item"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: BR, currency: BRL}]}",
     "traffic.markets[0].country: country BR is in no region"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUX}]}",
     "traffic.markets[0].currency: EUX is not an ISO 4217 currency"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUR}], tokens: {pm_card_gold: 1}}",
     "unknown test token 'pm_card_gold'"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUR}], amounts: {min: 900, max: 100}}",
     "traffic.amounts: max (100) is below min (900)"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUR}]}\n"
     "timeline: [{at: 1, provider: paypal, region: EU, clear: true}]",
     "timeline[0].provider: unknown provider 'paypal'"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUR}]}\n"
     "timeline: [{at: 1, provider: stripe, region: LATAM, clear: true}]",
     "timeline[0].region: unknown region 'LATAM'"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUR}]}\n"
     "timeline: [{at: 1, provider: stripe, region: EU, fault: {error_rate: 1.5}}]",
     "timeline[0].fault.error_rate: Input should be less than or equal to 1"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUR}]}\n"
     "timeline: [{at: 1, provider: stripe, region: EU, fault: {error_rte: 0.5}}]",
     "timeline[0].fault.error_rte: Extra inputs are not permitted"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUR}]}\n"
     "timeline: [{at: 1, provider: stripe, region: EU}]",
     "timeline[0]: give exactly one of `fault` (a fault body) or `clear: true`"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUR}]}\n"
     "timeline: [{at: 11, provider: stripe, region: EU, clear: true}]",
     "timeline[0].at (11) is after the end of the traffic (10 s)"),
    ("traffic: {rate: 5, duration: 10, markets: [{country: DE, currency: EUR}]}\n"
     "timeline: [{at: 1, provider: stripe, region: EU, fault: {status_page: sunny}}]",
     "timeline[0].fault.status_page: Input should be 'operational'"),
    ("trafic: {rate: 5}", "trafic: Extra inputs are not permitted"),
    ("timeline: []", "traffic: Field required"),
])
def test_bad_files_name_the_field_and_the_problem(tmp_path, text, expected):
    assert expected in problems_of(tmp_path, text)


def test_every_problem_of_a_file_is_listed(tmp_path):
    message = problems_of(tmp_path, """
        traffic: {rate: -1, duration: 0, markets: [{country: DE, currency: EUR}]}
        timeline: [{at: 1, provider: nobody, region: EU, clear: true}]
    """)
    assert "traffic.rate" in message and "traffic.duration" in message and "timeline[0].provider" in message


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    assert "not valid YAML" in problems_of(tmp_path, "traffic: {rate: [1, 2")
    assert "expected a mapping" in problems_of(tmp_path, "- just a list")


def test_the_cli_reports_bad_files_and_exits_2(tmp_path):
    import subprocess
    import sys

    from orchestrator.devstack import PROJECT_ROOT

    bad = write(tmp_path, "traffic: {rate: 5, duration: 10, markets: [{country: XX, currency: EUR}]}", "bad.yaml")
    done = subprocess.run([sys.executable, "-m", "orchestrator", "gauntlet", str(bad), "--out", str(tmp_path / "out")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "bad.yaml is not a valid scenario" in done.stderr and "traffic.markets[0].country" in done.stderr
    unknown = subprocess.run([sys.executable, "-m", "orchestrator", "gauntlet", str(bad), "--routers", "static,magic"],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "magic" in unknown.stderr

from pathlib import Path

import pytest

from orchestrator.config import DEFAULT_PROVIDERS_FILE, ProviderFileError, Settings, load_provider_table


def test_default_provider_file_targets_the_sandbox_on_its_default_ports(monkeypatch):
    for name in ("STRIPE", "ADYEN", "BRAINTREE"):
        monkeypatch.delenv(f"ORCH_SANDBOX_{name}_URL", raising=False)
    table = load_provider_table(DEFAULT_PROVIDERS_FILE)
    assert [p.name for p in table.providers] == ["stripe", "adyen", "braintree"]
    endpoint = table.get("stripe").endpoint("EU")
    assert endpoint.base_url == "http://127.0.0.1:8101/eu"
    assert endpoint.credentials["secret_key"].startswith("sk_test_")
    assert "sk_test_" not in repr(endpoint)


def test_sandbox_urls_and_credentials_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ORCH_SANDBOX_ADYEN_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("ORCH_ADYEN_API_KEY", "live-key")
    adyen = load_provider_table(DEFAULT_PROVIDERS_FILE).get("adyen")
    endpoint = adyen.endpoint("APAC")
    assert endpoint.base_url == "http://127.0.0.1:9999/apac"
    assert endpoint.credentials["api_key"] == "live-key"
    assert endpoint.merchant_account == "SandboxMerchantAPAC"


def test_compliance_filters_by_region_and_currency():
    table = load_provider_table(DEFAULT_PROVIDERS_FILE)
    assert [p.name for p in table.compliant("EU", "EUR")] == ["stripe", "adyen", "braintree"]
    assert [p.name for p in table.compliant("APAC", "JPY")] == ["stripe", "adyen"]
    assert table.compliant("EU", "BRL") == []


def test_fee_per_region_overrides_the_providers_fee():
    stripe = load_provider_table(DEFAULT_PROVIDERS_FILE).get("stripe")
    assert stripe.fee_in("EU").for_amount(10_000) == pytest.approx(160)
    assert stripe.fee_in("US").for_amount(10_000) == pytest.approx(320)


@pytest.mark.parametrize("content, message", [
    ("providers: []", "mapping"),
    ("providers:\n  x:\n    adapter: stripe\n", "status_url"),
    ("providers:\n  x:\n    adapter: stripe\n    status_url: ${ORCH_UNSET_FOR_TEST}\n", "ORCH_UNSET_FOR_TEST"),
    (":\n- [", "cannot read"),
])
def test_bad_provider_files_are_clear_errors(tmp_path: Path, content, message):
    path = tmp_path / "providers.yaml"
    path.write_text(content)
    with pytest.raises(ProviderFileError, match=message):
        load_provider_table(path)


def test_settings_read_the_orch_prefix(monkeypatch):
    monkeypatch.setenv("ORCH_PAYMENT_DEADLINE_S", "7.5")
    monkeypatch.setenv("ORCH_ADMIN_TOKEN", "secret-admin")
    settings = Settings()
    assert settings.payment_deadline_s == 7.5
    assert "secret-admin" not in repr(settings)

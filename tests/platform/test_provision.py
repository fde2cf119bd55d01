"""``dos-adapters provision`` against the broker double, a fake QuantumLeap and a context server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from platform_support import ContextServer, FakeQuantumLeap, write_config

from adapters.platform.commands import provision
from adapters.platform.provision import subscription_id
from adapters.testing import BrokerDouble

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
TYPES = ["OffStreetParking", "WasteContainer", "IndoorEnvironmentObserved"]
NOTIFY = "http://quantumleap:8668/v2/notify"


def config(tmp_path: Path, broker: BrokerDouble, context_url: str) -> Path:
    return write_config(tmp_path / "dos.toml", broker={"url": broker.url, "context": context_url})


def run(cfg: Path, quantumleap: FakeQuantumLeap, *extra: str, notify: str = NOTIFY) -> Result:
    args = ["--config", str(cfg), "--notify-url", notify, "--quantumleap-url", quantumleap.url]
    for tenant in ("dortmund", "schwerte"):
        args += ["--tenant", tenant]
    for entity_type in TYPES:
        args += ["--type", entity_type]
    return CliRunner().invoke(provision, [*args, *extra], catch_exceptions=False)


def writes(broker: BrokerDouble) -> list[str]:
    return [f"{r.method} {r.path}" for r in broker.requests if r.method in WRITE_METHODS]


@pytest.fixture
def cfg(tmp_path: Path, broker: BrokerDouble, context_server: ContextServer) -> Path:
    return config(tmp_path, broker, f"{context_server.url}/dos-adapters.jsonld")


def test_first_run_creates_tenants_and_one_subscription_per_type_and_tenant(
    cfg: Path, broker: BrokerDouble, quantumleap: FakeQuantumLeap, context_server: ContextServer
) -> None:
    result = run(cfg, quantumleap)

    assert result.exit_code == 0, result.output
    assert "tenant dortmund: does not exist yet" in result.output
    assert "done: 6 created, 0 replaced" in result.output
    assert broker.tenants() == {"dortmund", "schwerte"}
    posts = [r for r in broker.requests if r.method == "POST"]
    assert len(posts) == 6
    for request in posts:
        assert request.path == "/ngsi-ld/v1/subscriptions"
        assert request.headers["Content-Type"] == "application/json"
        assert f"<{context_server.url}/dos-adapters.jsonld>" in request.headers["Link"]
        body = request.json()
        tenant = request.headers["NGSILD-Tenant"]
        (entity,) = body["entities"]
        assert body["id"] == subscription_id(tenant, entity["type"])
        assert body["notification"] == {
            "format": "normalized",
            "endpoint": {"uri": NOTIFY, "accept": "application/json"},
        }
    assert {(r.headers["NGSILD-Tenant"], r.json()["entities"][0]["type"]) for r in posts} == {
        (t, e) for t in ("dortmund", "schwerte") for e in TYPES
    }
    # The checks ran before anything was written: context fetched, QuantumLeap asked.
    assert [r.path for r in context_server.requests] == ["/dos-adapters.jsonld"]
    assert [r.path for r in quantumleap.requests] == ["/version"]


def test_second_run_writes_nothing(cfg: Path, broker: BrokerDouble, quantumleap: FakeQuantumLeap) -> None:
    assert run(cfg, quantumleap).exit_code == 0
    before = len(broker.requests)

    result = run(cfg, quantumleap)

    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output
    assert result.output.count("unchanged") == 6
    assert not [r for r in broker.requests[before:] if r.method in WRITE_METHODS]


def test_dry_run_prints_the_plan_and_writes_nothing(
    cfg: Path, broker: BrokerDouble, quantumleap: FakeQuantumLeap
) -> None:
    result = run(cfg, quantumleap, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "dry run: 6 subscription(s) to create or replace; nothing written" in result.output
    assert result.output.count("  create ") == 6
    assert writes(broker) == []
    assert broker.tenants() == set()


def test_a_subscription_with_other_settings_is_replaced_under_the_same_id(
    cfg: Path, broker: BrokerDouble, quantumleap: FakeQuantumLeap
) -> None:
    assert run(cfg, quantumleap).exit_code == 0
    before = len(broker.requests)

    result = run(cfg, quantumleap, notify="http://ql.internal:8668/v2/notify")

    assert result.exit_code == 0, result.output
    assert "done: 0 created, 6 replaced" in result.output
    new = [f"{r.method} {r.path}" for r in broker.requests[before:] if r.method in WRITE_METHODS]
    assert len(new) == 12 and new[0].startswith("DELETE /ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:")
    stored = broker._service._tenants["dortmund"].subscriptions  # the double keeps what Orion-LD would
    assert {s["notification"]["endpoint"]["uri"] for s in stored.values()} == {"http://ql.internal:8668/v2/notify"}
    assert set(stored) == {subscription_id("dortmund", t) for t in TYPES}


def test_unreachable_context_stops_before_any_write(
    tmp_path: Path, broker: BrokerDouble, quantumleap: FakeQuantumLeap, context_server: ContextServer
) -> None:
    cfg = config(tmp_path, broker, f"{context_server.url}/missing.jsonld")

    result = run(cfg, quantumleap)

    assert result.exit_code == 1
    assert "@context" in result.stderr and "404" in result.stderr
    assert broker.requests == []


def test_unreachable_quantumleap_stops_before_any_write(
    cfg: Path, broker: BrokerDouble, quantumleap: FakeQuantumLeap
) -> None:
    result = run(cfg, quantumleap, "--quantumleap-url", "http://127.0.0.1:9")  # the last one given wins

    assert result.exit_code == 1
    assert "QuantumLeap http://127.0.0.1:9 unreachable" in result.stderr
    assert writes(broker) == []


def test_default_tenants_and_types_come_from_the_enabled_adapters(
    tmp_path: Path, broker: BrokerDouble, quantumleap: FakeQuantumLeap, context_server: ContextServer
) -> None:
    cfg = write_config(
        tmp_path / "dos.toml",
        broker={"url": broker.url, "context": f"{context_server.url}/dos-adapters.jsonld"},
        adapters={"parking": {"tenant": "schwerte"}},
    )
    args = ["--config", str(cfg), "--quantumleap-url", quantumleap.url]

    result = CliRunner().invoke(provision, args, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert broker.tenants() == {"schwerte"}
    assert [r.json()["entities"] for r in broker.requests if r.method == "POST"] == [[{"type": "OffStreetParking"}]]


def test_every_repeats_and_touches_the_health_file(
    cfg: Path, broker: BrokerDouble, quantumleap: FakeQuantumLeap, monkeypatch: pytest.MonkeyPatch
) -> None:
    naps: list[float] = []

    class Stop(Exception):
        pass

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            raise Stop

    monkeypatch.setattr("adapters.platform.commands.time.sleep", sleep)
    health = cfg.parent / "provisioned"

    with pytest.raises(Stop):
        run(cfg, quantumleap, "--every", "60", "--health-file", str(health))

    assert naps == [60, 60]
    assert health.is_file()
    assert len([r for r in broker.requests if r.method == "POST"]) == 6  # the later rounds found everything


def test_the_example_in_broker_config_is_what_provision_sends() -> None:
    from platform_support import ROOT

    from adapters.platform.provision import DEFAULT_NOTIFY_URL, subscription

    example = ROOT / "broker-config" / "quantumleap" / "subscription.example.json"
    assert json.loads(example.read_text(encoding="utf-8")) == subscription(
        "dortmund", "OffStreetParking", DEFAULT_NOTIFY_URL
    )

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from adapters.core.metrics import REGISTRY, HealthServer, metrics


@pytest.fixture
def last_success() -> dict[str, float]:
    return {}


@pytest.fixture
def server(last_success: dict[str, float]) -> Iterator[HealthServer]:
    state: dict[str, float | None] = {"oldest": None}
    health = HealthServer("127.0.0.1", 0, intervals={"parking": 0.1}, last_success=last_success,
                          oldest_pending=lambda: state["oldest"], stuck_after=60, grace=0.5)
    health.state = state  # type: ignore[attr-defined]
    health.start()
    yield health
    health.stop()


def test_metrics_endpoint_serves_prometheus_text(server: HealthServer) -> None:
    metrics.delivered.inc(3)
    response = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    line = next(x for x in response.text.splitlines() if x.startswith("dos_delivered_entities_total "))
    assert float(line.split()[1]) >= 3


def test_health_is_ok_while_polls_succeed_and_fails_when_they_stop(
    server: HealthServer, last_success: dict[str, float]
) -> None:
    url = f"http://127.0.0.1:{server.port}/health"
    assert requests.get(url, timeout=5).status_code == 200  # within the start-up grace
    time.sleep(0.6)
    late = requests.get(url, timeout=5)
    assert late.status_code == 503
    assert "parking: no successful poll" in json.loads(late.text)["problems"][0]
    last_success["parking"] = time.time()
    assert requests.get(url, timeout=5).status_code == 200


def test_health_fails_when_the_outbox_is_stuck(server: HealthServer, last_success: dict[str, float]) -> None:
    last_success["parking"] = time.time()
    server.state["oldest"] = 61.0  # type: ignore[attr-defined]
    response = requests.get(f"http://127.0.0.1:{server.port}/health", timeout=5)
    assert response.status_code == 503
    assert json.loads(response.text)["problems"] == ["outbox: entities have waited 61 s for the broker"]
    assert requests.get(f"http://127.0.0.1:{server.port}/nope", timeout=5).status_code == 404


def test_healthz_is_liveness_only_and_readyz_is_what_health_checks(
    server: HealthServer, last_success: dict[str, float]
) -> None:
    base = f"http://127.0.0.1:{server.port}"
    last_success["parking"] = time.time()
    assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
    server.state["oldest"] = 61.0  # type: ignore[attr-defined]  # the outbox is stuck: not ready, yet alive
    for path in ("/readyz", "/health"):
        response = requests.get(base + path, timeout=5)
        assert response.status_code == 503
        assert json.loads(response.text)["problems"] == ["outbox: entities have waited 61 s for the broker"]
    alive = requests.get(f"{base}/healthz", timeout=5)
    assert alive.status_code == 200
    assert json.loads(alive.text) == {"alive": True}
    assert requests.get(f"{base}/readyz?verbose=1", timeout=5).status_code == 503  # a query string is ignored


def _sample(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(name + " ") or x.startswith(name + "{"))
    return float(line.rsplit(" ", 1)[1])


def test_source_staleness_gauge_per_adapter_is_fresh_at_each_scrape(last_success: dict[str, float]) -> None:
    health = HealthServer(
        "127.0.0.1", 0, intervals={"parking": 60}, last_success=last_success, oldest_pending=lambda: None,
        push_adapters=["lorawan"],
    )
    health.started = time.time() - 100
    last_success["parking"] = time.time() - 30
    health.start()
    try:
        text = requests.get(f"http://127.0.0.1:{health.port}/metrics", timeout=5).text
    finally:
        health.stop()
    assert 29 <= _sample(text, 'dos_source_staleness_seconds{adapter="parking"}') < 40
    assert 99 <= _sample(text, 'dos_source_staleness_seconds{adapter="lorawan"}') < 110  # nothing since start


def test_broker_latency_histogram_observes_each_delivery_attempt(tmp_path) -> None:
    from adapters.core.broker import BrokerClient
    from adapters.core.outbox import Outbox
    from adapters.core.sinks import BrokerSink, DeadLetterFile
    from adapters.testing import BrokerDouble

    def count() -> float:
        return REGISTRY.get_sample_value("dos_broker_upsert_duration_seconds_count") or 0.0

    def total() -> float:
        return REGISTRY.get_sample_value("dos_broker_upsert_duration_seconds_sum") or 0.0

    before, before_sum = count(), total()
    with BrokerDouble() as double:
        double.delay_seconds = 0.2
        sink = BrokerSink(
            BrokerClient(double.url, context_url="http://context.test/c.jsonld", timeout=5),
            Outbox(tmp_path / "outbox.sqlite"),
            DeadLetterFile(tmp_path / "dead.ndjson"),
        )
        try:
            entity = {"id": "urn:ngsi-ld:OffStreetParking:dortmund:1", "type": "OffStreetParking"}
            sink.write("dortmund", "parking", [entity])
            assert sink.deliver(force=True).delivered == 1
        finally:
            sink.close()
    assert count() == before + 1
    assert total() - before_sum >= 0.2


def test_outbox_age_gauge_is_read_at_each_scrape(server: HealthServer) -> None:
    url = f"http://127.0.0.1:{server.port}/metrics"
    assert _sample(requests.get(url, timeout=5).text, "dos_outbox_oldest_age_seconds") == 0.0
    server.state["oldest"] = 42.5  # type: ignore[attr-defined]
    assert _sample(requests.get(url, timeout=5).text, "dos_outbox_oldest_age_seconds") == 42.5

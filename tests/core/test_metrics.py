from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from adapters.core.metrics import HealthServer, metrics


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

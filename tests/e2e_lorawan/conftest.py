"""Fixtures of the LoRaWAN push-intake end-to-end tests; the machinery is in ``lorawan_e2e_support``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lorawan_e2e_support import AdapterProcess, Mosquitto, Publisher, Site

from adapters.testing import BrokerDouble


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One mosquitto per test module, generous limits (no in-flight cap, 100,000 queued per client).

    Tests use their own client ids (``client_id``), so sessions left by earlier tests do not mix in.
    """
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def make_broker() -> Iterator[Callable[[], BrokerDouble]]:
    """Start NGSI-LD broker doubles; every one is stopped after the test."""
    started: list[BrokerDouble] = []

    def make() -> BrokerDouble:
        double = BrokerDouble().start()
        started.append(double)
        return double

    try:
        yield make
    finally:
        for double in started:
            double.stop()


@pytest.fixture
def broker(make_broker: Callable[[], BrokerDouble]) -> BrokerDouble:
    return make_broker()


@pytest.fixture
def client_id(request: pytest.FixtureRequest) -> str:
    """An MQTT client id of this test alone (persistent sessions outlive the adapter process)."""
    return "dos-e2e-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[-60:]


@pytest.fixture
def start_adapter() -> Iterator[Callable[..., AdapterProcess]]:
    """Start ``dos-adapters run`` for a site; whatever a test left running is killed after it."""
    started: list[AdapterProcess] = []

    def start(site: Site, **kwargs: Any) -> AdapterProcess:
        process = AdapterProcess(site, **kwargs)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()


@pytest.fixture
def make_publisher() -> Iterator[Callable[..., Publisher]]:
    """QoS 1 publishers (the network server's side); all disconnected after the test."""
    started: list[Publisher] = []

    def make(port: int, **kwargs: Any) -> Publisher:
        publisher = Publisher(port, **kwargs)
        started.append(publisher)
        return publisher

    try:
        yield make
    finally:
        for publisher in started:
            publisher.close()

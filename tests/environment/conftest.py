"""Fixtures of the environment adapters' end-to-end tests; the machinery is in ``environment_support``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from environment_support import FakeSources, Site

from adapters.testing import BrokerDouble


@pytest.fixture
def sources() -> Iterator[FakeSources]:
    """Fake PEGELONLINE, sensor.community and Bright Sky on 127.0.0.1, serving the recorded payloads."""
    server = FakeSources().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker() -> Iterator[BrokerDouble]:
    """The strict Orion-LD double."""
    double = BrokerDouble().start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A deployment directory; the CLI runs with it as working directory."""
    return Site(tmp_path / "site")

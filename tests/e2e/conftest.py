"""Fixtures of the end-to-end tests; the machinery itself is in ``e2e_support``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ArrivalWatchingDouble, Cli, FakeOpendatasoft, Site


@pytest.fixture
def source() -> Iterator[FakeOpendatasoft]:
    """The fake open-data portal serving the recorded parking payload, on 127.0.0.1."""
    server = FakeOpendatasoft().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_broker() -> Iterator[Callable[..., ArrivalWatchingDouble]]:
    """Start broker doubles with the given options; every one is stopped after the test."""
    started: list[ArrivalWatchingDouble] = []

    def make(**kwargs: Any) -> ArrivalWatchingDouble:
        double = ArrivalWatchingDouble(**kwargs).start()
        started.append(double)
        return double

    try:
        yield make
    finally:
        for double in started:
            double.stop()


@pytest.fixture
def broker(make_broker: Callable[..., ArrivalWatchingDouble]) -> ArrivalWatchingDouble:
    """The strict Orion-LD double with default limits (1 MiB, 1000 entities, no auth)."""
    return make_broker()


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A deployment directory (config, outbox, out/) in tmp_path; the CLI runs with it as cwd."""
    return Site(tmp_path / "site")


@pytest.fixture
def cli(site: Site) -> Iterator[Cli]:
    """The installed ``dos-adapters`` script; processes left running are killed after the test."""
    runner = Cli(site.root)
    try:
        yield runner
    finally:
        runner.close()

"""Fixtures of the platform tests: broker double, fake QuantumLeap, context server, isolated env."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from platform_support import ContextServer, FakeQuantumLeap

from adapters.testing import BrokerDouble


@pytest.fixture(autouse=True)
def _no_dos_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read DOS_* variables; the developer's shell must not leak into the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("DOS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def broker() -> Iterator[BrokerDouble]:
    double = BrokerDouble().start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def quantumleap() -> Iterator[FakeQuantumLeap]:
    fake = FakeQuantumLeap()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def context_server() -> Iterator[ContextServer]:
    server = ContextServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()

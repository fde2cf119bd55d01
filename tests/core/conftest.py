"""Shared fixtures for the core tests: a recording HTTP server on 127.0.0.1 and a port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from http_recorder import RecordingServer


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    server.start()
    try:
        yield server
    finally:
        server.shutdown()
    assert not server.unexpected, f"requests nobody expected: {server.unexpected}"


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"

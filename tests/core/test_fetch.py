"""adapters.core.fetch: SourceFetcher against a local HTTP server (conditional requests, retries, limits)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from http_recorder import Recorded, RecordingServer, Reply

from adapters.core.fetch import USER_AGENT, Fetched, FetchError, SourceFetcher

PAYLOAD = b'[{"name": "Parkhaus S\xc3\xbcd", "frei": 12}]'
ETAG = '"v1-abc"'
MODIFIED = "Sun, 22 Nov 2026 10:00:00 GMT"


def body(fetched: Fetched) -> bytes:
    """The spooled body, read and freed."""
    assert fetched.payload is not None
    try:
        return fetched.payload.read()
    finally:
        fetched.close()


@pytest.fixture
def fetcher() -> Iterator[SourceFetcher]:
    made = SourceFetcher(retries=1, backoff=0)
    yield made
    made.close()


def test_200_returns_the_payload_and_validators(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    http_server.script(Reply(200, PAYLOAD, {"ETag": ETAG, "Last-Modified": MODIFIED}))
    url = http_server.url + "/parkhaeuser.json?limit=100"
    fetched = fetcher.get(url, timeout=5)
    assert fetched.url == url
    assert fetched.status == 200
    assert body(fetched) == PAYLOAD
    assert fetched.validators == {"If-None-Match": ETAG, "If-Modified-Since": MODIFIED}
    (request,) = http_server.requests
    assert request.method == "GET"
    assert request.target == "/parkhaeuser.json?limit=100"
    assert request.headers["user-agent"] == USER_AGENT


def test_without_validators_nothing_is_remembered(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    http_server.script(Reply(200, PAYLOAD), Reply(200, PAYLOAD))
    first = fetcher.get(http_server.url + "/a", timeout=5)
    first.close()
    assert first.validators == {}
    fetcher.remember(first)
    fetcher.get(http_server.url + "/a", timeout=5).close()
    assert "if-none-match" not in http_server.requests[1].headers
    assert "if-modified-since" not in http_server.requests[1].headers


def test_validators_are_sent_back_only_after_remember(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    url = http_server.url + "/data"
    http_server.script(
        Reply(200, PAYLOAD, {"ETag": ETAG, "Last-Modified": MODIFIED}),
        Reply(200, PAYLOAD, {"ETag": ETAG, "Last-Modified": MODIFIED}),
        Reply(304),
    )
    first = fetcher.get(url, timeout=5)
    first.close()
    # not yet remembered (say the payload was not committed): the next poll re-reads everything
    fetcher.get(url, timeout=5).close()
    assert "if-none-match" not in http_server.requests[1].headers
    assert "if-modified-since" not in http_server.requests[1].headers

    fetcher.remember(first)
    again = fetcher.get(url, timeout=5)
    assert http_server.requests[2].headers["if-none-match"] == ETAG
    assert http_server.requests[2].headers["if-modified-since"] == MODIFIED
    assert again.status == 304
    assert again.payload is None
    assert again.validators == {"If-None-Match": ETAG, "If-Modified-Since": MODIFIED}


def test_validators_are_per_url(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    http_server.script(Reply(200, PAYLOAD, {"ETag": ETAG}), Reply(200, b"other"))
    one = fetcher.get(http_server.url + "/one", timeout=5)
    one.close()
    fetcher.remember(one)
    fetcher.get(http_server.url + "/two", timeout=5).close()
    assert "if-none-match" not in http_server.requests[1].headers


def test_5xx_is_retried_then_fetch_error(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    http_server.script(Reply(503, b"maintenance"), Reply(503, b"maintenance"))
    with pytest.raises(FetchError, match="503") as error:
        fetcher.get(http_server.url + "/data", timeout=5)
    assert http_server.url in str(error.value)
    assert len(http_server.requests) == 2  # the first try and one retry


def test_5xx_then_200_succeeds(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    http_server.script(Reply(502, b"bad gateway"), Reply(200, PAYLOAD))
    assert body(fetcher.get(http_server.url + "/data", timeout=5)) == PAYLOAD
    assert len(http_server.requests) == 2


def test_404_fails_without_retry(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    http_server.script(Reply(404, b"gone"))
    with pytest.raises(FetchError, match="404"):
        fetcher.get(http_server.url + "/data", timeout=5)
    assert len(http_server.requests) == 1


def test_larger_than_max_bytes_is_refused(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    http_server.script(Reply(200, b"x" * 300_000))
    with pytest.raises(FetchError, match="larger than 100000 bytes"):
        fetcher.get(http_server.url + "/big", timeout=5, max_bytes=100_000)


def test_exactly_max_bytes_is_accepted(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    http_server.script(Reply(200, b"y" * 1000))
    assert body(fetcher.get(http_server.url + "/fits", timeout=5, max_bytes=1000)) == b"y" * 1000


def test_a_large_body_is_spooled_to_a_file(http_server: RecordingServer) -> None:
    """Beyond spool_bytes the body waits in a temporary file, so a large export does not sit in memory."""
    large = b"[" + b",".join(b'{"n": %d}' % n for n in range(20_000)) + b"]"
    http_server.script(Reply(200, large), Reply(200, PAYLOAD))
    spooling = SourceFetcher(retries=0, spool_bytes=4096)
    try:
        fetched = spooling.get(http_server.url + "/big", timeout=5)
        small = spooling.get(http_server.url + "/small", timeout=5)
        # SpooledTemporaryFile tells whether it went to disk only by this attribute
        assert fetched.payload._rolled  # type: ignore[union-attr]
        assert not small.payload._rolled  # type: ignore[union-attr]
        assert body(fetched) == large
        assert body(small) == PAYLOAD
        assert fetched.payload is not None and fetched.payload.closed
    finally:
        spooling.close()


def test_timeout_is_a_fetch_error(fetcher: SourceFetcher, http_server: RecordingServer) -> None:
    def slow(_request: Recorded) -> Reply:
        http_server.stop.wait(2.0)
        return Reply(200, PAYLOAD)

    http_server.responder = slow
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"Timeout|timed out"):
        fetcher.get(http_server.url + "/slow", timeout=0.2)
    assert time.monotonic() - started < 1.5
    assert 1 <= len(http_server.requests) <= 2  # read timeouts of a GET may be retried once


def test_connection_refused_is_a_fetch_error(fetcher: SourceFetcher, closed_port_url: str) -> None:
    with pytest.raises(FetchError, match="ConnectionError"):
        fetcher.get(closed_port_url + "/data", timeout=2)

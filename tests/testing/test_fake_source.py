"""The fake HTTP source the end-to-end tests poll: conditional requests and the scripted faults.

The e2e suites use it through adapters that hide the answers (a 304 is "not modified", a 429 is a
wait); these tests pin down what it sends, so a fault test cannot pass by a fault never happening.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message

import pytest

from adapters.testing.fake_source import FakeSource, Fault, etag_of

PATH = "/data.json"
DOCUMENT = b'{"stations": [1, 2, 3]}'


@pytest.fixture
def source() -> Iterator[FakeSource]:
    with FakeSource({PATH: DOCUMENT}) as server:
        yield server


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def test_serves_the_document_with_a_strong_etag_and_answers_if_none_match_with_304(source: FakeSource) -> None:
    status, headers, body = _get(source.url(PATH, "a=1"))
    assert (status, body, headers["ETag"], headers["Content-Type"]) == (
        200,
        DOCUMENT,
        etag_of(DOCUMENT),
        "application/json",
    )

    status, headers, body = _get(source.url(PATH), {"If-None-Match": f'"other", {etag_of(DOCUMENT)}'})
    assert (status, body, headers["ETag"]) == (304, b"", etag_of(DOCUMENT))

    assert [(r.method, r.path, r.query, r.status) for r in source.requests] == [
        ("GET", PATH, "a=1", 200),
        ("GET", PATH, "", 304),
    ]
    assert source.requests[1].headers["If-None-Match"].endswith(etag_of(DOCUMENT))


def test_unknown_path_is_404(source: FakeSource) -> None:
    status, _, body = _get(source.url("/nothing"))
    assert (status, json.loads(body)["status"]) == (404, 404)


def test_scripted_faults_come_in_order_then_the_document_again(source: FakeSource) -> None:
    source.fail_next(
        PATH,
        Fault(503, {"Retry-After": "2"}),
        Fault(429, {"Retry-After": "1"}),
        Fault(304),
        Fault(truncate=True),
        Fault(delay=0.3),
    )
    answers = [_get(source.url(PATH)) for _ in range(6)]

    assert [status for status, _, _ in answers] == [503, 429, 304, 200, 200, 200]
    assert [headers["Retry-After"] for _, headers, _ in answers[:2]] == ["2", "1"]
    assert answers[2][2] == b""  # a forced 304, although the request had no If-None-Match
    assert answers[3][2] == DOCUMENT[: len(DOCUMENT) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(answers[3][2])
    assert answers[4][2] == answers[5][2] == DOCUMENT
    delayed, previous = source.requests[4], source.requests[3]
    assert delayed.at - previous.at >= 0.3


def test_a_function_document_is_called_once_per_served_request_not_for_a_scripted_error() -> None:
    served: list[int] = []

    def feed() -> bytes:
        served.append(len(served))
        return json.dumps({"poll": len(served)}).encode()

    with FakeSource({PATH: feed}) as source:
        source.fail_next(PATH, Fault(503))
        answers = [_get(source.url(PATH)) for _ in range(3)]

    assert [status for status, _, _ in answers] == [503, 200, 200]
    assert served == [0, 1]  # the 503 did not use up a state of the feed
    assert [json.loads(body) for _, _, body in answers[1:]] == [{"poll": 1}, {"poll": 2}]


def test_after_stop_the_port_refuses_connections() -> None:
    source = FakeSource({PATH: DOCUMENT}).start()
    url = source.url(PATH)
    source.stop()
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(url, timeout=5)

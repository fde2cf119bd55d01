"""adapters.core.opendatasoft: records read one at a time read exactly as json.loads reads the whole document."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.core import opendatasoft
from adapters.core.adapter import PayloadError
from adapters.core.opendatasoft import iter_records

SAMPLE = {
    "total_count": 2,
    "results": [
        {"id": "107394", "name": "Parkhaus Süd", "frei": 12, "geo": {"lon": 7.46, "lat": 51.51}, "tags": None},
        {"id": "1e-7", "zahl": 1.5e-7, "riesig": 123456789012345678901234567890, "null": -0.0, "€": "😀"},
    ],
}


def whole(payload: bytes) -> list[Any]:
    """What the records were before streaming: json.loads and the shape check."""
    document = json.loads(payload)
    records = document.get("results") if isinstance(document, dict) else document
    assert isinstance(records, list)
    return records


@pytest.fixture(params=[1, 7, 64 * 1024], ids=["window-1", "window-7", "window-64k"])
def window(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Tiny windows put every value boundary at a window's end at least once."""
    monkeypatch.setattr(opendatasoft, "READ_BYTES", request.param)
    return int(request.param)


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps(SAMPLE).encode(),
        json.dumps(SAMPLE, indent=2, ensure_ascii=False).encode(),
        json.dumps(SAMPLE["results"]).encode(),
        json.dumps(SAMPLE).encode("utf-16"),
        b"\xef\xbb\xbf" + json.dumps(SAMPLE).encode(),
        b'{"results": [], "total_count": 0}',
        b" [ ] ",
        b'{"a": {"results": 5}, "results": [1, "x", null, [2]], "b": 1e400}',
        b'[{"a": NaN, "b": -Infinity}]',
    ],
    ids=["explore", "indented", "export", "utf-16", "bom", "empty", "empty-export", "nested-and-odd", "nan"],
)
def test_the_same_records_as_json_loads(payload: bytes, window: int) -> None:
    assert list(iter_records(payload)) == whole(payload)
    assert list(iter_records(io.BytesIO(payload))) == whole(payload)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"", "not JSON: Expecting value at character 0"),
        (b"<html>maintenance</html>", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"results": [1] x', "not JSON: Expecting ',' or '}'"),
        (b"[1] [2]", "not JSON: Extra data"),
        (b'{"results": 5}', "expected an Opendatasoft records response"),
        (b'{"total_count": 3}', "expected an Opendatasoft records response"),
        (b'"text"', "expected an Opendatasoft records response"),
        (b'[{"name": "S\xfcd"}]', "not JSON: 'utf-8' codec can't decode"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_unreadable_payloads_are_a_payload_error(payload: bytes, needle: str, window: int) -> None:
    with pytest.raises(PayloadError, match=needle):
        list(iter_records(payload))


def test_a_cut_payload_yields_the_records_before_the_cut_then_fails() -> None:
    records = [{"id": str(n), "frei": n} for n in range(100)]
    payload = json.dumps({"total_count": 100, "results": records}).encode()
    read: list[Any] = []
    with pytest.raises(PayloadError, match="not JSON"):
        read.extend(iter_records(payload[: len(payload) // 2]))
    assert 40 < len(read) < 50
    assert read == records[: len(read)]


def test_a_lone_surrogate_escape_reads_as_the_replacement_character() -> None:
    payload = b'[{"name": "a\\ud800b", "\\udc00": ["\\ud83d\\ude00", "\\ud800"]}]'
    assert list(iter_records(payload)) == [{"name": "a\ufffdb", "\ufffd": ["\U0001f600", "\ufffd"]}]


@pytest.mark.parametrize(
    "odd",
    [
        b'{"a": NaN, "b": -Infinity, "c": 1e400}',
        b'{"big": 123456789012345678901234567890, "neg": -9223372036854775809, "u64": 18446744073709551616}',
        b'{"lone": "a\\ud800b", "pair": "\\ud83d\\ude00"}',
        b'{"nested": [{"x": 1}, {"y": [{"z": {}}]}], "s": "}, {", "t": "}]"}',
        b'{"dup": 1, "other": 2, "dup": 3}',
        b"[1, 2.5, -0.0, 1.5e-7]",
    ],
    ids=["nan-infinity", "beyond-64-bits", "surrogates", "braces-and-nesting", "duplicate-key", "not-an-object"],
)
def test_odd_records_among_plain_ones_read_as_json_loads_reads_them(odd: bytes, window: int) -> None:
    """A window's records are read in one go where that gives the same values: never around these."""
    plain = [json.dumps({"id": str(n), "frei": n, "geo": {"lon": 7.5, "lat": 51.5}}).encode() for n in range(30)]
    for records in ([*plain[:15], odd, *plain[15:]], [odd, *plain], [*plain, odd]):
        payload = b'{"total_count": 31, "results": [' + b", ".join(records) + b"]}"
        expected = whole(payload.replace(rb"\ud800", rb"\ufffd"))  # a lone surrogate reads as U+FFFD
        assert repr(list(iter_records(payload))) == repr(expected)  # repr: NaN is NaN, 1.0 is not 1


def test_the_error_names_the_character_in_the_whole_payload(window: int) -> None:
    payload = b'{"total_count": 1, "results": [{"id": 1}, {"id": 2,}]}'
    with pytest.raises(PayloadError, match=f"at character {payload.index(b',}') + 1}"):
        list(iter_records(payload))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), max_size=8),
    explore=st.booleans(),
    indent=st.sampled_from([None, 1]),
    ascii_only=st.booleans(),
    read_bytes=st.integers(min_value=1, max_value=40) | st.just(64 * 1024),
    cut=st.none() | st.floats(min_value=0, max_value=1),
)
def test_agrees_with_json_loads_on_any_document_and_any_cut(
    records: list[dict[str, Any]],
    explore: bool,
    indent: int | None,
    ascii_only: bool,
    read_bytes: int,
    cut: float | None,
) -> None:
    document: Any = {"total_count": len(records), "results": records} if explore else records
    payload = json.dumps(document, indent=indent, ensure_ascii=ascii_only).encode()
    if cut is not None:
        payload = payload[: int(len(payload) * cut)]
    original = opendatasoft.READ_BYTES
    opendatasoft.READ_BYTES = read_bytes
    try:
        read: list[Any] = []
        try:
            read.extend(iter_records(payload))
        except PayloadError:
            with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):
                whole(payload)
            assert read == records[: len(read)]
        else:
            assert read == whole(payload) == records
    finally:
        opendatasoft.READ_BYTES = original

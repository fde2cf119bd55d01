"""Properties of the small guards the parsers share, where a hypothesis strategy reaches more than mutation.

Derandomized with a bounded example count, so CI runs the same examples every time.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.core.adapter import PayloadError
from adapters.core.jsonpayload import load_json
from adapters.core.timecheck import EARLIEST, time_problem
from adapters.platform.spreadsheet import spreadsheet_safe
from adapters.testing.fuzz import FORMULAS, NASTY_TEXTS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
json_texts = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
).map(lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=300) | json_texts | st.sampled_from([b"[" * 5000, b'{"a":' * 3000, b'["\xed\xa0\x80"]']))
def test_load_json_returns_a_document_or_says_why_not(payload: bytes) -> None:
    try:
        document = load_json(payload)
    except PayloadError as error:
        reason = str(error)
    else:
        reason = ""
        # Whatever came out can be written as UTF-8 again: no lone surrogate left to fail later.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    assert reason == "" or reason.startswith("not JSON")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.datetimes(timezones=offsets),
    st.none() | st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
)
def test_time_problem_never_raises_and_passes_only_times_in_the_window(
    moment: datetime, received_at: datetime | None
) -> None:
    problem = time_problem(moment, received_at)
    if problem is None:
        utc = moment.astimezone(UTC)
        assert utc >= EARLIEST
        assert received_at is None or utc <= received_at + timedelta(hours=1)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.text()
    | st.sampled_from([*FORMULAS, *NASTY_TEXTS])
    | st.from_regex(r"[=+\-@][A-Za-z0-9(),.+\-]*", fullmatch=True)
)
def test_no_csv_cell_we_write_opens_as_a_formula(text: str) -> None:
    cell = spreadsheet_safe(text)
    assert cell in (text, "'" + text)
    if cell.startswith(FORMULA_STARTS):
        assert all(char in "+-0123456789.,eE" for char in cell), cell  # a plain number stays a number
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell])
    assert next(csv.reader(io.StringIO(buffer.getvalue(), newline=""))) == [cell]

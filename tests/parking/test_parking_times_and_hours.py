"""The parking normaliser's fast paths read the feed exactly as the plain parsers would."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from adapters.parking.dortmund_parkhaeuser import LOCAL_TIME, _observed_at, _opening_hours


@pytest.mark.parametrize(
    "stand",
    [
        "2024-05-14 10:15:42",
        " 2024-05-14 10:15:42 ",
        "2024-5-14 1:2:3",  # strptime accepts single digits; the fast path does not, the fallback does
        "2024-02-30 10:00:00",
        "2024-05-14T10:15:42",
        "2024-05-14 10:15",
        "Zur Zeit keine Verbindung zum Parkleitsystem",
        "",
        "\uff12\uff10\uff12\uff14-05-14 10:15:42",  # full-width digits, which strptime reads
    ],
)
def test_stand_is_read_like_strptime(stand: str) -> None:
    try:
        expected: datetime | None = datetime.strptime(stand.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=LOCAL_TIME)
    except ValueError:
        expected = None
    assert _observed_at({"stand": stand}) == expected


def test_zeitstempel_wins_over_stand() -> None:
    record = {"zeitstempel": "2024-05-14T08:15:42+00:00", "stand": "2024-05-14 11:00:00"}
    assert _observed_at(record) == datetime.fromisoformat("2024-05-14T08:15:42+00:00")


def _week(**days: Any) -> dict[str, Any]:
    return {day: "06:00 - 22:00" for day in ("montag", "dienstag", "mittwoch", "freitag")} | days


def test_opening_hours_of_records_with_different_schedules_differ() -> None:
    """The text is cached by the day texts: each schedule must still get its own."""
    assert _opening_hours(_week(donnerstag="06:00 - 22:00")) == "Mo-Fr 06:00-22:00"
    assert _opening_hours(_week(donnerst="06:00 - 22:00")) == "Mo-Fr 06:00-22:00"
    assert _opening_hours(_week()) == "Mo-We 06:00-22:00, Fr 06:00-22:00"
    assert _opening_hours(_week(donnerstag=None, donnerst="07:00 - 20:00")) == (
        "Mo-We 06:00-22:00, Th 07:00-20:00, Fr 06:00-22:00"
    )
    assert _opening_hours({"montag": "-", "dienstag": 5}) is None

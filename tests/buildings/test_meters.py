"""Meter readings: the counter rules (pure), the memory across polls (SQLite), the CSV reading."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.buildings import BuildingsAdapter
from adapters.buildings.meters import (
    MEDIA,
    SOURCE,
    UNITS,
    MeterMemory,
    MeterReading,
    MeterRecord,
    advance,
    parse_payload,
    read_reading,
    split_by_day,
)
from adapters.buildings.state import MeterState
from adapters.core.adapter import NormalizeContext
from adapters.core.normalize import normalize_payload
from adapters.core.validation import entity_problems
from adapters.testing.cases import adapter_settings

BERLIN = ZoneInfo("Europe/Berlin")
ELECTRICITY = next(m for m in MEDIA if m.key == "electricity")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def reading(
    at: str,
    value: float,
    *,
    serial: str | None = "S1",
    digits: int | None = None,
    kind: str = "regular",
    unit: str = "kwh",
) -> MeterReading:
    return MeterReading(
        point="P1",
        serial=serial,
        building="b1",
        label="Strom",
        medium=ELECTRICITY,
        unit=UNITS[unit],
        digits=digits,
        time=utc(at),
        value=value,
        kind=kind,  # type: ignore[arg-type]
    )


def feed(readings: list[MeterReading]) -> tuple[MeterMemory | None, list[Any]]:
    """Apply readings in order as the adapter does (no repeats); return the memory and every step."""
    memory: MeterMemory | None = None
    steps = []
    for item in readings:
        step = advance(memory, item, None, BERLIN)
        steps.append(step)
        if step.memory is not None:
            memory = step.memory
    return memory, steps


def days(steps: list[Any]) -> dict[str, float]:
    return {day.isoformat(): round(amount, 6) for step in steps for day, amount in step.completed}


# ------------------------------------------------------------------------------ split by day


def rounded(parts: list[tuple[date, float]]) -> list[tuple[date, float]]:
    return [(day, round(amount, 9)) for day, amount in parts]


def test_split_is_proportional_to_time_across_midnight() -> None:
    parts = split_by_day(90.0, utc("2024-11-04T18:00:00+01:00"), utc("2024-11-05T03:00:00+01:00"), BERLIN)
    assert rounded(parts) == [(date(2024, 11, 4), 60.0), (date(2024, 11, 5), 30.0)]


def test_split_knows_the_25_hour_autumn_day() -> None:
    # 27 Oct 2024 has 25 hours in Berlin; an interval from 26 Oct 00:00 to 28 Oct 00:00 is 49 hours.
    parts = split_by_day(49.0, utc("2024-10-26T00:00:00+02:00"), utc("2024-10-28T00:00:00+01:00"), BERLIN)
    assert rounded(parts) == [(date(2024, 10, 26), 24.0), (date(2024, 10, 27), 25.0)]


def test_split_knows_the_23_hour_spring_day() -> None:
    parts = split_by_day(47.0, utc("2024-03-30T00:00:00+01:00"), utc("2024-04-01T00:00:00+02:00"), BERLIN)
    assert rounded(parts) == [(date(2024, 3, 30), 24.0), (date(2024, 3, 31), 23.0)]


def test_split_of_nothing_is_empty() -> None:
    moment = utc("2024-11-04T00:00:00+01:00")
    assert split_by_day(0.0, moment, utc("2024-11-05T00:00:00+01:00"), BERLIN) == []
    assert split_by_day(5.0, moment, moment, BERLIN) == []


# ------------------------------------------------------------------------------ the counter


def test_the_first_reading_starts_the_count() -> None:
    memory, (step,) = feed([reading("2024-11-04T00:00:00+01:00", 100.0)])
    assert step.accepted and step.event == "first" and step.completed == ()
    assert memory is not None and memory.since == utc("2024-11-04T00:00:00+01:00").isoformat()


def test_a_day_is_complete_at_its_end_when_covered_from_its_start() -> None:
    _, steps = feed(
        [
            reading("2024-11-04T00:00:00+01:00", 100.0),
            reading("2024-11-04T12:00:00+01:00", 160.0),
            reading("2024-11-05T00:00:00+01:00", 200.0),
            reading("2024-11-05T06:00:00+01:00", 210.0),
        ]
    )
    assert days(steps) == {"2024-11-04": 100.0}
    assert [s.event for s in steps] == ["first", "delta", "delta", "delta"]


def test_the_first_partial_day_is_not_reported() -> None:
    _, steps = feed(
        [
            reading("2024-11-04T08:00:00+01:00", 100.0),
            reading("2024-11-05T00:00:00+01:00", 200.0),
            reading("2024-11-06T00:00:00+01:00", 260.0),
        ]
    )
    assert days(steps) == {"2024-11-05": 60.0}


def test_sparse_readings_complete_several_days_at_once() -> None:
    _, steps = feed([reading("2024-11-04T00:00:00+01:00", 0.0), reading("2024-11-07T00:00:00+01:00", 300.0)])
    assert days(steps) == {"2024-11-04": 100.0, "2024-11-05": 100.0, "2024-11-06": 100.0}


def test_rollover_with_known_digits() -> None:
    memory, steps = feed(
        [
            reading("2024-11-04T00:00:00+01:00", 999_950.0, digits=6),
            reading("2024-11-04T12:00:00+01:00", 999_980.0, digits=6),
            reading("2024-11-05T00:00:00+01:00", 12.0, digits=6),
        ]
    )
    assert steps[-1].event == "rollover"
    assert days(steps) == {"2024-11-04": 62.0}
    assert memory is not None and memory.value == 12.0


def test_a_small_decrease_is_no_rollover_even_with_digits() -> None:
    _, steps = feed(
        [
            reading("2024-11-04T00:00:00+01:00", 999_980.0, digits=6),
            reading("2024-11-04T06:00:00+01:00", 999_970.0, digits=6),
        ]
    )
    assert steps[-1].reason is not None and "negative delta -10 kWh" in steps[-1].reason


def test_negative_delta_is_rejected_naming_the_fixes() -> None:
    memory, steps = feed([reading("2024-11-04T00:00:00+01:00", 500.0), reading("2024-11-04T06:00:00+01:00", 20.0)])
    reason = steps[-1].reason
    assert reason is not None
    assert "below the last one, 500 kWh" in reason and "negative delta -480 kWh" in reason
    assert "Stellen" in reason and "register_digits" in reason
    assert memory is not None and memory.value == 500.0  # the baseline stays
    assert memory.candidate is not None and memory.candidate["value"] == 20.0


def test_a_glitch_is_skipped_and_the_day_stays_complete() -> None:
    _, steps = feed(
        [
            reading("2024-11-04T00:00:00+01:00", 500.0),
            reading("2024-11-04T06:00:00+01:00", 20.0),
            reading("2024-11-05T00:00:00+01:00", 620.0),
        ]
    )
    assert [s.accepted for s in steps] == [True, False, True]
    assert days(steps) == {"2024-11-04": 120.0}


def test_a_reset_is_recognised_when_the_next_reading_continues_from_the_rejected_one() -> None:
    memory, steps = feed(
        [
            reading("2024-11-04T00:00:00+01:00", 500.0),
            reading("2024-11-04T12:00:00+01:00", 520.0),
            reading("2024-11-05T00:00:00+01:00", 3.0),  # rejected, remembered
            reading("2024-11-05T12:00:00+01:00", 9.0),  # continues from 3: reset
            reading("2024-11-06T00:00:00+01:00", 14.0),
            reading("2024-11-07T00:00:00+01:00", 20.0),
        ]
    )
    assert [s.event for s in steps] == ["first", "delta", "", "reset", "delta", "delta"]
    # 4 Nov is part unmetered (12:00-24:00 lost with the reset): not reported; 5 Nov counts from the reset.
    assert days(steps) == {"2024-11-05": 11.0, "2024-11-06": 6.0}
    assert memory is not None and memory.since == utc("2024-11-05T00:00:00+01:00").isoformat()


def test_replacement_at_the_same_instant_keeps_the_day_complete() -> None:
    _, steps = feed(
        [
            reading("2024-11-04T00:00:00+01:00", 1000.0, serial="OLD"),
            reading("2024-11-04T10:00:00+01:00", 1200.0, serial="OLD", kind="removal"),
            reading("2024-11-04T10:00:00+01:00", 15.0, serial="NEW", kind="installation"),
            reading("2024-11-05T00:00:00+01:00", 315.0, serial="NEW"),
        ]
    )
    assert [s.event for s in steps] == ["first", "delta", "replacement", "delta"]
    assert days(steps) == {"2024-11-04": 500.0}


def test_replacement_with_a_gap_leaves_that_day_unreported() -> None:
    _, steps = feed(
        [
            reading("2024-11-04T00:00:00+01:00", 52000.0, serial="OLD"),
            reading("2024-11-04T09:00:00+01:00", 52010.0, serial="OLD"),
            reading("2024-11-04T12:00:00+01:00", 0.5, serial="NEW"),
            reading("2024-11-05T00:00:00+01:00", 8.5, serial="NEW"),
            reading("2024-11-06T00:00:00+01:00", 20.5, serial="NEW"),
        ]
    )
    assert days(steps) == {"2024-11-05": 12.0}


def test_installation_without_serial_numbers_is_a_replacement() -> None:
    _, steps = feed(
        [
            reading("2024-11-04T00:00:00+01:00", 900.0, serial=None),
            reading("2024-11-04T10:00:00+01:00", 0.0, serial=None, kind="installation"),
            reading("2024-11-04T12:00:00+01:00", 4.0, serial=None),
        ]
    )
    assert [s.event for s in steps] == ["first", "replacement", "delta"]


def test_units_convert_to_the_base_unit() -> None:
    _, steps = feed(
        [
            reading("2024-11-04T00:00:00+01:00", 1.5, unit="mwh"),
            reading("2024-11-05T00:00:00+01:00", 2.25, unit="mwh"),
        ]
    )
    assert days(steps) == {"2024-11-04": 750.0}


def test_repeats_and_conflicts() -> None:
    first = reading("2024-11-04T00:00:00+01:00", 100.0)
    memory = advance(None, first, None, BERLIN).memory
    assert advance(memory, first, 100.0, BERLIN).skipped
    conflict = advance(memory, reading("2024-11-04T00:00:00+01:00", 101.0), 100.0, BERLIN)
    assert conflict.reason is not None and "already applied with 100 kWh" in conflict.reason
    assert conflict.memory is None
    # The same instant restated without being in the store (e.g. an Ausbau row beside the regular one).
    assert advance(memory, reading("2024-11-04T00:00:00+01:00", 100.0, kind="removal"), None, BERLIN).skipped


def test_an_older_reading_is_rejected() -> None:
    memory = advance(None, reading("2024-11-04T12:00:00+01:00", 100.0), None, BERLIN).memory
    step = advance(memory, reading("2024-11-04T06:00:00+01:00", 90.0), None, BERLIN)
    assert step.reason is not None and "not newer than the last one applied" in step.reason


# ------------------------------------------------------------------------------ CSV and entities

HEADER = "Gebäude-ID;Zählpunkt;Zählernummer;Bezeichnung;Medium;Einheit;Ablesezeitpunkt;Zählerstand;Ablesegrund"


def csv(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode("utf-8")


def test_rows_are_applied_oldest_first_and_removal_before_installation() -> None:
    payload = csv(
        "b1;P1;NEW;Strom;Strom;kWh;04.11.2024 10:00;15,0;Zählerwechsel Einbau",
        "b1;P1;OLD;Strom;Strom;kWh;04.11.2024 10:00;1200,0;Zählerwechsel Ausbau",
        "b1;P1;OLD;Strom;Strom;kWh;04.11.2024 00:00;1000,0;",
    )
    records = parse_payload(payload)
    assert [r["Zählerstand"] for r in records] == ["1000,0", "1200,0", "15,0"]
    assert [r.last_of_point for r in records if isinstance(r, MeterRecord)] == [False, False, True]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"Ablesezeitpunkt": "04.11.2024 06:00"}, "2024-11-04T05:00:00+00:00"),
        ({"Ablesezeitpunkt": "2024-11-04T06:00:00+01:00"}, "2024-11-04T05:00:00+00:00"),
        ({"Ablesezeitpunkt": "2024-11-04T05:00:00Z"}, "2024-11-04T05:00:00+00:00"),
        ({"Datum": "04.11.2024", "Uhrzeit": "06:00"}, "2024-11-04T05:00:00+00:00"),
        ({"Ablesezeitpunkt": "04.07.2024 06:00"}, "2024-07-04T04:00:00+00:00"),
    ],
)
def test_reading_times(cells: dict[str, str], expected: str) -> None:
    row = {"Gebäude-ID": "b1", "Zählpunkt": "P1", "Medium": "Strom", "Einheit": "kWh", "Zählerstand": "1", **cells}
    assert read_reading(row, {}, BERLIN).time.isoformat() == expected


def run(payload: bytes, state: MeterState, tenant: str = "dortmund") -> Any:
    settings = adapter_settings(BuildingsAdapter, {"source": SOURCE.name})
    resources = BuildingsAdapter.open_resources(settings, base_dir=Path("."), persistent=False)
    resources.meters = state
    return normalize_payload(SOURCE, payload, NormalizeContext(tenant=tenant, settings=settings, resources=resources))


@pytest.fixture
def state(tmp_path: Path) -> Iterator[MeterState]:
    memory = MeterState(tmp_path / "meters.sqlite")
    yield memory
    memory.close()


def test_memory_carries_across_polls_and_overlap_is_skipped(state: MeterState, tmp_path: Path) -> None:
    first = run(
        csv("b1;P1;S1;Strom;Strom;kWh;04.11.2024 00:00;100,0;", "b1;P1;S1;Strom;Strom;kWh;04.11.2024 12:00;150,0;"),
        state,
    )
    assert [e["numValue"]["value"] for e in first.entities] == [150.0]
    state.commit()
    state.close()
    reopened = MeterState(tmp_path / "meters.sqlite")
    try:
        second = run(
            csv(
                "b1;P1;S1;Strom;Strom;kWh;04.11.2024 12:00;150,0;",  # repeated by the overlapping export
                "b1;P1;S1;Strom;Strom;kWh;05.11.2024 00:00;210,0;",
            ),
            reopened,
        )
        assert second.rejections == []
        daily = [e for e in second.entities if e["measurementType"]["value"] == "electricityDailyConsumption"]
        assert [(e["numValue"]["value"], e["dateObserved"]["value"]) for e in daily] == [
            (110.0, "2024-11-04T23:00:00Z")
        ]
        reopened.commit()
        third = run(csv("b1;P1;S1;Strom;Strom;kWh;04.11.2024 18:00;170,0;"), reopened)
        assert "not newer than the last one applied" in third.rejections[0].reason
    finally:
        reopened.close()


def test_rollback_forgets_what_was_not_delivered(state: MeterState) -> None:
    run(csv("b1;P1;S1;Strom;Strom;kWh;04.11.2024 00:00;100,0;"), state)
    state.rollback()
    assert state.memory("dortmund:P1") is None
    again = run(csv("b1;P1;S1;Strom;Strom;kWh;04.11.2024 00:00;100,0;"), state)
    assert len(again.entities) == 1  # not taken for a repeat


def test_old_readings_are_forgotten_after_keep_days(tmp_path: Path) -> None:
    memory = MeterState(tmp_path / "m.sqlite", keep_days=1)
    try:
        run(csv("b1;P1;S1;Strom;Strom;kWh;01.11.2024 00:00;100,0;"), memory)
        memory.commit()
        run(csv("b1;P1;S1;Strom;Strom;kWh;05.11.2024 00:00;200,0;"), memory)
        memory.commit()
        older = reading("2024-11-01T00:00:00+01:00", 100.0)
        assert memory.seen("dortmund:P1", older) is None
        newer = reading("2024-11-05T00:00:00+01:00", 200.0)
        assert memory.seen("dortmund:P1", newer) == 200.0
    finally:
        memory.close()


def test_a_rejected_last_row_still_sends_what_the_point_produced(state: MeterState) -> None:
    result = run(
        csv(
            "b1;P1;S1;Strom;Strom;kWh;04.11.2024 00:00;100,0;",
            "b1;P1;S1;Strom;Strom;kWh;05.11.2024 00:00;200,0;",
            "b1;P1;S1;Strom;Strom;kWh;05.11.2024 06:00;20,0;",  # glitch, the newest row
        ),
        state,
    )
    assert [e["id"].rsplit(":", 1)[1] for e in result.entities] == [
        "P1-electricityMeterReading",
        "P1-electricityDailyConsumption",
    ]
    assert result.entities[0]["numValue"]["value"] == 200.0
    assert len(result.rejections) == 1


def test_entities_conform_and_link_their_building(state: MeterState) -> None:
    result = run(
        csv(
            "gymnasium-an-der-schweizer-allee;P1;S1;Strom;Strom;kWh;04.11.2024 00:00;100,0;",
            "gymnasium-an-der-schweizer-allee;P1;S1;Strom;Strom;kWh;05.11.2024 00:00;200,0;",
        ),
        state,
    )
    assert result.entities and all(entity_problems(e) == [] for e in result.entities)
    for entity in result.entities:
        assert entity["refBuilding"] == {
            "type": "Relationship",
            "object": "urn:ngsi-ld:Building:dortmund:gymnasium-an-der-schweizer-allee",
        }
        assert isinstance(entity["numValue"]["value"], float)  # QuantumLeap: floats from the first row


def test_without_meter_state_every_row_is_rejected_with_the_reason() -> None:
    settings = adapter_settings(BuildingsAdapter, {"source": SOURCE.name})
    result = normalize_payload(
        SOURCE, csv("b1;P1;S1;Strom;Strom;kWh;04.11.2024 00:00;100,0;"), NormalizeContext("dortmund", settings)
    )
    assert "no meter state loaded" in result.rejections[0].reason


def test_a_wrong_timezone_fails_the_poll_at_open() -> None:
    settings = adapter_settings(BuildingsAdapter, {"source": SOURCE.name, "timezone": "Europe/Dortmund"})
    with pytest.raises(ValueError, match="not an IANA time zone"):
        BuildingsAdapter.open_resources(settings, base_dir=Path("."), persistent=False)

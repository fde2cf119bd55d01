"""Each input here crashed a parser or slipped an impossible time into an entity before its fix.

Named inputs, not generated ones: if one of these regresses, the failure says exactly which input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.airquality import AirqualityAdapter
from adapters.buildings import BuildingsAdapter
from adapters.buildings.geo import GeoError, geometry_from_geojson, geometry_from_wkt
from adapters.core.adapter import Adapter, NormalizeContext, PayloadError
from adapters.core.jsonpayload import load_json
from adapters.core.lorawan.uplinks import UplinkError, parse_chirpstack_v4
from adapters.core.normalize import normalize_payload
from adapters.core.opendatasoft import iter_records
from adapters.core.timecheck import time_problem
from adapters.lorawan import LorawanAdapter
from adapters.parking import ParkingAdapter
from adapters.testing.cases import adapter_settings
from adapters.waterlevel import WaterlevelAdapter
from adapters.weather import WeatherAdapter

RECEIVED = datetime(2024, 5, 14, 9, tzinfo=UTC)


def _normalised(adapter: type[Adapter], source_name: str, edit: Callable[[Any], None]) -> list[str]:
    """The rejection reasons for the adapter's sample with ``edit`` applied; no entity may be refused silently."""
    source = adapter.source(source_name)
    document = json.loads(adapter.sample_payload(source))
    edit(document)
    settings = adapter_settings(adapter, {"source": source_name})
    context = NormalizeContext(tenant="dortmund", settings=settings, received_at=RECEIVED)
    result = normalize_payload(source, json.dumps(document).encode(), context, origin="payload")
    return [rejection.reason for rejection in result.rejections]


def _first_level(station: dict[str, Any]) -> dict[str, Any]:
    series: dict[str, Any] = station["timeseries"][0]
    return series


@pytest.mark.parametrize(
    ("adapter", "source_name", "edit", "reason"),
    [
        # TypeError: unhashable type 'list' (the unit was looked up in a frozenset)
        (WaterlevelAdapter, "pegelonline", lambda d: _first_level(d[0]).update(unit=["cm"]), "unit ['cm']"),
        (
            WaterlevelAdapter,
            "pegelonline",
            lambda d: [_first_level(s)["currentMeasurement"].update(timestamp="9999-12-31T23:59:59+00:00") for s in d],
            "in the future",
        ),
        (
            WeatherAdapter,
            "brightsky",
            lambda d: d["weather"].update(timestamp="0001-01-01T00:00:00+14:00"),
            "out of range",
        ),
        (
            WeatherAdapter,
            "brightsky",
            lambda d: d["weather"].update(timestamp="1969-12-31T23:59:59+00:00"),
            "before 2000",
        ),
        (
            AirqualityAdapter,
            "sensor-community",
            lambda d: [reading.update(timestamp="2100-01-01 00:00:00") for reading in d],
            "in the future",
        ),
    ],
    ids=[
        "pegelonline-unit-list",
        "pegelonline-year-9999",
        "brightsky-year-1",
        "brightsky-1969",
        "sensor-community-2100",
    ],
)
def test_impossible_values_are_rejections_with_reasons(
    adapter: type[Adapter], source_name: str, edit: Callable[[Any], None], reason: str
) -> None:
    reasons = _normalised(adapter, source_name, edit)
    assert reasons, "the broken record must be rejected"
    assert all("internal error" not in text for text in reasons), reasons
    assert any(reason in text for text in reasons), reasons


@pytest.mark.parametrize(
    ("adapter", "source_name", "edit"),
    [
        (WaterlevelAdapter, "pegelonline", lambda d: _first_level(d[0])["currentMeasurement"].update(stateMnwMhw={})),
        (WeatherAdapter, "brightsky", lambda d: d["weather"].update(condition={"dry": True})),
        (AirqualityAdapter, "sensor-community", lambda d: d[0]["sensor"].update(sensor_type=["SDS011"])),
        (AirqualityAdapter, "sensor-community", lambda d: d[0]["sensordatavalues"][0].update(value_type=["P1"])),
    ],
    ids=["pegelonline-state-dict", "brightsky-condition-dict", "sensor-type-list", "value-type-list"],
)
def test_a_value_of_the_wrong_json_type_is_no_internal_error(
    adapter: type[Adapter], source_name: str, edit: Callable[[Any], None]
) -> None:
    assert all("internal error" not in text for text in _normalised(adapter, source_name, edit))


@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59+00:00", "1969-12-31T23:59:59+00:00"]
)
def test_a_car_park_count_stamped_at_an_impossible_time_is_rejected(stamp: str) -> None:
    """0001+14:00 raised OverflowError in utc_iso ("internal error"); 9999 and 1969 went out as observedAt."""
    reasons = _normalised(ParkingAdapter, "dortmund-parkhaeuser", lambda d: d["results"][0].update(zeitstempel=stamp))
    assert any("time" in reason and "internal error" not in reason for reason in reasons), reasons


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"[" * 100_000, "nested too deeply"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested too deeply"),
        (b'["\xed\xa0\x80"]', "encoded UTF-16 surrogate"),
        (b"[" + b"1" * 5000 + b"]", "not JSON"),  # beyond Python's 4300-digit integer limit
    ],
    ids=["array-bomb", "object-bomb", "surrogate-bytes", "5000-digit-integer"],
)
def test_unreadable_json_is_a_payload_error_that_says_why(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        load_json(payload)


def test_an_opendatasoft_record_with_a_5000_digit_integer_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="4300 digits"):
        list(iter_records(b'[{"capacity": ' + b"1" * 5000 + b"}]"))


def test_a_lone_surrogate_escape_reads_as_the_replacement_character() -> None:
    assert load_json(b'{"name\\ud800": ["\\udc00x", "\\ud83d\\ude00"]}') == {"name\ufffd": ["\ufffdx", "\U0001f600"]}


def test_a_meter_reading_in_year_one_is_rejected_not_an_overflow() -> None:
    source = BuildingsAdapter.source("building-meters")
    header = "Zählpunkt;Gebäude-ID;Medium;Einheit;Ablesezeitpunkt;Zählerstand\n"
    payload = (header + "DO-1;rathaus;Strom;kWh;01.01.0001 00:00;100,0\n").encode()
    settings = adapter_settings(BuildingsAdapter, {"source": "building-meters"})
    resources = BuildingsAdapter.open_resources(settings, base_dir=Path(), persistent=False)
    try:
        context = NormalizeContext(tenant="dortmund", settings=settings, received_at=RECEIVED, resources=resources)
        result = normalize_payload(source, payload, context, origin="payload")
    finally:
        resources.close()
    assert [r.reason for r in result.rejections] == ["time '01.01.0001 00:00': out of range"]


@pytest.mark.parametrize("number", [1e308, -1e10])
def test_coordinates_beyond_every_reference_system_are_refused_before_geos_overflows(number: float) -> None:
    with pytest.raises(GeoError, match="beyond any coordinate"):
        geometry_from_geojson({"type": "Point", "coordinates": [number, 5707845.0]})


def test_wkt_with_a_non_ascii_word_is_not_wkt_rather_than_a_decoding_crash() -> None:
    with pytest.raises(GeoError, match="not WKT"):
        geometry_from_wkt("ü" * 300)


def test_an_uplink_from_before_2000_is_malformed() -> None:
    sample = LorawanAdapter.sample_payload(LorawanAdapter.source("chirpstack-v4")).splitlines()[0]
    uplink = {**json.loads(sample), "time": "1970-01-01T00:00:00Z"}
    with pytest.raises(UplinkError, match="before 2000"):
        parse_chirpstack_v4(uplink)


@pytest.mark.parametrize(
    ("moment", "problem"),
    [
        (datetime(2024, 5, 14, 9, 59, tzinfo=UTC), None),
        (datetime(2024, 5, 14, 10, 1, tzinfo=UTC), "in the future"),
        (datetime(1999, 12, 31, 23, 59, tzinfo=UTC), "before 2000"),
        (datetime.max.replace(tzinfo=UTC), "in the future"),
    ],
)
def test_time_problem_allows_an_hour_of_clock_skew(moment: datetime, problem: str | None) -> None:
    found = time_problem(moment, RECEIVED)
    assert (found is None) if problem is None else (found is not None and problem in found)

"""Source kind pegelonline: payload shapes, units and times, staleness against the poll time, selection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.core.adapter import NormalizeContext, PayloadError
from adapters.core.normalize import normalize_payload
from adapters.core.validation import datamodels_root, entity_problems
from adapters.testing.cases import adapter_settings
from adapters.waterlevel import WaterlevelAdapter
from adapters.waterlevel.pegelonline import SOURCE, parse_payload, station_keys

SAMPLE = Path(__file__).parents[2] / "adapters" / "waterlevel" / "samples" / "pegelonline-stations.json"
STATIONS: list[dict[str, Any]] = json.loads(SAMPLE.read_text(encoding="utf-8"))


def run(payload: Any, received_at: datetime | None = None, **overrides: Any) -> tuple[list[dict[str, Any]], list[str]]:
    settings = adapter_settings(WaterlevelAdapter, overrides)
    context = NormalizeContext(tenant="dortmund", settings=settings, received_at=received_at)
    result = normalize_payload(SOURCE, json.dumps(payload).encode(), context)
    return result.entities, [r.reason for r in result.rejections]


@pytest.mark.parametrize(
    ("body", "needle"),
    [(b'[{"uuid": "x"', "not JSON"), (b'{"error": "x"}', "stations.json array"), (b'"text"', "array")],
)
def test_unreadable_payloads_are_refused_as_a_whole(body: bytes, needle: str) -> None:
    with pytest.raises(PayloadError, match=needle):
        parse_payload(body)


def test_levels_are_metres_above_the_gauge_zero_as_floats_with_utc_times() -> None:
    entities, rejections = run(STATIONS)
    assert rejections == []
    hattingen = entities[0]
    assert hattingen["waterLevel"] == {
        "type": "Property",
        "value": 1.87,
        "observedAt": "2024-05-14T08:15:00Z",
        "unitCode": "MTR",
    }
    assert hattingen["flow"]["observedAt"] == "2024-05-14T08:00:00Z"  # Q keeps its own, older time
    assert hattingen["dateObserved"]["value"] == "2024-05-14T08:15:00Z"
    for entity in entities:
        # QuantumLeap keeps a column's first JSON type: 501 cm must arrive as 5.01, never as an integer.
        assert all(isinstance(entity[a]["value"], float) for a in ("waterLevel", "flow") if a in entity)
        assert entity_problems(entity) == []


def test_a_gauge_that_stopped_reporting_is_rejected_as_stale_at_poll_time() -> None:
    polled = datetime(2024, 5, 14, 20, 0, tzinfo=UTC)  # twelve hours after the sample's measurements
    entities, rejections = run(STATIONS[:1], received_at=polled)
    assert entities == []
    assert rejections == [
        "stale: the newest measurement (2024-05-14T08:15:00Z) is 11.8 h old, more than max_age 6.0 h; "
        "the gauge is not reporting"
    ]
    assert run(STATIONS[:1], received_at=polled, max_age=0)[0], "max_age 0: never stale"


def test_at_poll_time_only_the_old_discharge_is_left_out() -> None:
    polled = datetime(2024, 5, 14, 14, 5, tzinfo=UTC)  # W (08:15Z) is 5.8 h old, Q (08:00Z) 6.1 h
    (entity,), rejections = run(STATIONS[:1], received_at=polled)
    assert rejections == []
    assert "waterLevel" in entity and "flow" not in entity


def test_settings_name_stations_by_uuid_number_or_name_in_any_case() -> None:
    keys = station_keys(STATIONS[0])
    assert keys == {"c0594fb5-77ff-4287-9b8d-7ff326afe9ff", "2769510000100", "hattingen"}
    entities, _ = run(STATIONS, stations=["C0594FB5-77FF-4287-9B8D-7FF326AFE9FF", " waltrop "])
    assert [e["name"]["value"] for e in entities] == ["HATTINGEN", "WALTROP"]
    entities, _ = run(STATIONS, waters=["Datteln-Hamm-Kanal"])
    assert [e["name"]["value"] for e in entities] == ["WALTROP"]


def test_replayed_offline_the_sample_is_not_stale() -> None:
    settings = WaterlevelAdapter.offline_settings(adapter_settings(WaterlevelAdapter, {}))
    context = NormalizeContext(tenant="dortmund", settings=settings, received_at=datetime.now(UTC))
    result = normalize_payload(SOURCE, SAMPLE.read_bytes(), context)
    assert len(result.entities) == 4 and result.rejections == []


def test_the_profile_example_is_real_output_and_valid() -> None:
    example = json.loads(
        datamodels_root().joinpath("WaterObserved", "examples", "example-normalized.jsonld").read_text()
    )
    assert example.pop("@context")
    assert entity_problems(example) == []
    entities, _ = run(STATIONS)
    assert example == entities[0]

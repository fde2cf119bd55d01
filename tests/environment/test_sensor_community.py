"""Source kind sensor-community: grouping by location, newest reading per quantity, units, plausibility."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.airquality import AirqualityAdapter
from adapters.airquality.sensor_community import SOURCE, parse_payload
from adapters.core.adapter import NormalizeContext, PayloadError
from adapters.core.normalize import normalize_payload
from adapters.core.validation import datamodels_root, entity_problems
from adapters.testing.cases import adapter_settings

SAMPLE = Path(__file__).parents[2] / "adapters" / "airquality" / "samples" / "sensor-community-area.json"
RECORDS: list[dict[str, Any]] = json.loads(SAMPLE.read_text(encoding="utf-8"))


def run(records: Any, **overrides: Any) -> tuple[list[dict[str, Any]], list[str]]:
    context = NormalizeContext(tenant="dortmund", settings=adapter_settings(AirqualityAdapter, overrides))
    result = normalize_payload(SOURCE, json.dumps(records).encode(), context)
    return result.entities, [r.reason for r in result.rejections]


def test_records_are_grouped_per_location_in_feed_order() -> None:
    groups = parse_payload(SAMPLE.read_bytes())
    assert [g["location"]["id"] for g in groups] == [31244, 18842, 22098, 40117, 52310, 27519]
    assert [len(g["readings"]) for g in groups] == [4, 4, 1, 2, 1, 1]


@pytest.mark.parametrize(("body", "needle"), [(b"[{", "not JSON"), (b'{"id": 1}', "JSON array")])
def test_unreadable_payloads_are_refused_as_a_whole(body: bytes, needle: str) -> None:
    with pytest.raises(PayloadError, match=needle):
        parse_payload(body)


def test_strings_become_floats_in_the_models_units() -> None:
    entities, _ = run(RECORDS)
    city = entities[0]
    assert city["id"] == "urn:ngsi-ld:AirQualityObserved:dortmund:sensor-community-31244"
    assert city["location"]["value"]["coordinates"] == [7.466, 51.513]
    values = {
        name: (city[name]["value"], city[name]["unitCode"])
        for name in ("pm10", "pm25", "temperature", "relativeHumidity", "pressure")
    }
    # The newer of the two cycles: 08:13:06 / 08:13:07, not 08:10:41.
    assert values == {
        "pm10": (15.02, "GQ"),
        "pm25": (7.12, "GQ"),
        "temperature": (17.41, "CEL"),
        "relativeHumidity": (0.6087, "C62"),
        "pressure": (1004.1, "A97"),  # 100410.06 Pa
    }
    assert city["pm10"]["observedAt"] == "2024-05-14T08:13:06Z"  # UTC without offset in the feed
    assert city["dateObserved"]["value"] == "2024-05-14T08:13:07Z"
    for entity in entities:
        assert entity_problems(entity) == []
        measured = [a for a in entity.values() if isinstance(a, dict) and "unitCode" in a]
        assert measured and all(isinstance(a["value"], float) for a in measured)


def test_an_integer_string_still_arrives_as_a_float() -> None:
    record = json.loads(json.dumps(RECORDS[0]))
    record["sensordatavalues"][0]["value"] = "14"
    (entity,), _ = run([record])
    assert entity["pm10"]["value"] == 14.0 and isinstance(entity["pm10"]["value"], float)


def test_the_whole_area_sample() -> None:
    entities, rejections = run(RECORDS)
    assert [e["id"].rsplit("-", 1)[1] for e in entities] == ["31244", "18842", "40117", "27519"]
    assert len(rejections) == 1 and "sends its error values" in rejections[0]


def test_the_profile_example_is_real_output_and_valid() -> None:
    path = datamodels_root().joinpath("AirQualityObserved", "examples", "example-normalized.jsonld")
    example = json.loads(path.read_text(encoding="utf-8"))
    assert example.pop("@context")
    assert entity_problems(example) == []
    assert example == run(RECORDS)[0][0]

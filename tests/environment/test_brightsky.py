"""Source kind brightsky: response shapes, unit systems, borrowed values, the station as the entity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.core.adapter import NormalizeContext, PayloadError
from adapters.core.normalize import normalize_payload
from adapters.core.validation import datamodels_root, entity_problems
from adapters.testing.cases import adapter_settings
from adapters.weather import WeatherAdapter
from adapters.weather.brightsky import SOURCE, parse_payload, units_of

SAMPLE = Path(__file__).parents[2] / "adapters" / "weather" / "samples" / "brightsky-current-weather.json"
RESPONSE: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))


def run(response: Any, **overrides: Any) -> tuple[list[dict[str, Any]], list[str]]:
    context = NormalizeContext(tenant="dortmund", settings=adapter_settings(WeatherAdapter, overrides))
    result = normalize_payload(SOURCE, json.dumps(response).encode(), context)
    return result.entities, [r.reason for r in result.rejections]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"weather": {', "not JSON"),
        (b'{"detail": "No sources match your criteria"}', "Bright Sky response"),
        (b'{"weather": [{"timestamp": "2024-05-14T08:00:00+00:00"}], "sources": []}', "/current_weather"),
    ],
)
def test_other_answers_are_refused_as_a_whole(body: bytes, needle: str) -> None:
    with pytest.raises(PayloadError, match=needle):
        parse_payload(body)


@pytest.mark.parametrize(
    ("url", "units"),
    [
        (None, "dwd"),
        ("https://api.brightsky.dev/current_weather?lat=51.5&lon=7.5", "dwd"),
        ("https://api.brightsky.dev/current_weather?lat=51.5&lon=7.5&units=si", "si"),
        ("https://api.brightsky.dev/current_weather?units=SI&dwd_station_id=01303", "si"),
    ],
)
def test_the_unit_system_is_read_from_the_configured_url(url: str | None, units: str) -> None:
    assert units_of(url) == units


def test_dwd_units_become_the_models_units_as_floats() -> None:
    (entity,), rejections = run(RESPONSE)
    assert rejections == []
    assert entity["windSpeed"] == {
        "type": "Property",
        "value": 4.0,
        "observedAt": "2024-05-14T08:00:00Z",
        "unitCode": "MTS",
    }
    assert entity["relativeHumidity"]["value"] == 0.72
    assert entity["windDirection"]["value"] == 250.0  # an integer in the answer
    measured = [a for a in entity.values() if isinstance(a, dict) and "unitCode" in a]
    assert all(isinstance(a["value"], float) for a in measured)
    assert entity["location"]["value"]["coordinates"] == [6.9677, 51.4041]  # the station, not the asked point
    assert entity_problems(entity) == []


def test_the_profile_example_is_real_output_and_valid() -> None:
    path = datamodels_root().joinpath("WeatherObserved", "examples", "example-normalized.jsonld")
    example = json.loads(path.read_text(encoding="utf-8"))
    assert example.pop("@context")
    assert entity_problems(example) == []
    assert example == run(RESPONSE)[0][0]

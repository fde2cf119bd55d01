"""Kind ``indoor``: Elsys ERS CO2 uplinks through the real pipeline -> IndoorEnvironmentObserved.

The uplinks are the recorded ChirpStack v4 Elsys uplink (tests/core/lorawan/fixtures) with the
DevEUI, time, counter and bytes changed; the bytes follow the Elsys TLV layout (SOURCES.md §2).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from adapters.core.adapter import RecordRejected
from adapters.core.entities import Entity
from adapters.core.lorawan.pipeline import UplinkPipeline
from adapters.core.lorawan.registry import DeviceRegistry
from adapters.core.lorawan.state import UplinkState
from adapters.core.validation import datamodels_root, entity_problems
from adapters.lorawan.kinds.indoor import KIND, air_quality_level

FIXTURES = Path(__file__).parents[1] / "core" / "lorawan" / "fixtures"
TEMPLATE: dict[str, Any] = next(
    json.loads(line)
    for line in (FIXTURES / "chirpstack-v4-uplinks.ndjson").read_text(encoding="utf-8").splitlines()
    if '"devEui":"a81758fffe0465b2"' in line
)

SURVEYED, UNSURVEYED = "A81758FFFE0465B2", "A81758FFFE0465B1"
BUILDING = "gymnasium-an-der-schweizer-allee"
# Vendor codec example (ers-co2-codec.yaml) plus vdd 3600 mV: 22.6 °C, 41 %, 39 lx, motion 6, 776 ppm.
FULL_FRAME = "0100e202290400270506060308070e10"


def row(dev_eui: str, entity: str, lon: float | None = None, lat: float | None = None) -> dict[str, str]:
    return {
        "dev_eui": dev_eui,
        "model": "elsys-ers-co2",
        "kind": "indoor",
        "entity_id": entity,
        "tenant": "dortmund",
        "name": f"Gymnasium an der Schweizer Allee, Raum {entity[-3:]}",
        "lon": "" if lon is None else str(lon),
        "lat": "" if lat is None else str(lat),
        "building_id": BUILDING,
        "room": entity[-3:],
    }


ROWS = [row(SURVEYED, "gsa-raum-209", 7.53342, 51.49103), row(UNSURVEYED, "gsa-raum-114")]


def uplink(dev_eui: str, payload: str, *, time: str = "08:00:00", fcnt: int = 1) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(TEMPLATE))
    document.pop("object", None)
    document["deviceInfo"]["devEui"] = dev_eui.lower()
    document["deduplicationId"] = f"{dev_eui}-{fcnt}"
    document["time"] = f"2024-11-05T{time}+00:00"
    document["fCnt"] = fcnt
    document["data"] = base64.b64encode(bytes.fromhex(payload)).decode()
    return document


def run(
    payload: str,
    *,
    dev_eui: str = SURVEYED,
    settings: Mapping[str, Any] | None = None,
    rows: Iterable[Mapping[str, str]] = ROWS,
) -> list[Entity]:
    pipeline = UplinkPipeline(
        network="chirpstack-v4",
        registry=DeviceRegistry.from_rows(rows, "test"),
        kinds={"indoor": KIND},
        state=UplinkState(None),
        settings={"indoor": dict(settings or {})},
    )
    entities = pipeline.normalize(uplink(dev_eui, payload))
    for entity in entities:
        assert entity_problems(entity) == [], entity
    return entities


def observed(payload: str, **kwargs: Any) -> Entity:
    entities = run(payload, **kwargs)
    assert [e["type"] for e in entities] == ["IndoorEnvironmentObserved", "Device"]
    return entities[0]


def co2_frame(ppm: int) -> str:
    return f"06{ppm:04x}"


AT = "2024-11-05T08:00:00Z"


def test_full_frame_gives_the_exact_entity() -> None:
    assert observed(FULL_FRAME) == {
        "id": "urn:ngsi-ld:IndoorEnvironmentObserved:dortmund:gsa-raum-209",
        "type": "IndoorEnvironmentObserved",
        "name": {"type": "Property", "value": "Gymnasium an der Schweizer Allee, Raum 209"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.53342, 51.49103]}},
        "dateObserved": {"type": "Property", "value": AT},
        "co2": {"type": "Property", "value": 776.0, "observedAt": AT, "unitCode": "59"},
        "airQualityLevel": {"type": "Property", "value": "good", "observedAt": AT},
        "temperature": {"type": "Property", "value": 22.6, "observedAt": AT, "unitCode": "CEL"},
        "relativeHumidity": {"type": "Property", "value": 0.41, "observedAt": AT, "unitCode": "C62"},
        "illuminance": {"type": "Property", "value": 39.0, "observedAt": AT, "unitCode": "LUX"},
        "refPointOfInterest": {"type": "Relationship", "object": f"urn:ngsi-ld:Building:dortmund:{BUILDING}"},
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:dortmund:{SURVEYED}"},
    }


def test_quantities_are_floats_from_the_first_entity_on() -> None:
    # Whole numbers as the sensor sends them must still be JSON floats (QuantumLeap column types).
    entity = observed("0100dc02320400c8" + co2_frame(1200))  # 22.0 °C, 50 %, 200 lx, 1200 ppm
    for name, value in [("temperature", 22.0), ("relativeHumidity", 0.5), ("illuminance", 200.0), ("co2", 1200.0)]:
        assert entity[name]["value"] == value
        assert type(entity[name]["value"]) is float, name


def test_motion_is_not_turned_into_a_people_count() -> None:
    entity = observed(FULL_FRAME)  # motion 6 in the frame
    assert "peopleCount" not in entity
    assert not any("motion" in name.lower() for name in entity)


@pytest.mark.parametrize(
    ("ppm", "level"),
    [(0, "good"), (999, "good"), (1000, "ventilate"), (1500, "ventilate"), (2000, "ventilate"), (2001, "unacceptable")],
)
def test_traffic_light_with_the_default_thresholds(ppm: int, level: str) -> None:
    entity = observed(co2_frame(ppm))
    assert entity["co2"]["value"] == float(ppm)
    assert entity["airQualityLevel"] == {"type": "Property", "value": level, "observedAt": AT}


@pytest.mark.parametrize(
    ("ppm", "level"), [(799, "good"), (800, "ventilate"), (1400, "ventilate"), (1401, "unacceptable")]
)
def test_traffic_light_thresholds_are_settings(ppm: int, level: str) -> None:
    settings = {"co2_ventilate": 800, "co2_unacceptable": 1400}
    assert observed(co2_frame(ppm), settings=settings)["airQualityLevel"]["value"] == level


def test_traffic_light_function() -> None:
    levels = [air_quality_level(ppm) for ppm in (999, 1000, 2000, 2001)]
    assert levels == ["good", "ventilate", "ventilate", "unacceptable"]
    # Equal limits: one ppm of "ventilate", then unacceptable.
    assert [air_quality_level(ppm, 1500, 1500) for ppm in (1499, 1500, 1501)] == ["good", "ventilate", "unacceptable"]


def test_reversed_thresholds_reject_the_reading_naming_both_settings() -> None:
    with pytest.raises(RecordRejected) as error:
        run(co2_frame(900), settings={"co2_ventilate": 2500, "co2_unacceptable": 2000})
    assert "co2_ventilate 2500" in str(error.value)
    assert "co2_unacceptable 2000" in str(error.value)


@pytest.mark.parametrize(("percent", "fraction"), [(0, 0.0), (41, 0.41), (57, 0.57), (100, 1.0)])
def test_relative_humidity_is_a_fraction(percent: int, fraction: float) -> None:
    entity = observed(f"02{percent:02x}")
    assert entity["relativeHumidity"] == {"type": "Property", "value": fraction, "observedAt": AT, "unitCode": "C62"}
    assert type(entity["relativeHumidity"]["value"]) is float


def test_missing_quantities_are_absent_never_zero() -> None:
    only_co2 = observed(co2_frame(650))
    for name in ("temperature", "relativeHumidity", "illuminance"):
        assert name not in only_co2
    only_temperature = observed("0100c8")  # 20.0 °C
    assert only_temperature["temperature"]["value"] == 20.0
    for name in ("co2", "airQualityLevel", "relativeHumidity", "illuminance"):
        assert name not in only_temperature


@pytest.mark.parametrize("payload", ["0503070e10", "0503", "070e10"])
def test_frames_without_an_indoor_quantity_update_only_the_device(payload: str) -> None:
    assert [e["type"] for e in run(payload)] == ["Device"]


def test_sub_zero_temperature_is_rejected_with_a_reason() -> None:
    with pytest.raises(RecordRejected) as error:
        run("01ffe2" + co2_frame(420))  # -3.0 °C
    message = str(error.value)
    assert SURVEYED in message
    assert "-3.0 °C is below 0 °C" in message


def test_zero_degrees_is_still_sent() -> None:
    assert observed("010000" + co2_frame(420))["temperature"]["value"] == 0.0


def test_device_without_position_takes_its_buildings_position() -> None:
    settings = {"buildings": {BUILDING: [7.5334, 51.4911]}}
    entity = observed(co2_frame(800), dev_eui=UNSURVEYED, settings=settings)
    assert entity["id"] == "urn:ngsi-ld:IndoorEnvironmentObserved:dortmund:gsa-raum-114"
    assert entity["location"] == {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.5334, 51.4911]}}


def test_own_position_wins_over_the_buildings_position() -> None:
    settings = {"buildings": {BUILDING: [7.5334, 51.4911]}}
    entity = observed(co2_frame(800), dev_eui=SURVEYED, settings=settings)
    assert entity["location"]["value"]["coordinates"] == [7.53342, 51.49103]


@pytest.mark.parametrize("buildings", [None, {}, {"another-school": [7.4, 51.5]}])
def test_device_without_any_position_is_rejected_naming_the_fix(buildings: dict[str, Any] | None) -> None:
    settings = {} if buildings is None else {"buildings": buildings}
    with pytest.raises(RecordRejected) as error:
        run(co2_frame(800), dev_eui=UNSURVEYED, settings=settings)
    message = str(error.value)
    assert UNSURVEYED in message
    assert "lon and lat in the device registry" in message
    assert f'[adapters.lorawan.indoor.buildings] "{BUILDING}" = [lon, lat]' in message


def test_buildings_setting_schema_refuses_bad_positions() -> None:
    schema = {"type": "object", "properties": dict(KIND.config_properties)}
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"buildings": {BUILDING: [7.5334, 51.4911]}, "co2_ventilate": 1000})
    for bad in ([51.49, 7.53, 3], [7.5], [200, 51.4], ["7.5", "51.4"]):
        assert not validator.is_valid({"buildings": {BUILDING: bad}}), bad
    assert not validator.is_valid({"buildings": {"bad id": [7.5, 51.4]}})
    assert not validator.is_valid({"co2_ventilate": 0})
    assert KIND.config_properties["co2_ventilate"]["default"] == 1000
    assert KIND.config_properties["co2_unacceptable"]["default"] == 2000


def test_profile_refuses_what_the_official_schema_refuses_and_more() -> None:
    entity = observed(FULL_FRAME)
    cold = json.loads(json.dumps(entity))
    cold["temperature"]["value"] = -0.5
    assert any("temperature" in problem for problem in entity_problems(cold))
    percent = json.loads(json.dumps(entity))
    percent["relativeHumidity"]["value"] = 41.0
    assert any("relativeHumidity" in problem for problem in entity_problems(percent))
    misspelt = json.loads(json.dumps(entity))
    misspelt["co2Level"] = misspelt.pop("airQualityLevel")
    assert entity_problems(misspelt)


def test_device_entity_names_what_is_published() -> None:
    device = run(FULL_FRAME)[-1]
    assert device["controlledProperty"]["value"] == ["airPollution", "temperature", "humidity", "light"]


def test_kind_declaration() -> None:
    assert KIND.name == "indoor"
    assert KIND.entity_types == ("IndoorEnvironmentObserved",)


def test_profile_example_is_valid() -> None:
    path = datamodels_root().joinpath("IndoorEnvironmentObserved", "examples", "example-normalized.jsonld")
    example = json.loads(path.read_text(encoding="utf-8"))
    assert example.pop("@context")
    assert entity_problems(example) == []


# -- the building of a room, found by its position in the buildings adapter's footprints ----------------------
SCHOOL_FOOTPRINT = [[[7.5330, 51.4908], [7.5338, 51.4908], [7.5338, 51.4913], [7.5330, 51.4913], [7.5330, 51.4908]]]


def buildings_file(tmp_path: Path) -> Path:
    building = {
        "id": f"urn:ngsi-ld:Building:dortmund:{BUILDING}",
        "type": "Building",
        "name": {"type": "Property", "value": "Gymnasium an der Schweizer Allee"},
        "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": SCHOOL_FOOTPRINT}},
    }
    path = tmp_path / "buildings.ndjson"
    path.write_text(json.dumps(building) + "\n", encoding="utf-8")
    return path


def unassigned(lon: float | None, lat: float | None, building_id: str = "") -> list[dict[str, str]]:
    return [{**row(SURVEYED, "gsa-raum-209", lon, lat), "building_id": building_id}]


def test_a_room_without_building_id_is_linked_to_the_footprint_it_stands_in(tmp_path: Path) -> None:
    settings = {"buildings_file": str(buildings_file(tmp_path))}
    entity = observed(FULL_FRAME, settings=settings, rows=unassigned(7.5334, 51.4910))
    assert entity["refPointOfInterest"] == {
        "type": "Relationship",
        "object": f"urn:ngsi-ld:Building:dortmund:{BUILDING}",
    }


def test_a_room_outside_every_footprint_is_rejected_naming_the_fix(tmp_path: Path) -> None:
    settings = {"buildings_file": str(buildings_file(tmp_path))}
    with pytest.raises(RecordRejected, match="no building footprint in buildings_file covers"):
        run(FULL_FRAME, settings=settings, rows=unassigned(7.5400, 51.4950))


def test_a_room_without_position_takes_its_buildings_position_from_the_footprints(tmp_path: Path) -> None:
    settings = {"buildings_file": str(buildings_file(tmp_path))}
    entity = observed(FULL_FRAME, settings=settings, rows=unassigned(None, None, building_id=BUILDING))
    lon, lat = entity["location"]["value"]["coordinates"]
    assert 7.5330 < lon < 7.5338 and 51.4908 < lat < 51.4913


def test_without_building_id_and_without_footprints_the_reading_is_rejected() -> None:
    with pytest.raises(RecordRejected, match="no building: set building_id"):
        run(FULL_FRAME, rows=unassigned(7.5334, 51.4910))

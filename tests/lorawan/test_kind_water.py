"""Kind ``water``: DL-MBX / EM310-UDL uplinks through the real pipeline -> FloodMonitoring.

The uplinks are the recorded ChirpStack v4 uplink (tests/core/lorawan/fixtures) with the DevEUI,
time, counter, port and bytes changed; the bytes follow the vendor layouts (SOURCES.md §2).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.core.adapter import RecordRejected
from adapters.core.entities import Entity
from adapters.core.lorawan.pipeline import UplinkPipeline
from adapters.core.lorawan.registry import DeviceRegistry
from adapters.core.lorawan.state import UplinkState
from adapters.core.validation import datamodels_root, entity_problems
from adapters.lorawan.kinds.water import KIND, flood_level_status

FIXTURES = Path(__file__).parents[1] / "core" / "lorawan" / "fixtures"
TEMPLATE: dict[str, Any] = json.loads(
    (FIXTURES / "chirpstack-v4-uplinks.ndjson").read_text(encoding="utf-8").splitlines()[0]
)

RUHR, ELSE, PLAIN = "70B3D57BA00012E7", "24E124136B5030A1", "70B3D57BA00012E8"
ROWS = [
    # DL-MBX under the Ruhr bridge, 4.20 m above the gauge zero, alert 2.5 m, danger 3.2 m.
    {
        "dev_eui": RUHR,
        "model": "decentlab-dl-mbx",
        "kind": "water",
        "entity_id": "ruhr-schwerte-ruhrbruecke",
        "tenant": "schwerte",
        "name": "Ruhr an der Ruhrbrücke Schwerte",
        "lon": "7.56648",
        "lat": "51.44306",
        "empty_distance_mm": "4200",
        "alert_level_m": "2.5",
        "danger_level_m": "3.2",
    },
    # EM310-UDL over a brook, 2.00 m above its bed, alert level only.
    {
        "dev_eui": ELSE,
        "model": "milesight-em310-udl",
        "kind": "water",
        "entity_id": "elsebach-ergste",
        "tenant": "schwerte",
        "name": "Elsebach in Ergste",
        "lon": "7.5432",
        "lat": "51.4187",
        "empty_distance_mm": "2000",
        "alert_level_m": "1.2",
    },
    # No thresholds at all.
    {
        "dev_eui": PLAIN,
        "model": "decentlab-dl-mbx",
        "kind": "water",
        "entity_id": "ruhr-westhofen",
        "tenant": "schwerte",
        "name": "Ruhr bei Westhofen",
        "lon": "7.5101",
        "lat": "51.4303",
        "empty_distance_mm": "5000",
    },
]


def dl_mbx(distance_mm: int, samples: int = 12, battery_mv: int = 3251) -> str:
    """Protocol v2, device id 303, flags 0x0003: distance + valid samples, battery."""
    return f"02012f0003{distance_mm:04x}{samples:04x}{battery_mv:04x}"


def em310(distance_mm: int, *, tilt: bool = False, battery: int = 90) -> str:
    return f"0175{battery:02x}0382{distance_mm.to_bytes(2, 'little').hex()}0400{int(tilt):02x}"


def uplink(dev_eui: str, payload: str, *, port: int, time: str = "06:30:00", fcnt: int = 1) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(TEMPLATE))
    document.pop("object", None)
    document["deviceInfo"]["devEui"] = dev_eui.lower()
    document["deduplicationId"] = f"{dev_eui}-{fcnt}"
    document["time"] = f"2024-11-05T{time}+00:00"
    document["fCnt"] = fcnt
    document["fPort"] = port
    document["data"] = base64.b64encode(bytes.fromhex(payload)).decode()
    return document


def run(dev_eui: str, payload: str, settings: Mapping[str, Any] | None = None) -> list[Entity]:
    pipeline = UplinkPipeline(
        network="chirpstack-v4",
        registry=DeviceRegistry.from_rows(ROWS, "test"),
        kinds={"water": KIND},
        state=UplinkState(None),
        settings={"water": dict(settings or {})},
    )
    port = 85 if dev_eui == ELSE else 1
    entities = pipeline.normalize(uplink(dev_eui, payload, port=port))
    for entity in entities:
        assert entity_problems(entity) == [], entity
    return entities


def station(dev_eui: str, payload: str, settings: Mapping[str, Any] | None = None) -> Entity:
    entities = run(dev_eui, payload, settings)
    assert [e["type"] for e in entities] == ["FloodMonitoring", "Device"]
    return entities[0]


AT = "2024-11-05T06:30:00Z"


def test_dl_mbx_reading_gives_the_exact_entity() -> None:
    assert station(RUHR, dl_mbx(2900)) == {
        "id": "urn:ngsi-ld:FloodMonitoring:schwerte:ruhr-schwerte-ruhrbruecke",
        "type": "FloodMonitoring",
        "name": {"type": "Property", "value": "Ruhr an der Ruhrbrücke Schwerte"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.56648, 51.44306]}},
        "stationID": {"type": "Property", "value": "ruhr-schwerte-ruhrbruecke"},
        "observationDateTime": {"type": "Property", "value": AT},
        "measuredDistance": {"type": "Property", "value": 2.9, "observedAt": AT, "unitCode": "MTR"},
        "referenceLevel": {"type": "Property", "value": 4.2, "unitCode": "MTR"},
        "currentLevel": {"type": "Property", "value": 1.3, "observedAt": AT, "unitCode": "MTR"},
        "alertLevel": {"type": "Property", "value": 2.5, "unitCode": "MTR"},
        "dangerLevel": {"type": "Property", "value": 3.2, "unitCode": "MTR"},
        "floodLevelStatus": {"type": "Property", "value": "Normal", "observedAt": AT},
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:schwerte:{RUHR}"},
    }


def test_em310_reading() -> None:
    entity = station(ELSE, em310(1650))
    assert entity["measuredDistance"]["value"] == 1.65
    assert entity["referenceLevel"]["value"] == 2.0
    assert entity["currentLevel"]["value"] == 0.35
    assert entity["alertLevel"]["value"] == 1.2
    assert "dangerLevel" not in entity
    assert entity["floodLevelStatus"]["value"] == "Normal"


@pytest.mark.parametrize(
    ("distance_mm", "level", "status"),
    [
        (4200, 0.0, "Normal"),
        (1701, 2.499, "Normal"),
        (1700, 2.5, "Alert"),  # reaching the alert level is an alert
        (1001, 3.199, "Alert"),
        (1000, 3.2, "Danger"),
        (0, 4.2, "Danger"),
    ],
)
def test_level_and_status_by_thresholds(distance_mm: int, level: float, status: str) -> None:
    entity = station(RUHR, dl_mbx(distance_mm))
    assert entity["currentLevel"]["value"] == level
    assert entity["floodLevelStatus"]["value"] == status


def test_lengths_are_floats_from_the_first_entity_on() -> None:
    entity = station(RUHR, dl_mbx(4200))  # level exactly 0, distance a whole 4.2 m
    for name in ("measuredDistance", "referenceLevel", "currentLevel", "alertLevel", "dangerLevel"):
        assert type(entity[name]["value"]) is float, name


def test_status_needs_a_threshold() -> None:
    entity = station(PLAIN, dl_mbx(3100))
    assert entity["currentLevel"]["value"] == 1.9
    for name in ("alertLevel", "dangerLevel", "floodLevelStatus"):
        assert name not in entity


def test_flood_level_status_function() -> None:
    assert flood_level_status(1.0, None, None) is None
    assert [flood_level_status(level, 1.2, None) for level in (1.19, 1.2, 9.0)] == ["Normal", "Alert", "Alert"]
    assert [flood_level_status(level, None, 3.2) for level in (3.19, 3.2)] == ["Normal", "Danger"]
    # Decimal thresholds compare exactly with levels computed from whole millimetres.
    assert flood_level_status(1100 / 1000, 1.1, None) == "Alert"


def test_dl_mbx_without_valid_samples_updates_only_the_device() -> None:
    assert [e["type"] for e in run(RUHR, dl_mbx(0, samples=0))] == ["Device"]


def test_battery_only_frames_update_only_the_device() -> None:
    assert [e["type"] for e in run(RUHR, "02012f00020cb3")] == ["Device"]
    assert [e["type"] for e in run(ELSE, "01755a")] == ["Device"]


@pytest.mark.parametrize("beyond", [1, 30, 50])
def test_small_overshoot_below_the_gauge_zero_is_clamped_and_logged(
    beyond: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dos_adapters.lorawan.water"):
        entity = station(RUHR, dl_mbx(4200 + beyond))
    assert entity["currentLevel"]["value"] == 0.0
    assert entity["measuredDistance"]["value"] == (4200 + beyond) / 1000
    assert f"{beyond} mm beyond the gauge zero" in caplog.text


def test_larger_overshoot_is_rejected_naming_the_fix() -> None:
    with pytest.raises(RecordRejected) as error:
        run(RUHR, dl_mbx(4251))
    message = str(error.value)
    assert RUHR in message
    assert "51 mm beyond the gauge zero" in message
    assert "empty_distance_mm" in message


def test_tolerance_is_a_setting() -> None:
    assert station(RUHR, dl_mbx(4200), {"zero_tolerance_mm": 0})["currentLevel"]["value"] == 0.0
    with pytest.raises(RecordRejected):
        run(RUHR, dl_mbx(4201), {"zero_tolerance_mm": 0})
    assert station(RUHR, dl_mbx(4300), {"zero_tolerance_mm": 100})["currentLevel"]["value"] == 0.0


def test_tilted_sensor_is_rejected() -> None:
    with pytest.raises(RecordRejected) as error:
        run(ELSE, em310(1650, tilt=True))
    assert "tilted" in str(error.value)


def test_profile_refuses_a_negative_level_and_a_status_without_thresholds() -> None:
    entity = station(RUHR, dl_mbx(2900))
    negative = json.loads(json.dumps(entity))
    negative["currentLevel"]["value"] = -0.1
    assert any("currentLevel" in problem for problem in entity_problems(negative))
    no_thresholds = json.loads(json.dumps(entity))
    del no_thresholds["alertLevel"], no_thresholds["dangerLevel"]
    assert entity_problems(no_thresholds)
    lowercase = json.loads(json.dumps(entity))
    lowercase["floodLevelStatus"]["value"] = "normal"
    assert entity_problems(lowercase)


def test_device_entity_controls_the_water_level() -> None:
    assert run(RUHR, dl_mbx(2900))[-1]["controlledProperty"]["value"] == ["waterLevel"]


def test_kind_declaration() -> None:
    assert KIND.name == "water"
    assert KIND.entity_types == ("FloodMonitoring",)
    assert KIND.config_properties["zero_tolerance_mm"]["default"] == 50


def test_profile_example_is_valid() -> None:
    path = datamodels_root().joinpath("FloodMonitoring", "examples", "example-normalized.jsonld")
    example = json.loads(path.read_text(encoding="utf-8"))
    assert example.pop("@context")
    assert entity_problems(example) == []

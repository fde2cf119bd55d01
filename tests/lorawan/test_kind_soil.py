"""Kind ``soil``: Dragino LSE01 uplinks through the real pipeline -> one DeviceMeasurement per quantity.

The uplinks are the recorded ChirpStack v4 LSE01 uplink (tests/core/lorawan/fixtures) with the
DevEUI, time, counter and bytes changed; the bytes follow the LSE01 layout (SOURCES.md §2).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.core.adapter import RecordRejected
from adapters.core.entities import Entity
from adapters.core.lorawan.pipeline import UplinkPipeline
from adapters.core.lorawan.registry import DeviceRegistry
from adapters.core.lorawan.state import UplinkState
from adapters.core.validation import datamodels_root, entity_problems
from adapters.lorawan.kinds.soil import KIND, QUANTITIES

FIXTURES = Path(__file__).parents[1] / "core" / "lorawan" / "fixtures"
TEMPLATE: dict[str, Any] = next(
    json.loads(line)
    for line in (FIXTURES / "chirpstack-v4-uplinks.ndjson").read_text(encoding="utf-8").splitlines()
    if '"deviceProfileName":"Dragino LSE01"' in line and '"data"' in line
)

LINDE, PLATANE = "A840414A91825EB3", "A840414A91825EB4"
ROWS = [
    {
        "dev_eui": LINDE,
        "model": "dragino-lse01",
        "kind": "soil",
        "entity_id": "linde-marktplatz",
        "tenant": "schwerte",
        "name": "Linde am Marktplatz",
        "lon": "7.56531",
        "lat": "51.44612",
    },
    {
        "dev_eui": PLATANE,
        "model": "dragino-lse01",
        "kind": "soil",
        "entity_id": "platane-rathaus",
        "tenant": "schwerte",
        "name": "Platane am Rathaus",
    },
]
# Vendor codec example (lse01-codec.yaml): 3.625 V, DS18B20 24.1 °C, 19.57 %, 24.59 °C, 28200 µS/cm.
VENDOR_FRAME = "ce2900f107a5099b6e2890"


def lse01(moisture: float, soil_temperature: float, conductivity: int, *, ds18b20: float = 279.9) -> str:
    """fPort 2 frame; a DS18B20 reading of 279.9 °C is what the LSE01 sends when no probe is fitted."""
    words = [
        0x0E1C,  # 3.612 V
        round(ds18b20 * 10) & 0xFFFF,
        round(moisture * 100),
        round(soil_temperature * 100) & 0xFFFF,
        conductivity,
    ]
    return "".join(f"{word:04x}" for word in words) + "10"  # flag: soil probe detected


def uplink(dev_eui: str, payload: str, *, time: str = "05:00:00", fcnt: int = 1) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(TEMPLATE))
    document.pop("object", None)
    document["deviceInfo"]["devEui"] = dev_eui.lower()
    document["deduplicationId"] = f"{dev_eui}-{fcnt}"
    document["time"] = f"2024-11-05T{time}+00:00"
    document["fCnt"] = fcnt
    document["data"] = base64.b64encode(bytes.fromhex(payload)).decode()
    return document


def run(payload: str, *, dev_eui: str = LINDE, rows: Iterable[Mapping[str, str]] = ROWS) -> list[Entity]:
    pipeline = UplinkPipeline(
        network="chirpstack-v4",
        registry=DeviceRegistry.from_rows(rows, "test"),
        kinds={"soil": KIND},
        state=UplinkState(None),
    )
    entities = pipeline.normalize(uplink(dev_eui, payload))
    for entity in entities:
        assert entity_problems(entity) == [], entity
    return entities


def measurements(payload: str, **kwargs: Any) -> dict[str, Entity]:
    entities = run(payload, **kwargs)
    assert entities[-1]["type"] == "Device"
    assert all(e["type"] == "DeviceMeasurement" for e in entities[:-1])
    return {e["measurementType"]["value"]: e for e in entities[:-1]}


AT = "2024-11-05T05:00:00Z"


def test_vendor_frame_gives_one_entity_per_quantity() -> None:
    entities = run(VENDOR_FRAME)
    assert [e["id"] for e in entities] == [
        "urn:ngsi-ld:DeviceMeasurement:schwerte:linde-marktplatz-soilMoisture",
        "urn:ngsi-ld:DeviceMeasurement:schwerte:linde-marktplatz-soilTemperature",
        "urn:ngsi-ld:DeviceMeasurement:schwerte:linde-marktplatz-soilConductivity",
        "urn:ngsi-ld:DeviceMeasurement:schwerte:linde-marktplatz-externalTemperature",
        f"urn:ngsi-ld:Device:schwerte:{LINDE}",
    ]
    assert entities[0] == {
        "id": "urn:ngsi-ld:DeviceMeasurement:schwerte:linde-marktplatz-soilMoisture",
        "type": "DeviceMeasurement",
        "name": {"type": "Property", "value": "Linde am Marktplatz: soil moisture"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.56531, 51.44612]}},
        "dateObserved": {"type": "Property", "value": AT},
        "controlledProperty": {"type": "Property", "value": "soilMoisture"},
        "measurementType": {"type": "Property", "value": "soilMoisture"},
        "numValue": {"type": "Property", "value": 19.57, "observedAt": AT, "unitCode": "P1"},
        "unit": {"type": "Property", "value": "P1"},
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:schwerte:{LINDE}"},
    }


def test_values_units_and_controlled_properties() -> None:
    found = {
        kind: (e["numValue"]["value"], e["numValue"]["unitCode"], e["unit"]["value"], e["controlledProperty"]["value"])
        for kind, e in measurements(VENDOR_FRAME).items()
    }
    assert found == {
        "soilMoisture": (19.57, "P1", "P1", "soilMoisture"),
        "soilTemperature": (24.59, "CEL", "CEL", "temperature"),
        "soilConductivity": (28200.0, "G42", "G42", "conductivity"),
        "externalTemperature": (24.1, "CEL", "CEL", "temperature"),
    }


def test_num_value_is_always_a_float() -> None:
    # Whole numbers too (conductivity is an integer in the frame; 20 % and 12 °C happen to be whole).
    for entity in measurements(lse01(20.0, 12.0, 412, ds18b20=15.0)).values():
        assert type(entity["numValue"]["value"]) is float, entity["id"]


def test_external_probe_absent_when_none_is_fitted() -> None:
    found = measurements(lse01(23.45, 12.34, 412))
    assert sorted(found) == ["soilConductivity", "soilMoisture", "soilTemperature"]
    assert found["soilMoisture"]["numValue"]["value"] == 23.45
    assert found["soilTemperature"]["numValue"]["value"] == 12.34
    assert found["soilConductivity"]["numValue"]["value"] == 412.0


def test_frozen_soil_and_dry_soil_are_real_values() -> None:
    found = measurements(lse01(0.0, -1.3, 0))
    assert found["soilTemperature"]["numValue"]["value"] == -1.3
    assert found["soilMoisture"]["numValue"]["value"] == 0.0
    assert found["soilConductivity"]["numValue"]["value"] == 0.0


def test_tree_without_position_gets_no_location() -> None:
    found = measurements(lse01(30.0, 10.0, 300), dev_eui=PLATANE)
    for entity in found.values():
        assert "location" not in entity
        assert entity["id"].startswith("urn:ngsi-ld:DeviceMeasurement:schwerte:platane-rathaus-")


def test_frame_without_soil_probe_is_rejected_by_the_decoder() -> None:
    with pytest.raises(RecordRejected) as error:
        run(lse01(23.45, 12.34, 412)[:-2] + "00")
    assert "no soil probe" in str(error.value)


def test_profile_ties_unit_and_range_to_the_measurement_type() -> None:
    entity = measurements(VENDOR_FRAME)["soilMoisture"]
    wrong_unit = json.loads(json.dumps(entity))
    wrong_unit["unit"]["value"] = "CEL"
    assert entity_problems(wrong_unit)
    over_100 = json.loads(json.dumps(entity))
    over_100["numValue"]["value"] = 120.0
    assert entity_problems(over_100)
    misspelt = json.loads(json.dumps(entity))
    misspelt["numvalue"] = misspelt.pop("numValue")
    assert entity_problems(misspelt)


def test_device_entity_controls_the_soil_quantities() -> None:
    assert run(VENDOR_FRAME)[-1]["controlledProperty"]["value"] == ["soilMoisture", "temperature", "conductivity"]


def test_kind_declaration() -> None:
    assert KIND.name == "soil"
    assert KIND.entity_types == ("DeviceMeasurement",)
    assert len({q.measurement_type for q in QUANTITIES}) == len(QUANTITIES)


def test_profile_example_is_valid() -> None:
    path = datamodels_root().joinpath("DeviceMeasurement", "examples", "example-normalized.jsonld")
    example = json.loads(path.read_text(encoding="utf-8"))
    assert example.pop("@context")
    assert entity_problems(example) == []

#!/usr/bin/env python3
"""Regenerate ``datamodels/<Type>/examples/example-normalized.jsonld`` from the adapters' recorded cases.

Every example is a real entity (plus upstream's ``@context`` member): the one named in ``EXAMPLES``
(adapter, case folder, entity id), taken from ``adapters/<adapter>/cases/<case>/expected.ndjson``, which
the adapters' contract tests prove is what the adapter emits. So an example cannot drift from the code:
change an adapter, update its cases (``python -m adapters.testing.cases ADAPTER --update``), then run
this script; tests/datamodels/test_datamodel_examples.py fails until then.

    .venv/bin/python scripts/sync_datamodel_examples.py           # rewrite the examples
    .venv/bin/python scripts/sync_datamodel_examples.py --check   # exit 1 if an example is stale (tests)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATAMODELS = ROOT / "datamodels"
SOURCES = ROOT / "broker-config" / "context" / "sources.json"
EXAMPLE_NAME = "example-normalized.jsonld"
SUBJECT_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/{subject}/master/context.jsonld"

#: Type -> (adapter, case folder, entity id): a typical, well-filled entity of each type we emit.
EXAMPLES: dict[str, tuple[str, str, str]] = {
    "AirQualityObserved": (
        "airquality",
        "pm_and_thp_sensors_share_a_location",
        "urn:ngsi-ld:AirQualityObserved:dortmund:sensor-community-31244",
    ),
    "Alert": (
        "waterlevel",
        "alert_on_first_poll",
        "urn:ngsi-ld:Alert:schwerte:waterLevel-c0594fb5-77ff-4287-9b8d-7ff326afe9ff-20240514T081500Z",
    ),
    "Building": ("buildings", "utm32_crs_member", "urn:ngsi-ld:Building:dortmund:gymnasium-an-der-schweizer-allee"),
    "Device": ("lorawan", "indoor_co2_traffic_light", "urn:ngsi-ld:Device:dortmund:A81758FFFE0465B2"),
    "DeviceMeasurement": (
        "lorawan",
        "soil_tree",
        "urn:ngsi-ld:DeviceMeasurement:schwerte:linde-marktplatz-soilMoisture",
    ),
    "FloodMonitoring": (
        "lorawan",
        "water_level_schwerte",
        "urn:ngsi-ld:FloodMonitoring:schwerte:ruhr-schwerte-ruhrbruecke",
    ),
    "IndoorEnvironmentObserved": (
        "lorawan",
        "indoor_co2_traffic_light",
        "urn:ngsi-ld:IndoorEnvironmentObserved:dortmund:gsa-raum-209",
    ),
    "OffStreetParking": ("parking", "export_array", "urn:ngsi-ld:OffStreetParking:dortmund:101063"),
    "OnStreetParking": ("lorawan", "parking_spots_and_site", "urn:ngsi-ld:OnStreetParking:dortmund:hansastrasse"),
    "ParkingSpot": (
        "lorawan",
        "parking_spots_and_site",
        "urn:ngsi-ld:ParkingSpot:dortmund:hansastrasse-stellplatz-02",
    ),
    "WasteContainer": (
        "waste",
        "address_variants",
        "urn:ngsi-ld:WasteContainer:dortmund:edg-glass-N51.53311-E7.52946",
    ),
    "WaterObserved": (
        "waterlevel",
        "single_station_response",
        "urn:ngsi-ld:WaterObserved:dortmund:c0594fb5-77ff-4287-9b8d-7ff326afe9ff",
    ),
    "WeatherObserved": ("weather", "current_weather_dwd_units", "urn:ngsi-ld:WeatherObserved:dortmund:dwd-01303"),
}


class SyncError(Exception):
    pass


def case_entities(adapter: str, case: str) -> list[dict[str, Any]]:
    path = ROOT / "adapters" / adapter / "cases" / case / "expected.ndjson"
    if not path.is_file():
        raise SyncError(f"{path.relative_to(ROOT)}: no such recorded case output")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def source_entity(entity_type: str) -> dict[str, Any]:
    """The recorded entity the example of ``entity_type`` must equal."""
    if entity_type not in EXAMPLES:
        raise SyncError(f"{entity_type}: no entry in EXAMPLES of scripts/sync_datamodel_examples.py")
    adapter, case, entity_id = EXAMPLES[entity_type]
    for entity in case_entities(adapter, case):
        if entity.get("id") == entity_id and entity.get("type") == entity_type:
            return entity
    raise SyncError(f"{entity_type}: {entity_id} is not in the output of case {adapter}/{case}")


def example_context(entity_type: str) -> list[str]:
    """Upstream's layout: the official subject context (public, so a partner city can expand the
    example anywhere), then the NGSI-LD core context our broker applies."""
    sources = json.loads(SOURCES.read_text(encoding="utf-8"))
    subjects = {row["type"]: row["subject"] for row in sources["types"]}
    if entity_type not in subjects:
        raise SyncError(f"{entity_type}: not in {SOURCES.relative_to(ROOT)}; run scripts/build_context.py")
    return [SUBJECT_CONTEXT.format(subject=subjects[entity_type]), sources["core_context"]["url"]]


def render(entity: dict[str, Any]) -> str:
    example = {**entity, "@context": example_context(entity["type"])}
    return json.dumps(example, indent=2, ensure_ascii=False) + "\n"


def profile_types() -> list[str]:
    return sorted(p.name for p in DATAMODELS.iterdir() if (p / "schema.json").is_file())


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def stale_examples() -> list[str]:
    """Why each out-of-date example is stale; empty when all are in sync."""
    problems = []
    for entity_type in profile_types():
        path = DATAMODELS / entity_type / "examples" / EXAMPLE_NAME
        try:
            wanted = render(source_entity(entity_type))
        except SyncError as error:
            problems.append(str(error))
            continue
        if not path.is_file():
            problems.append(f"{_shown(path)}: missing")
        elif path.read_text(encoding="utf-8") != wanted:
            problems.append(f"{_shown(path)}: differs from {'/'.join(EXAMPLES[entity_type][:2])}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report stale examples; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_examples()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: .venv/bin/python scripts/sync_datamodel_examples.py", file=sys.stderr)
        return 1 if problems else 0
    for entity_type in profile_types():
        path = DATAMODELS / entity_type / "examples" / EXAMPLE_NAME
        text = render(source_entity(entity_type))
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SyncError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)

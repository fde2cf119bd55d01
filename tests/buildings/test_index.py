"""BuildingIndex: which building a position is in, deterministic on shared walls, per tenant."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import pytest

from adapters.buildings import BuildingsAdapter
from adapters.buildings.index import BuildingIndex, BuildingIndexError, load_building_index, read_entities
from adapters.buildings.inventory import SOURCE
from adapters.core.adapter import NormalizeContext
from adapters.core.normalize import normalize_payload
from adapters.core.validation import to_key_values

LORAWAN_SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "lorawan" / "samples"


def building(
    local: str, ring: list[list[float]], *, tenant: str = "dortmund", name: str | None = None
) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Building:{tenant}:{local}",
        "type": "Building",
        "name": {"type": "Property", "value": name or local},
        "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [ring]}},
    }


def box(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


# Two row houses sharing the wall at lon 7.4650, and a third one overlapping the second.
WEST = building("b-west", box(7.4640, 51.5100, 7.4650, 51.5110))
EAST = building("a-east", box(7.4650, 51.5100, 7.4660, 51.5110))
OVERLAP = building("c-annex", box(7.4655, 51.5100, 7.4670, 51.5110))
INNER = building("d-gym", box(7.4656, 51.5102, 7.4658, 51.5104))


def sample_buildings() -> list[dict[str, Any]]:
    settings = {"source": SOURCE.name}
    resources = BuildingsAdapter.open_resources(settings, base_dir=Path("."), persistent=False)
    context = NormalizeContext(tenant="dortmund", settings=settings, resources=resources)
    return normalize_payload(SOURCE, BuildingsAdapter.sample_payload(SOURCE), context).entities


def test_inside_a_footprint() -> None:
    index = BuildingIndex.from_entities([WEST, EAST])
    hit = index.building_of(7.4645, 51.5105)
    assert hit is not None and hit.entity_id == "urn:ngsi-ld:Building:dortmund:b-west"
    assert (hit.tenant, hit.local_id) == ("dortmund", "b-west")
    assert index.building_of(7.4700, 51.5105) is None


def test_a_shared_wall_goes_to_the_smaller_id_whatever_the_input_order() -> None:
    entities = [WEST, EAST]
    for seed in range(5):
        random.Random(seed).shuffle(entities)
        hit = BuildingIndex.from_entities(entities).building_of(7.4650, 51.5105)
        assert hit is not None and hit.local_id == "a-east"


def test_interior_beats_outline_and_the_smaller_footprint_wins() -> None:
    index = BuildingIndex.from_entities([EAST, OVERLAP, INNER])
    # On the annex's west wall but inside a-east: a-east.
    hit = index.building_of(7.4655, 51.5101)
    assert hit is not None and hit.local_id == "a-east"
    # Inside a-east, the annex and the small gym: the gym.
    inner = index.building_of(7.4657, 51.5103)
    assert inner is not None and inner.local_id == "d-gym"


def test_tenants_stay_apart() -> None:
    schwerte = building("b-west", box(7.4640, 51.5100, 7.4650, 51.5110), tenant="schwerte")
    index = BuildingIndex.from_entities([WEST, schwerte])
    found = index.building_of(7.4645, 51.5105, tenant="schwerte")
    assert found is not None and found.entity_id == "urn:ngsi-ld:Building:schwerte:b-west"
    assert index.building_of(7.4645, 51.5105, tenant="unna") is None


def test_nearest_within_a_distance() -> None:
    index = BuildingIndex.from_entities([WEST, EAST])
    just_south = (7.4645, 51.50997)  # about 3.3 m south of b-west's south wall
    assert index.building_of(*just_south) is None
    assert index.building_of(*just_south, max_distance_m=2.0) is None
    hit = index.building_of(*just_south, max_distance_m=5.0)
    assert hit is not None and hit.local_id == "b-west"


def test_positions_of_buildings() -> None:
    u_shape = building(
        "u-school",
        [
            [7.0, 51.0],
            [7.003, 51.0],
            [7.003, 51.003],
            [7.002, 51.003],
            [7.002, 51.001],
            [7.001, 51.001],
            [7.001, 51.003],
            [7.0, 51.003],
            [7.0, 51.0],
        ],
    )
    point = {
        "id": "urn:ngsi-ld:Building:dortmund:p1",
        "type": "Building",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.47, 51.51]}},
    }
    index = BuildingIndex.from_entities([WEST, u_shape, point])
    assert index.position_of("b-west") == pytest.approx((7.4645, 51.5105))
    lon, lat = index.position_of("u-school") or (0.0, 0.0)
    found = index.building_of(lon, lat)
    assert found is not None and found.local_id == "u-school"  # the centroid lies in the yard: a point inside
    assert index.position_of("p1") == (7.47, 51.51)
    assert index.building_of(7.47, 51.51) is None  # a Point building has no footprint to be in
    assert index.get("urn:ngsi-ld:Building:dortmund:p1") is not None


def test_key_values_and_the_latest_entity_win() -> None:
    moved = building("b-west", box(7.4700, 51.5100, 7.4710, 51.5110))
    index = BuildingIndex.from_entities([to_key_values(WEST), moved, {"id": "x", "type": "WasteContainer"}])
    assert len(index) == 1
    assert index.building_of(7.4645, 51.5105) is None
    assert index.building_of(7.4705, 51.5105) is not None


@pytest.mark.parametrize(
    "entity",
    [
        {"id": "urn:ngsi-ld:Building:dortmund:x", "type": "Building"},
        {
            "id": "urn:ngsi-ld:Building:dortmund:x",
            "type": "Building",
            "location": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
        },
        {"id": "building-x", "type": "Building", "location": {"type": "Point", "coordinates": [7, 51]}},
        building("bowtie", [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]),
    ],
)
def test_unusable_buildings_are_named(entity: dict[str, Any]) -> None:
    with pytest.raises(BuildingIndexError):
        BuildingIndex.from_entities([entity])


def test_the_lorawan_sample_classrooms_land_in_their_school() -> None:
    """The indoor devices of the LoRaWAN sample registry, by position, against the sample inventory."""
    index = BuildingIndex.from_entities(sample_buildings())
    lines = [line for line in (LORAWAN_SAMPLES / "devices.csv").read_text().splitlines() if not line.startswith("#")]
    rows = [row for row in csv.DictReader(lines) if row and row["kind"] == "indoor"]
    assert rows
    for row in rows:
        lon, lat, building_id = float(row["lon"]), float(row["lat"]), row["building_id"]
        hit = index.building_of(lon, lat, tenant="dortmund")
        assert hit is not None and hit.local_id == building_id


def test_load_from_an_ndjson_file_once(tmp_path: Path) -> None:
    path = tmp_path / "buildings.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in sample_buildings()), encoding="utf-8")
    index = load_building_index(path)
    assert load_building_index(str(path)) is index
    hit = index.building_of(7.53338, 51.49108, tenant="dortmund")
    assert hit is not None and hit.name == "Gymnasium an der Schweizer Allee"
    array = tmp_path / "buildings.json"
    array.write_text(json.dumps(sample_buildings()), encoding="utf-8")
    assert len(load_building_index(array)) == len(index)


def test_a_broken_file_fails_the_same_way_every_time(tmp_path: Path) -> None:
    path = tmp_path / "broken.ndjson"
    path.write_text('{"id": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(BuildingIndexError, match="line 2: not JSON"):
        load_building_index(path)
    path.write_text("", encoding="utf-8")  # fixed on disk: takes effect on restart only
    with pytest.raises(BuildingIndexError, match="line 2"):
        load_building_index(path)
    with pytest.raises(BuildingIndexError, match="cannot read"):
        load_building_index(tmp_path / "missing.ndjson")
    with pytest.raises(BuildingIndexError, match="not a JSON array"):
        read_entities("[1,")


def test_a_sensor_on_the_wall_between_school_and_sports_hall_goes_to_the_smaller_id() -> None:
    """In the sample, the school and its sports hall share a wall (the same vertices in the export)."""
    buildings = sample_buildings()
    hall = next(e for e in buildings if e["id"].endswith(":gsa-sporthalle"))
    school = next(e for e in buildings if e["id"].endswith(":gymnasium-an-der-schweizer-allee"))
    shared = [
        p for p in hall["location"]["value"]["coordinates"][0] if p in school["location"]["value"]["coordinates"][0]
    ]
    assert len(shared) >= 2  # the wall's two ends, identical in both footprints after transformation
    (lon_a, lat_a), (lon_b, lat_b) = shared[:2]
    on_the_wall = ((lon_a + lon_b) / 2, (lat_a + lat_b) / 2)
    for order in (buildings, buildings[::-1]):
        hit = BuildingIndex.from_entities(order).building_of(*on_the_wall, tenant="dortmund")
        assert hit is not None and hit.local_id == "gsa-sporthalle"  # "gsa-…" < "gymnasium-…"

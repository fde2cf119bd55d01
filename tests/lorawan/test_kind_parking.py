"""Kind ``parking``: Bosch TPS110 uplinks through the real pipeline -> ParkingSpot + OnStreetParking.

The uplinks are the recorded ChirpStack v4 Bosch uplink (tests/core/lorawan/fixtures) with the
DevEUI, time, counter, port and bytes changed; the registry is built per test.
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
from adapters.core.validation import entity_problems
from adapters.lorawan import _kind_settings
from adapters.lorawan.kinds import parking
from adapters.lorawan.kinds.parking import KIND, ZonesError, load_zones

FIXTURES = Path(__file__).parents[1] / "core" / "lorawan" / "fixtures"
TEMPLATE: dict[str, Any] = next(
    json.loads(line)
    for line in (FIXTURES / "chirpstack-v4-uplinks.ndjson").read_text(encoding="utf-8").splitlines()
    if '"deviceProfileName":"Bosch TPS110"' in line
)

A, B, C, D, E = (f"FCD6BD00000B0{n}0{n}" for n in range(1, 6))


def row(
    dev_eui: str, entity: str, lon: float, lat: float, site: str = "", category: str = "onStreet"
) -> dict[str, str]:
    return {
        "dev_eui": dev_eui,
        "model": "bosch-tps110",
        "kind": "parking",
        "entity_id": entity,
        "tenant": "dortmund",
        "name": entity.replace("-", " ").title(),
        "lon": str(lon),
        "lat": str(lat),
        "parking_site": site,
        "category": category,
    }


def uplink(dev_eui: str, time: str, payload: str, *, port: int = 1, fcnt: int = 1) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(TEMPLATE))
    document.pop("object", None)
    document["deviceInfo"]["devEui"] = dev_eui.lower()
    document["deduplicationId"] = f"{dev_eui}-{fcnt}-{port}"
    document["time"] = f"2024-11-05T{time}+00:00"
    document["fCnt"] = fcnt
    document["fPort"] = port
    document["data"] = base64.b64encode(bytes.fromhex(payload)).decode()
    return document


def pipeline(rows: Iterable[Mapping[str, str]], settings: Mapping[str, Any] | None = None) -> UplinkPipeline:
    return UplinkPipeline(
        network="chirpstack-v4",
        registry=DeviceRegistry.from_rows(rows, "test"),
        kinds={"parking": KIND},
        state=UplinkState(None),
        settings={"parking": dict(settings or {})},
    )


def by_type(entities: list[Entity], entity_type: str) -> list[Entity]:
    return [entity for entity in entities if entity["type"] == entity_type]


def only(entities: list[Entity], entity_type: str) -> Entity:
    [entity] = by_type(entities, entity_type)
    return entity


def counts(site: Entity) -> tuple[int, int, int, float | None]:
    occupancy = site.get("occupancy", {}).get("value")
    return (
        site["totalSpotNumber"]["value"],
        site["availableSpotNumber"]["value"],
        site["occupiedSpotNumber"]["value"],
        occupancy,
    )


def assert_valid(entities: list[Entity]) -> None:
    for entity in entities:
        assert entity_problems(entity) == [], entity


HANSA = [
    row(A, "hansa-1", 7.46163, 51.51472, "hansastrasse"),
    row(B, "hansa-2", 7.46171, 51.51466, "hansastrasse"),
    row(C, "hansa-3", 7.46180, 51.51460, "hansastrasse"),
]


# ------------------------------------------------------------------------------------------
# ParkingSpot


def test_spot_entity_from_a_status_frame() -> None:
    entities = pipeline(HANSA).normalize(uplink(A, "08:00:00", "01"))
    spot = only(entities, "ParkingSpot")
    assert spot == {
        "id": "urn:ngsi-ld:ParkingSpot:dortmund:hansa-1",
        "type": "ParkingSpot",
        "name": {"type": "Property", "value": "Hansa 1"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.46163, 51.51472]}},
        "category": {"type": "Property", "value": ["onStreet"]},
        "status": {"type": "Property", "value": "occupied", "observedAt": "2024-11-05T08:00:00Z"},
        "refParkingSite": {"type": "Relationship", "object": "urn:ngsi-ld:OnStreetParking:dortmund:hansastrasse"},
        "refDevice": {"type": "Property", "value": [f"urn:ngsi-ld:Device:dortmund:{A}"]},
    }
    assert [e["type"] for e in entities] == ["ParkingSpot", "OnStreetParking", "Device"]
    assert_valid(entities)


@pytest.mark.parametrize(
    ("port", "payload", "status"),
    [
        (1, "01", "occupied"),
        (1, "00", "free"),
        (2, "00", "free"),  # heartbeat without temperature
        (2, "01ff", "occupied"),  # heartbeat with -1 °C
        (3, "240300007503000000000000001d020301", "occupied"),  # start-up frame, vendor example
    ],
)
def test_status_from_every_frame_with_occupancy(port: int, payload: str, status: str) -> None:
    entities = pipeline(HANSA).normalize(uplink(A, "08:00:00", payload, port=port))
    assert only(entities, "ParkingSpot")["status"]["value"] == status
    assert_valid(entities)


@pytest.mark.parametrize(("port", "payload"), [(4, "0a0b0c"), (5, "ff"), (6, "7856341224F300000500")])
def test_frames_without_occupancy_update_only_the_device(port: int, payload: str) -> None:
    line = pipeline(HANSA)
    entities = line.normalize(uplink(A, "08:00:00", payload, port=port))
    assert [e["type"] for e in entities] == ["Device"]
    assert line.state.memory(A).kind_state == {}


def test_kind_state_is_kept_per_spot() -> None:
    line = pipeline(HANSA)
    line.normalize(uplink(A, "08:00:00", "01"))
    assert line.state.memory(A).kind_state == {
        "occupied": True,
        "site": "hansastrasse",
        "category": "onStreet",
        "observed_at": "2024-11-05T08:00:00Z",
    }
    # A device-info frame keeps the spot's state.
    line.normalize(uplink(A, "08:01:00", "0a", port=4, fcnt=2))
    assert line.state.memory(A).kind_state["occupied"] is True


# ------------------------------------------------------------------------------------------
# The site's counts


def test_site_counts_follow_the_spots_and_unknown_spots_count_in_neither() -> None:
    line = pipeline(HANSA)
    steps = [
        (A, "08:00:00", "01", (3, 0, 1, 1.0)),  # B and C unknown
        (B, "08:05:00", "00", (3, 1, 1, 0.5)),
        (A, "08:10:00", "00", (3, 2, 0, 0.0)),
        (A, "08:20:00", "01", (3, 1, 1, 0.5)),
        (B, "08:30:00", "01", (3, 0, 2, 1.0)),  # C still never heard from
        (C, "08:40:00", "00", (3, 1, 2, 0.6667)),
    ]
    for fcnt, (dev_eui, time, payload, expected) in enumerate(steps, start=1):
        entities = line.normalize(uplink(dev_eui, time, payload, fcnt=fcnt))
        site = only(entities, "OnStreetParking")
        assert counts(site) == expected, (dev_eui, time)
        assert isinstance(site["occupancy"]["value"], float)
        assert isinstance(site["totalSpotNumber"]["value"], int)
        assert site["availableSpotNumber"]["observedAt"] == f"2024-11-05T{time}Z"
        assert_valid(entities)
        if fcnt % 2 == 0:
            line.commit()  # staged and committed states count alike


def test_site_entity() -> None:
    line = pipeline(HANSA)
    line.normalize(uplink(B, "08:00:00", "00"))
    site = only(line.normalize(uplink(A, "08:05:00", "01")), "OnStreetParking")
    assert site == {
        "id": "urn:ngsi-ld:OnStreetParking:dortmund:hansastrasse",
        "type": "OnStreetParking",
        "name": {"type": "Property", "value": "hansastrasse"},
        "location": {
            "type": "GeoProperty",
            "value": {
                "type": "MultiPoint",
                "coordinates": [[7.46163, 51.51472], [7.46171, 51.51466], [7.4618, 51.5146]],
            },
        },
        "occupancyDetectionType": {"type": "Property", "value": ["singleSpaceDetection"]},
        "totalSpotNumber": {"type": "Property", "value": 3},
        "availableSpotNumber": {"type": "Property", "value": 1, "observedAt": "2024-11-05T08:05:00Z"},
        "occupiedSpotNumber": {"type": "Property", "value": 1, "observedAt": "2024-11-05T08:05:00Z"},
        "occupancy": {"type": "Property", "value": 0.5, "observedAt": "2024-11-05T08:05:00Z", "unitCode": "C62"},
    }


def test_a_late_uplink_does_not_move_the_site_time_backwards() -> None:
    line = pipeline(HANSA)
    line.normalize(uplink(A, "08:10:00", "01"))
    site = only(line.normalize(uplink(B, "08:05:00", "00")), "OnStreetParking")
    assert counts(site) == (3, 1, 1, 0.5)
    assert site["occupancy"]["observedAt"] == "2024-11-05T08:10:00Z"
    assert only(line.normalize(uplink(C, "08:06:00", "00")), "ParkingSpot")["status"]["observedAt"] == (
        "2024-11-05T08:06:00Z"
    )


def test_total_counts_only_the_sites_spots_of_that_tenant() -> None:
    other_tenant = {**row(D, "hansa-1", 7.4617, 51.5147, "hansastrasse"), "tenant": "schwerte"}
    other_site = row(E, "kampstrasse-1", 7.4634, 51.5153, "kampstrasse")
    line = pipeline([*HANSA, other_tenant, other_site])
    assert counts(only(line.normalize(uplink(A, "08:00:00", "01")), "OnStreetParking")) == (3, 0, 1, 1.0)
    schwerte = only(line.normalize(uplink(D, "08:01:00", "00")), "OnStreetParking")
    assert schwerte["id"] == "urn:ngsi-ld:OnStreetParking:schwerte:hansastrasse"
    assert counts(schwerte) == (1, 1, 0, 0.0)


def test_a_repeated_uplink_is_a_duplicate() -> None:
    line = pipeline(HANSA)
    assert line.normalize(uplink(A, "08:00:00", "01"))
    assert line.normalize(uplink(A, "08:00:00", "01")) == []


# ------------------------------------------------------------------------------------------
# Off-street spots


def test_off_street_spot_references_an_off_street_site_and_does_not_write_it() -> None:
    rows = [
        *HANSA,
        row(D, "pr-1", 7.4700, 51.5200, "hansastrasse", category="offStreet"),
    ]
    line = pipeline(rows)
    entities = line.normalize(uplink(D, "08:00:00", "01"))
    assert [e["type"] for e in entities] == ["ParkingSpot", "Device"]
    spot = only(entities, "ParkingSpot")
    assert spot["category"]["value"] == ["offStreet"]
    assert spot["refParkingSite"]["object"] == "urn:ngsi-ld:OffStreetParking:dortmund:hansastrasse"
    assert_valid(entities)
    # The off-street spot of the same site id is not one of the on-street site's spots.
    assert counts(only(line.normalize(uplink(A, "08:01:00", "00")), "OnStreetParking")) == (3, 1, 0, 0.0)


def test_profile_refuses_a_site_type_that_contradicts_the_category() -> None:
    spot = only(pipeline(HANSA).normalize(uplink(A, "08:00:00", "01")), "ParkingSpot")
    spot["refParkingSite"]["object"] = "urn:ngsi-ld:OffStreetParking:dortmund:hansastrasse"
    assert any("refParkingSite" in problem for problem in entity_problems(spot))


# ------------------------------------------------------------------------------------------
# Zones

# Two zones sharing the border lon 7.463; "b-nord" comes first in the file on purpose.
WEST = [[7.460, 51.513], [7.463, 51.513], [7.463, 51.516], [7.460, 51.516], [7.460, 51.513]]
EAST = [[7.463, 51.513], [7.466, 51.513], [7.466, 51.516], [7.463, 51.516], [7.463, 51.513]]


# Parts of a MultiPolygon may not share an edge (shapely: invalid), so the second part lies apart.
FAR_EAST = [[7.473, 51.513], [7.476, 51.513], [7.476, 51.516], [7.473, 51.516], [7.473, 51.513]]


def zones_file(tmp_path: Path, features: list[dict[str, Any]], name: str = "zones.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def feature(zone_id: Any, ring: list[list[float]], name: str | None = None) -> dict[str, Any]:
    properties = {"id": zone_id} if name is None else {"id": zone_id, "name": name}
    return {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": [ring]}}


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    return zones_file(tmp_path, [feature("b-ost", EAST, "Kampstraße Ost"), feature("a-west", WEST)])


def test_spots_without_a_site_are_grouped_by_zone(zones: Path) -> None:
    rows = [
        row(A, "kamp-1", 7.4610, 51.5140),  # west
        row(B, "kamp-2", 7.4650, 51.5140),  # east
        row(C, "kamp-3", 7.4655, 51.5141),  # east
    ]
    line = pipeline(rows, {"zones": str(zones)})
    west = line.normalize(uplink(A, "08:00:00", "01"))
    assert only(west, "ParkingSpot")["refParkingSite"]["object"] == "urn:ngsi-ld:OnStreetParking:dortmund:a-west"
    site = only(west, "OnStreetParking")
    assert site["name"]["value"] == "a-west"  # no name in the file: the id
    assert site["location"]["value"] == {"type": "Polygon", "coordinates": [WEST]}
    assert counts(site) == (1, 0, 1, 1.0)
    east = only(line.normalize(uplink(B, "08:01:00", "00")), "OnStreetParking")
    assert east["id"] == "urn:ngsi-ld:OnStreetParking:dortmund:b-ost"
    assert east["name"]["value"] == "Kampstraße Ost"
    assert counts(east) == (2, 1, 0, 0.0)
    assert_valid([*west, east])


@pytest.mark.parametrize("order", [("b-ost", "a-west"), ("a-west", "b-ost")])
def test_a_spot_on_a_shared_border_goes_to_the_smallest_zone_id(tmp_path: Path, order: tuple[str, str]) -> None:
    rings = {"a-west": WEST, "b-ost": EAST}
    path = zones_file(tmp_path, [feature(zone_id, rings[zone_id]) for zone_id in order], f"{'-'.join(order)}.json")
    line = pipeline([row(A, "grenze", 7.463, 51.5145)], {"zones": str(path)})
    spot = only(line.normalize(uplink(A, "08:00:00", "01")), "ParkingSpot")
    assert spot["refParkingSite"]["object"] == "urn:ngsi-ld:OnStreetParking:dortmund:a-west"


def test_a_registry_site_wins_over_the_zone_and_takes_the_zone_polygon_of_its_id(tmp_path: Path) -> None:
    path = zones_file(tmp_path, [feature("hansastrasse", WEST, "Hansastraße"), feature("b-ost", EAST)])
    # In the east zone by position, but the registry names the site.
    line = pipeline([row(A, "hansa-1", 7.4650, 51.5140, "hansastrasse")], {"zones": str(path)})
    site = only(line.normalize(uplink(A, "08:00:00", "01")), "OnStreetParking")
    assert site["id"] == "urn:ngsi-ld:OnStreetParking:dortmund:hansastrasse"
    assert site["name"]["value"] == "Hansastraße"
    assert site["location"]["value"]["type"] == "Polygon"


def test_multipolygon_zone(tmp_path: Path) -> None:
    multi = {
        "type": "Feature",
        "properties": {"id": 17, "name": "Zone 17"},
        "geometry": {"type": "MultiPolygon", "coordinates": [[WEST], [FAR_EAST]]},
    }
    line = pipeline([row(A, "kamp-1", 7.4750, 51.5140)], {"zones": str(zones_file(tmp_path, [multi]))})
    entities = line.normalize(uplink(A, "08:00:00", "00"))
    site = only(entities, "OnStreetParking")
    assert site["id"] == "urn:ngsi-ld:OnStreetParking:dortmund:17"
    assert site["location"]["value"]["type"] == "MultiPolygon"
    assert_valid(entities)


def test_a_spot_in_no_zone_is_rejected_with_the_fix(zones: Path) -> None:
    line = pipeline([row(A, "irgendwo", 7.4700, 51.5200)], {"zones": str(zones)})
    with pytest.raises(RecordRejected) as caught:
        line.normalize(uplink(A, "08:00:00", "01"))
    reason = str(caught.value)
    assert A in reason
    assert "Irgendwo" in reason
    assert "no parking_site" in reason
    assert "no zone in zones.geojson covers its position (7.47, 51.52)" in reason
    assert "fill in parking_site" in reason


def test_a_spot_without_site_and_without_zones_is_rejected() -> None:
    line = pipeline([row(A, "irgendwo", 7.4700, 51.5200)])
    with pytest.raises(RecordRejected, match=r"no zones file is set \(\[adapters.lorawan.parking\] zones\)"):
        line.normalize(uplink(A, "08:00:00", "01"))
    # A frame without occupancy needs no site: the Device entity still goes out.
    assert [e["type"] for e in line.normalize(uplink(A, "08:01:00", "0a", port=4, fcnt=2))] == ["Device"]


def test_a_spot_that_changed_site_also_updates_its_old_site() -> None:
    line = pipeline(HANSA)
    line.normalize(uplink(A, "08:00:00", "01"))
    line.normalize(uplink(B, "08:01:00", "01", fcnt=2))
    line.commit()
    moved = [row(A, "hansa-1", 7.46163, 51.51472, "kampstrasse"), *HANSA[1:]]
    relocated = UplinkPipeline(
        network="chirpstack-v4",
        registry=DeviceRegistry.from_rows(moved, "test"),
        kinds={"parking": KIND},
        state=line.state,
    )
    entities = relocated.normalize(uplink(A, "08:10:00", "00", fcnt=3))
    old, new = by_type(entities, "OnStreetParking")
    assert old["id"].endswith(":hansastrasse")
    assert counts(old) == (2, 0, 1, 1.0)
    assert old["occupiedSpotNumber"]["observedAt"] == "2024-11-05T08:10:00Z"
    assert new["id"].endswith(":kampstrasse")
    assert counts(new) == (1, 1, 0, 0.0)


# ------------------------------------------------------------------------------------------
# The zones file


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("not json", "not JSON"),
        ({"type": "Feature"}, "must be a GeoJSON FeatureCollection"),
        ({"type": "FeatureCollection", "features": []}, "has no features"),
        ({"type": "FeatureCollection", "features": [feature("a b", WEST)]}, "properties.id 'a b' must be"),
        ({"type": "FeatureCollection", "features": [feature(None, WEST)]}, "properties.id None must be"),
        (
            {"type": "FeatureCollection", "features": [feature("a", WEST), feature("a", EAST)]},
            "zone id 'a' is used twice",
        ),
        ({"type": "FeatureCollection", "features": [feature("a", WEST[:-1])]}, "the last equal to the first"),
        (  # ETRS89 / UTM 32N, as German open data often comes
            {
                "type": "FeatureCollection",
                "features": [
                    feature("a", [[391000, 5708000], [391100, 5708000], [391100, 5708100], [391000, 5708000]])
                ],
            },
            "outside ±180: the file must be WGS84 lon/lat",
        ),
        (
            {"type": "FeatureCollection", "features": [feature("a", [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]])]},
            "invalid polygon: Self-intersection",
        ),
        (  # parts of a MultiPolygon must not share an edge
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"id": "a"},
                        "geometry": {"type": "MultiPolygon", "coordinates": [[WEST], [EAST]]},
                    }
                ],
            },
            "invalid polygon: Self-intersection",
        ),
        (
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {"id": "a"}, "geometry": {"type": "Point"}}],
            },
            "geometry must be a Polygon or MultiPolygon, got 'Point'",
        ),
    ],
)
def test_broken_zones_files_are_named_with_the_rule(tmp_path: Path, document: Any, fragment: str) -> None:
    path = tmp_path / "zones.geojson"
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    with pytest.raises(ZonesError) as caught:
        load_zones(str(path))
    assert fragment in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_broken_zones_file_rejects_the_parking_readings(tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text("{", encoding="utf-8")
    line = pipeline(HANSA, {"zones": str(path)})
    with pytest.raises(RecordRejected, match=r"\[adapters.lorawan.parking\] zones: .*broken.geojson: not JSON"):
        line.normalize(uplink(A, "08:00:00", "01"))


def test_zones_are_read_once_per_path(zones: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = parking._read_zones

    def counting(path: str) -> parking.Zones:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(parking, "_read_zones", counting)
    line = pipeline([row(A, "kamp-1", 7.4610, 51.5140), row(B, "kamp-2", 7.4650, 51.5140)], {"zones": str(zones)})
    for fcnt, dev_eui in enumerate((A, B, A, B), start=1):
        line.normalize(uplink(dev_eui, f"08:0{fcnt}:00", "01", fcnt=fcnt))
    assert reads == [str(zones)]
    assert load_zones(str(zones)) is load_zones(str(zones))


def test_relative_zones_path_is_resolved_against_the_base_dir(tmp_path: Path) -> None:
    assert _kind_settings({"zones": "zones/dortmund.geojson"}, tmp_path) == {
        "zones": str(tmp_path / "zones/dortmund.geojson")
    }
    assert _kind_settings({"zones": "/etc/zones.geojson"}, tmp_path) == {"zones": "/etc/zones.geojson"}
    assert _kind_settings({"due_threshold": 0.8}, tmp_path) == {"due_threshold": 0.8}


def test_kind_declaration() -> None:
    assert KIND.name == "parking"
    assert KIND.entity_types == ("ParkingSpot", "OnStreetParking")
    assert KIND.controlled_property == ("occupancy",)
    assert KIND.config_properties["zones"]["type"] == "string"

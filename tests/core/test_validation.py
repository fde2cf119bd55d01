"""adapters.core.validation: NGSI-LD structure first, then the project's data-model profile."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.core.entities import Entity, geo_point, make_entity, prop, relationship
from adapters.core.validation import entity_problems, profile_types, to_key_values

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def garage(**overrides: Any) -> Entity:
    """A conforming OffStreetParking, built the way adapters build them."""
    attributes = {
        "name": prop("Parkhaus Süd"),
        "location": geo_point(7.4653, 51.5136),
        "category": prop(["parkingGarage", "public"]),
        "status": prop(["open"]),
        "totalSpotNumber": prop(400),
        "availableSpotNumber": prop(100, observed_at=AT),
        "occupiedSpotNumber": prop(300, observed_at=AT),
        "occupancy": prop(0.75, observed_at=AT),
        "dataProvider": prop("Stadt Dortmund"),
        "source": prop("https://open-data.dortmund.de/parkhaeuser"),
        "refDevice": relationship("urn:ngsi-ld:Device:dortmund:counter-1"),
    }
    entity = make_entity("OffStreetParking", "dortmund", "Parkhaus Süd", attributes)
    for name, value in overrides.items():
        if value is None:
            entity.pop(name, None)
        else:
            entity[name] = value
    return entity


def only(problems: list[str], *needles: str) -> str:
    found = [p for p in problems if all(n in p for n in needles)]
    assert len(found) == 1, (needles, problems)
    return found[0]


def test_profile_exists_for_offstreetparking() -> None:
    assert "OffStreetParking" in profile_types()


def test_good_entity_has_no_problems() -> None:
    assert entity_problems(garage()) == []


def test_good_entity_with_context_has_no_problems() -> None:
    entity = garage()
    entity["@context"] = ["http://context-server/dos-adapters.jsonld"]
    assert entity_problems(entity) == []


def test_to_key_values() -> None:
    simplified = to_key_values(garage())
    assert simplified["id"] == "urn:ngsi-ld:OffStreetParking:dortmund:Parkhaus-Sued"
    assert simplified["location"] == {"type": "Point", "coordinates": [7.4653, 51.5136]}
    assert simplified["occupancy"] == 0.75
    assert simplified["refDevice"] == "urn:ngsi-ld:Device:dortmund:counter-1"
    assert "@context" not in to_key_values({**garage(), "@context": ["x"]})


@pytest.mark.parametrize(
    "bad_id",
    [
        "Parkhaus-Sued",
        "urn:ngsi-ld:OffStreetParking:Dortmund:x",  # tenants are lowercase
        "urn:ngsi-ld:OffStreetParking:dortmund:Parkhaus Süd",
        "urn:ngsi-ld:OffStreetParking:dortmund:",
        "urn:ngsi-ld:ParkingSpot:dortmund:x",  # type segment must match the type
        "http://example.org/parking/1",
    ],
)
def test_non_conforming_id(bad_id: str) -> None:
    problems = entity_problems(garage(id=bad_id))
    only(problems, f"id {bad_id!r}", "urn:ngsi-ld:OffStreetParking:<tenant>:<local id>")


def test_missing_type_stops_early() -> None:
    entity = garage()
    del entity["type"]
    assert entity_problems(entity) == ["entity has no type"]


def test_property_without_value() -> None:
    problems = entity_problems(garage(name={"type": "Property"}))
    only(problems, "name: Property without a value")


def test_property_with_null_value() -> None:
    only(entity_problems(garage(name={"type": "Property", "value": None})), "name: Property without a value")


def test_unknown_attribute_type() -> None:
    only(entity_problems(garage(name={"type": "Text", "value": "x"})), "name: not an NGSI-LD attribute")
    only(entity_problems(garage(name="Parkhaus Süd")), "name: not an NGSI-LD attribute")


def test_location_must_be_a_geoproperty() -> None:
    plain = {"type": "Property", "value": {"type": "Point", "coordinates": [7.46, 51.51]}}
    only(entity_problems(garage(location=plain)), "location: must be a GeoProperty")


def test_every_structural_problem_of_a_property_in_order() -> None:
    empty = {"type": "Property", "value": None, "observedAt": "today", "unitCode": 1}
    problems = entity_problems(garage(location=empty))
    assert problems[:4] == [
        "location: must be a GeoProperty",
        "location: Property without a value",
        "location.observedAt: must be UTC ISO 8601 ending in Z, got 'today'",
        "location.unitCode: must be a UN/CEFACT code string",
    ]
    nan = {"type": "Property", "value": {"type": "Point", "coordinates": [float("nan"), 51.5]}}
    assert entity_problems(garage(location=nan))[:2] == [
        "location: must be a GeoProperty",
        "location: NaN or Infinity is not JSON; the broker would refuse the whole batch",
    ]


def test_swapped_coordinates_out_of_range() -> None:
    # San Francisco as [lat, lon]: the second number cannot be a latitude.
    swapped = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [37.77, -122.42]}}
    problems = entity_problems(garage(location=swapped))
    only(problems, "location: position [37.77, -122.42] is not WGS84 [lon, lat]")


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Circle", "coordinates": [7.0, 51.0]}, "not a GeoJSON geometry"),
        ({"type": "Point", "coordinates": []}, "no positions"),
        ({"type": "Point", "coordinates": [7.0]}, "not WGS84"),
        ({"type": "Polygon", "coordinates": [[[7, 51], [8, 51], [8, 95], [7, 51]]]}, "not WGS84"),
        ("POINT(7 51)", "not a GeoJSON geometry"),
    ],
)
def test_bad_geometries(geometry: Any, message: str) -> None:
    problems = entity_problems(garage(location={"type": "GeoProperty", "value": geometry}))
    only(problems, "location:", message)


@pytest.mark.parametrize(
    "observed_at", ["2026-11-22T10:00:00", "2026-11-22T11:00:00+01:00", "2026-11-22 10:00:00Z", "yesterday", 1700000000]
)
def test_observed_at_must_be_utc_with_z(observed_at: object) -> None:
    attribute = {"type": "Property", "value": 100, "observedAt": observed_at}
    only(entity_problems(garage(availableSpotNumber=attribute)), "availableSpotNumber.observedAt", "ending in Z")


@pytest.mark.parametrize("observed_at", ["2026-11-22T10:00:00Z", "2026-11-22T10:00:00.123Z"])
def test_observed_at_in_utc_is_fine(observed_at: str) -> None:
    attribute = {"type": "Property", "value": 100, "observedAt": observed_at}
    assert entity_problems(garage(availableSpotNumber=attribute)) == []


@pytest.mark.parametrize(
    "target", ["counter-1", ["urn:ngsi-ld:Device:dortmund:a", "urn:ngsi-ld:Device:dortmund:b"], None]
)
def test_relationship_object_must_be_one_entity_id(target: object) -> None:
    problems = entity_problems(garage(refDevice={"type": "Relationship", "object": target}))
    only(problems, "refDevice: Relationship object must be one entity id")


def test_unit_code_must_be_a_string() -> None:
    attribute = {"type": "Property", "value": 100, "unitCode": 1}
    only(entity_problems(garage(availableSpotNumber=attribute)), "availableSpotNumber.unitCode")


@pytest.mark.parametrize("name", ["free spots", "a=b", "x;y", "bad(name)", 'q"uote'])
def test_attribute_names_orion_refuses(name: str) -> None:
    entity = garage()
    entity[name] = prop(1)
    only(entity_problems(entity), f"{name}: attribute name contains a character Orion-LD refuses")


def test_unknown_type_has_no_profile() -> None:
    entity = make_entity("NoiseLevelObserved", "dortmund", "station-1", {"temperature": prop(21.0, unit_code="CEL")})
    assert entity_problems(entity) == ["type NoiseLevelObserved: no data-model profile in datamodels/"]


def test_unknown_type_still_gets_structural_checks() -> None:
    entity = make_entity("NoiseLevelObserved", "dortmund", "station-1", {"temperature": {"type": "Property"}})
    problems = entity_problems(entity)
    assert "temperature: Property without a value" in problems
    assert "type NoiseLevelObserved: no data-model profile in datamodels/" in problems


def test_profile_violation_occupancy_above_one() -> None:
    problems = entity_problems(garage(occupancy=prop(1.5, observed_at=AT)))
    assert problems == [only(problems, "occupancy", "1.5", "(profile OffStreetParking)")]


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"availableSpotNumber": prop(12.5)}, ("availableSpotNumber", "integer")),
        ({"totalSpotNumber": prop(0)}, ("totalSpotNumber",)),
        ({"category": prop(["spaceship"])}, ("category", "spaceship")),
        ({"status": prop([])}, ("status",)),
        ({"dataProvider": None}, ("dataProvider", "required")),
        ({"source": prop("not a uri")}, ("source", "uri")),
        ({"occupancy": None}, ("occupancy", "availableSpotNumber")),  # dependentRequired
    ],
)
def test_profile_violations_name_the_attribute(overrides: dict[str, Any], needles: tuple[str, ...]) -> None:
    problems = entity_problems(garage(**overrides))
    assert problems, overrides
    only(problems, *needles, "(profile OffStreetParking)")


def test_all_problems_are_reported_together() -> None:
    entity = garage(
        id="bad-id",
        name={"type": "Property"},
        occupancy=prop(2.0),
        location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [200.0, 51.0]}},
    )
    problems = entity_problems(entity)
    only(problems, "id 'bad-id'")
    only(problems, "name: Property without a value")
    only(problems, "location: position")
    only(problems, "occupancy", "(profile OffStreetParking)")


def test_entity_problems_does_not_modify_the_entity() -> None:
    entity = garage(occupancy=prop(1.5))
    before = copy.deepcopy(entity)
    entity_problems(entity)
    assert entity == before


# --- the fast paths (plain WGS84 points, scalar values, cached name and time checks) still fire ---


NAN = float("nan")


class _Floats(list[Any]):
    """A list subclass: exact type tests miss it, the isinstance fallback must not."""


class _Mapping(dict[str, Any]):
    pass


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        [1.0, float("-inf")],
        {"a": {"b": [float("nan")]}},
        _Floats([float("nan")]),
        _Mapping(x=float("inf")),
    ],
)
def test_non_finite_values_are_found_wherever_they_are(value: Any) -> None:
    entity = garage()
    entity["extra"] = {"type": "Property", "value": value}
    only(entity_problems(entity), "extra: NaN or Infinity")


@pytest.mark.parametrize(
    ("geometry", "needles"),
    [
        ({"type": "Point", "coordinates": [float("nan"), 51.0]}, ("NaN or Infinity",)),
        ({"type": "Point", "coordinates": [float("nan"), 51.0]}, ("not WGS84",)),
        ({"type": "Point", "coordinates": [7.0, 51.0], "bbox": [float("inf")]}, ("NaN or Infinity",)),
        ({"type": "Point", "coordinates": [200.0, 51.0]}, ("not WGS84",)),
        ({"type": "Point", "coordinates": [7.0, -91.0]}, ("not WGS84",)),
        ({"type": "Point", "coordinates": [True, 51.0]}, ("no positions",)),
        ({"type": "Point", "coordinates": (7.0, 51.0)}, ("no positions",)),
        ({"type": "Point"}, ("no positions",)),
        ({"type": "Polygon", "coordinates": [[[7.0, 51.0], [8.0, 51.0], [8.0, NAN], [7.0, 51.0]]]}, ("NaN",)),
        ({"type": "Polygon", "coordinates": [[[7.0, 51.0], [8.0, 51.0], [8.0, NAN], [7.0, 51.0]]]}, ("not WGS84",)),
        ({"type": "MultiPolygon", "coordinates": [[[[7.0, 51.0], [8.0, 51.0], [8.0, 95.0], [7.0, 51.0]]]]}, ("WGS84",)),
        ({"type": "Polygon", "coordinates": [[]]}, ("no positions",)),
        ({"type": "LineString", "coordinates": [[7.0, 51.0, float("inf")], [7.1, 51.1, 0.0]]}, ("NaN",)),
    ],
)
def test_geometry_problems_are_found(geometry: dict[str, Any], needles: tuple[str, ...]) -> None:
    problems = entity_problems(garage(location={"type": "GeoProperty", "value": geometry}))
    only(problems, "location:", *needles)


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Point", "coordinates": [7, 51]},
        {"type": "Point", "coordinates": [7.4653, 51.5136, 86.4]},
        {"type": "Point", "coordinates": [-180.0, -90.0]},
        {"type": "Point", "coordinates": [180.0, 90.0]},
        {"type": "Point", "coordinates": [7, 51.5], "bbox": [7, 51.5, 7, 51.5]},
        {"type": "Polygon", "coordinates": [[[7.0, 51.0], [8.0, 51.0], [8.0, 52.0], [7.0, 51.0]]]},
        {"type": "Polygon", "coordinates": [[[7, 51], [8, 51], [8, 52], [7, 51]]]},
        {
            "type": "MultiPolygon",
            "coordinates": [[[[7.0, 51.0, 1.0], [8.0, 51.0, 1.0], [8.0, 52.0, 1.0], [7.0, 51.0, 1.0]]]],
        },
    ],
)
def test_geometries_that_are_fine(geometry: dict[str, Any]) -> None:
    """Structurally fine (the OffStreetParking profile itself wants a Point: its complaints are not counted)."""
    problems = entity_problems(garage(location={"type": "GeoProperty", "value": geometry}))
    assert [problem for problem in problems if "(profile " not in problem] == []


def test_cached_checks_fire_every_time() -> None:
    for _ in range(3):
        entity = garage()
        entity["free spots"] = prop(1)
        entity["availableSpotNumber"] = {"type": "Property", "value": 100, "observedAt": "2026-11-22T10:00:00"}
        problems = entity_problems(entity)
        only(problems, "free spots: attribute name contains")
        only(problems, "availableSpotNumber.observedAt")


def test_a_lone_surrogate_in_a_text_value_is_a_problem_not_an_exception() -> None:
    attributes = {"name": prop("Parkhaus \ud800 Mitte"), "location": geo_point(7.46, 51.51)}
    entity = make_entity("OffStreetParking", "dortmund", "p1", attributes)
    (problem,) = entity_problems(entity)
    assert "not valid Unicode" in problem and "Parkhaus" in problem

"""adapters.core.entities: ids, times and attribute shapes that Orion-LD and QuantumLeap accept."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.core.entities import (
    EntityError,
    entity_id,
    geo_point,
    geo_property,
    local_id,
    make_entity,
    prop,
    relationship,
    tenant_name,
    utc_iso,
)
from adapters.core.validation import ENTITY_ID

SAFE_LOCAL_ID = re.compile(r"^[A-Za-z0-9._~-]+$")
NOON = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


# --- ids -----------------------------------------------------------------------------------------


def test_entity_id_follows_the_urn_scheme() -> None:
    assert entity_id("OffStreetParking", "dortmund", "P12") == "urn:ngsi-ld:OffStreetParking:dortmund:P12"


def test_entity_id_lowercases_the_tenant_and_sanitises_the_local_id() -> None:
    assert entity_id("WeatherObserved", "Dortmund", "Station 7") == "urn:ngsi-ld:WeatherObserved:dortmund:Station-7"


def test_entity_id_accepts_non_string_source_ids() -> None:
    assert entity_id("Device", "dortmund", 42) == "urn:ngsi-ld:Device:dortmund:42"


@pytest.mark.parametrize("bad_type", ["", "Off Street", "1Parking", "Off:Street", "urn:ngsi-ld:X", "Parkhaus-Süd"])
def test_entity_id_refuses_type_names_that_are_not_sdm_names(bad_type: str) -> None:
    with pytest.raises(EntityError, match="entity type"):
        entity_id(bad_type, "dortmund", "x")


def test_entity_id_cannot_be_hijacked_by_colons_in_the_source_id() -> None:
    # A source id "other:evil" must not make the id look like tenant "other" or add URN segments.
    identifier = entity_id("OffStreetParking", "dortmund", "x:OffStreetParking:other:evil")
    assert identifier.count(":") == 4
    assert identifier.split(":")[:4] == ["urn", "ngsi-ld", "OffStreetParking", "dortmund"]
    assert ENTITY_ID.match(identifier)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("P12", "P12"),
        ("a:b", "a-b"),
        ("urn:ngsi-ld:X:y", "urn-ngsi-ld-X-y"),
        ("Station 7", "Station-7"),
        ("  padded\t", "padded"),
        ("tab\tand\nnewline", "tab-and-newline"),
        ("a   b", "a-b"),
        ("Parkhaus Süd", "Parkhaus-Sued"),
        ("Größe", "Groesse"),
        ("Äußere Ölmühle", "Aeussere-Oelmuehle"),
        ("Straße", "Strasse"),
        ("café", "cafe"),
        ("a/b?c#d", "a-b-c-d"),
        ("keep._~-this", "keep._~-this"),
        (17, "17"),
    ],
)
def test_local_id_sanitises(raw: object, expected: str) -> None:
    assert local_id(raw) == expected


def test_local_id_transliterates_decomposed_umlauts_like_composed_ones() -> None:
    decomposed = "Su\u0308d"  # u + COMBINING DIAERESIS, as some sources send it
    assert local_id(decomposed) == local_id("Süd") == "Sued"


@pytest.mark.parametrize("raw", ["", "   ", ":::", "---", "日本", "\u200b"])
def test_local_id_refuses_ids_with_nothing_usable(raw: str) -> None:
    with pytest.raises(EntityError, match="local id"):
        local_id(raw)


def _local_id_reference(raw: object) -> str:
    """local_id without its fast path for ids that are already safe ASCII."""
    umlauts = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
    text = unicodedata.normalize("NFKC", str(raw)).translate(umlauts)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9._~-]+", "-", text).strip("-")


@given(st.one_of(st.text(), st.text(alphabet="AZaz09._~- :"), st.integers()))
def test_local_id_fast_path_changes_nothing(raw: str | int) -> None:
    expected = _local_id_reference(raw)
    if expected:
        assert local_id(raw) == expected
    else:
        with pytest.raises(EntityError, match="local id"):
            local_id(raw)


@given(st.one_of(st.text(), st.integers()))
def test_local_id_is_safe_and_stable(raw: str | int) -> None:
    try:
        first = local_id(raw)
    except EntityError:
        return
    assert ":" not in first
    assert not any(char.isspace() for char in first)
    assert SAFE_LOCAL_ID.match(first)
    assert not first.startswith("-")
    assert not first.endswith("-")
    assert local_id(raw) == first  # deterministic
    assert local_id(first) == first  # idempotent: sanitising an id again changes nothing


# --- tenants -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("dortmund", "dortmund"), ("Dortmund", "dortmund"), (" unna_kreis-2 ", "unna_kreis-2"), ("x" * 50, "x" * 50)],
)
def test_tenant_name_lowercases_and_accepts_orion_charset(raw: str, expected: str) -> None:
    assert tenant_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "x" * 51, "dort mund", "dört", "a.b", "a:b", "a/b", "tenant;drop"])
def test_tenant_name_refuses_what_orion_refuses(raw: str) -> None:
    with pytest.raises(EntityError, match="tenant"):
        tenant_name(raw)


def test_entity_id_refuses_a_bad_tenant() -> None:
    with pytest.raises(EntityError, match="tenant"):
        entity_id("Device", "bad tenant", "x")


# --- times ---------------------------------------------------------------------------------------


def test_utc_iso_ends_in_z() -> None:
    assert utc_iso(NOON) == "2026-11-22T10:00:00Z"


def test_utc_iso_converts_offsets_to_utc() -> None:
    berlin_winter = timezone(timedelta(hours=1))
    assert utc_iso(datetime(2026, 11, 22, 11, 0, tzinfo=berlin_winter)) == "2026-11-22T10:00:00Z"
    assert utc_iso(datetime(2026, 1, 1, 0, 30, tzinfo=berlin_winter)) == "2025-12-31T23:30:00Z"
    west = timezone(timedelta(hours=-5, minutes=-30))
    assert utc_iso(datetime(2026, 11, 22, 4, 30, tzinfo=west)) == "2026-11-22T10:00:00Z"


def test_utc_iso_refuses_naive_times() -> None:
    with pytest.raises(EntityError, match="no time zone"):
        utc_iso(datetime(2026, 11, 22, 10, 0))


def test_utc_iso_keeps_millisecond_precision_and_drops_the_rest() -> None:
    assert utc_iso(NOON.replace(microsecond=123456)) == "2026-11-22T10:00:00.123Z"
    assert utc_iso(NOON.replace(microsecond=999999)) == "2026-11-22T10:00:00.999Z"


def test_utc_iso_of_equal_moments_is_equal() -> None:
    other_zone = NOON.astimezone(timezone(timedelta(hours=3)))
    assert utc_iso(other_zone) == utc_iso(NOON)


def test_utc_iso_tells_the_two_readings_of_a_dst_fold_apart() -> None:
    # 02:30 happens twice in Berlin on 2024-10-27; both datetimes compare and hash equal, so the
    # text cache must not be keyed by them.
    berlin = ZoneInfo("Europe/Berlin")
    first, second = (datetime(2024, 10, 27, 2, 30, fold=fold, tzinfo=berlin) for fold in (0, 1))
    assert first == second
    assert utc_iso(first) == "2024-10-27T00:30:00Z"
    assert utc_iso(second) == "2024-10-27T01:30:00Z"
    assert utc_iso(first) == "2024-10-27T00:30:00Z"


def _utc_iso_reference(moment: datetime) -> str:
    """utc_iso before its caches, to prove they change nothing."""
    utc = moment.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds" if utc.microsecond else "seconds").replace("+00:00", "Z")


@given(
    st.datetimes(
        timezones=st.sampled_from([UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/St_Johns"), timezone.min]),
        allow_imaginary=False,
    )
)
def test_utc_iso_matches_the_plain_conversion(moment: datetime) -> None:
    assert utc_iso(moment) == _utc_iso_reference(moment)
    assert utc_iso(moment) == _utc_iso_reference(moment)  # the second call is served from the caches


# --- attributes ----------------------------------------------------------------------------------


def test_prop_shape() -> None:
    assert prop(21.5, observed_at=NOON, unit_code="CEL") == {
        "type": "Property",
        "value": 21.5,
        "observedAt": "2026-11-22T10:00:00Z",
        "unitCode": "CEL",
    }
    assert prop("open") == {"type": "Property", "value": "open"}


@pytest.mark.parametrize("value", [0, 0.0, False, "", [], {"a": 1}])
def test_prop_keeps_falsy_but_present_values(value: object) -> None:
    assert prop(value)["value"] == value


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_prop_refuses_null_and_non_finite(value: object) -> None:
    with pytest.raises(EntityError):
        prop(value)


def test_prop_refuses_naive_observed_at() -> None:
    with pytest.raises(EntityError, match="time zone"):
        prop(1, observed_at=datetime(2026, 11, 22, 10, 0))


def test_geo_point_is_lon_lat() -> None:
    assert geo_point(7.4653, 51.5136) == {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [7.4653, 51.5136]},
    }


def test_geo_point_coordinates_are_floats_even_from_ints() -> None:
    coordinates = geo_point(7, 51)["value"]["coordinates"]
    assert coordinates == [7.0, 51.0]
    assert all(isinstance(c, float) for c in coordinates)
    assert json.dumps(coordinates) == "[7.0, 51.0]"


@pytest.mark.parametrize(("lon", "lat"), [(180, 90), (-180, -90), (0, 0)])
def test_geo_point_accepts_the_range_edges(lon: float, lat: float) -> None:
    assert geo_point(lon, lat)["value"]["coordinates"] == [float(lon), float(lat)]


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        (7.46, 91.0, "latitude"),
        (7.46, -90.5, "latitude"),
        (180.1, 51.5, "longitude"),
        (-181, 0, "longitude"),
        (math.nan, 51.5, "longitude"),
        (7.46, math.inf, "latitude"),
        ("7.46", 51.5, "longitude"),
        (True, 51.5, "longitude"),
        (7.46, None, "latitude"),
    ],
)
def test_geo_point_refuses_out_of_range_and_non_numbers(lon: object, lat: object, message: str) -> None:
    with pytest.raises(EntityError, match=message):
        geo_point(lon, lat)  # type: ignore[arg-type]


def test_geo_point_catches_swapped_coordinates_when_out_of_range() -> None:
    # San Francisco given as [lat, lon]: -122.4 cannot be a latitude.
    with pytest.raises(EntityError, match="latitude"):
        geo_point(37.77, -122.42)


def test_geo_property_needs_a_geometry() -> None:
    polygon = {"type": "Polygon", "coordinates": [[[7, 51], [8, 51], [8, 52], [7, 51]]]}
    assert geo_property(polygon) == {"type": "GeoProperty", "value": polygon}
    with pytest.raises(EntityError):
        geo_property({"type": "Point"})
    with pytest.raises(EntityError):
        geo_property({"coordinates": [7, 51]})


def test_geo_property_copies_the_geometry() -> None:
    geometry = {"type": "Point", "coordinates": [7.0, 51.0]}
    attribute = geo_property(geometry)
    geometry["type"] = "LineString"
    assert attribute["value"]["type"] == "Point"


def test_relationship_shape() -> None:
    target = "urn:ngsi-ld:Device:dortmund:sensor-1"
    assert relationship(target) == {"type": "Relationship", "object": target}
    assert relationship(target, observed_at=NOON)["observedAt"] == "2026-11-22T10:00:00Z"


@pytest.mark.parametrize("target", ["sensor-1", "", "http://example.org/x", "URN-less:thing"])
def test_relationship_needs_an_entity_urn(target: str) -> None:
    with pytest.raises(EntityError, match="urn"):
        relationship(target)


# --- entities ------------------------------------------------------------------------------------


def _parking() -> dict[str, object]:
    return make_entity(
        "OffStreetParking",
        "Dortmund",
        "Parkhaus Süd",
        {"name": prop("Parkhaus Süd"), "location": geo_point(7.46, 51.51), "availableSpotNumber": prop(12)},
        context=["http://context-server/dos-adapters.jsonld"],
    )


def test_make_entity_assembles_id_type_attributes_and_context_in_order() -> None:
    entity = _parking()
    assert list(entity) == ["id", "type", "name", "location", "availableSpotNumber", "@context"]
    assert entity["id"] == "urn:ngsi-ld:OffStreetParking:dortmund:Parkhaus-Sued"
    assert entity["type"] == "OffStreetParking"
    assert entity["@context"] == ["http://context-server/dos-adapters.jsonld"]


def test_make_entity_without_context_has_no_context_key() -> None:
    assert "@context" not in make_entity("Device", "dortmund", "d1", {"name": prop("d")})


@pytest.mark.parametrize("reserved", ["id", "type", "@context"])
def test_make_entity_refuses_reserved_attribute_names(reserved: str) -> None:
    with pytest.raises(EntityError, match="reserved"):
        make_entity("Device", "dortmund", "d1", {reserved: prop("x")})


def test_make_entity_names_the_first_reserved_attribute() -> None:
    attributes = {"name": prop("d"), "@context": prop("x"), "id": prop("y")}
    with pytest.raises(EntityError, match="'@context' is reserved"):
        make_entity("Device", "dortmund", "d1", attributes)


def test_entity_id_checks_type_and_tenant_on_every_call() -> None:
    """The id prefix is cached per (type, tenant); a refusal must never be."""
    for _ in range(2):
        with pytest.raises(EntityError, match="tenant"):
            entity_id("Device", "bad tenant", "x")
        with pytest.raises(EntityError, match="entity type"):
            entity_id("not a type", "dortmund", "x")
    assert entity_id("Device", " Dortmund ", "x") == "urn:ngsi-ld:Device:dortmund:x"


def test_make_entity_is_deterministic_to_the_byte() -> None:
    first = json.dumps(_parking(), ensure_ascii=False)
    second = json.dumps(_parking(), ensure_ascii=False)
    assert first == second

"""adapters.buildings.geo: CRS spellings, zone prefix, transformation accuracy, footprint repair and rejection."""

from __future__ import annotations

import math

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon, shape

from adapters.buildings import geo
from adapters.buildings.geo import GeoError, crs_code, geometry_from_geojson, geometry_from_wkt, normalise_geometry

# Dortmund Rathaus, Friedensplatz 1: the approximate WGS84 position the building issue names. The
# claim under test is that our chain puts UTM coordinates there, not where the building's walls are.
RATHAUS = (7.4663, 51.5117)
# Essen, Willekestr. 4, as the city's house-coordinates WFS serves it (SOURCES.md §5,
# tobwen/hauskoordinaten_essen:download/100.gml): srsName urn:ogc:def:crs:EPSG::102329, zone prefix.
ESSEN_WILLEKESTR_4 = (32366996.51, 5701222.001)
# Essen city limits, generously: the point must land in Essen, not merely in Germany.
ESSEN_BBOX = (6.89, 51.34, 7.14, 51.54)


def utm32_independent(lon: float, lat: float) -> tuple[float, float]:
    """UTM zone 32N on GRS80 by the Krüger n-series to third order (Karney 2011; the "simplified
    formulae" of the Wikipedia UTM article): an implementation that shares no code with PROJ."""
    a, f = 6378137.0, 1 / 298.257222101
    n = f / (2 - f)
    big_a = a / (1 + n) * (1 + n**2 / 4 + n**4 / 64)
    alpha = (n / 2 - 2 * n**2 / 3 + 5 * n**3 / 16, 13 * n**2 / 48 - 3 * n**3 / 5, 61 * n**3 / 240)
    phi, lam = math.radians(lat), math.radians(lon - 9)
    c = 2 * math.sqrt(n) / (1 + n)
    t = math.sinh(math.atanh(math.sin(phi)) - c * math.atanh(c * math.sin(phi)))
    xi, eta = math.atan2(t, math.cos(lam)), math.atanh(math.sin(lam) / math.sqrt(1 + t * t))
    terms = list(enumerate(alpha, start=1))
    easting = 500000 + 0.9996 * big_a * (
        eta + sum(a_j * math.cos(2 * j * xi) * math.sinh(2 * j * eta) for j, a_j in terms)
    )
    northing = 0.9996 * big_a * (xi + sum(a_j * math.sin(2 * j * xi) * math.cosh(2 * j * eta) for j, a_j in terms))
    return easting, northing


def metres_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine, mean earth radius): good to well under a metre at this range."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


def square(cx: float, cy: float, side: float, *, clockwise: bool = True) -> Polygon:
    h = side / 2
    ring = [(cx - h, cy - h), (cx - h, cy + h), (cx + h, cy + h), (cx + h, cy - h), (cx - h, cy - h)]
    return Polygon(ring if clockwise else ring[::-1])


# ------------------------------------------------------------------------------------------ CRS


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("EPSG:25832", "EPSG:25832"),
        ("epsg:25832", "EPSG:25832"),
        ("urn:ogc:def:crs:EPSG::25832", "EPSG:25832"),
        ("http://www.opengis.net/def/crs/EPSG/0/25832", "EPSG:25832"),
        ("25832", "EPSG:25832"),
        ("EPSG:4647", "EPSG:4647"),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326"),
        ("OGC:CRS84", "EPSG:4326"),
        ("urn:ogc:def:crs:EPSG::4326", "EPSG:4326"),
        ("WGS84", "EPSG:4326"),
        ("urn:ogc:def:crs:EPSG::102329", "ESRI:102329"),  # an Esri code travelling as EPSG (Essen WFS)
        ("ESRI:102329", "ESRI:102329"),
        ("EPSG:31466", "EPSG:31466"),
    ],
)
def test_crs_spellings_of_exports(declared: str, expected: str) -> None:
    assert crs_code(declared) == expected


@pytest.mark.parametrize("declared", ["EPSG:999999", "Gauss-Krüger", "urn:ogc:def:crs:EPSG::"])
def test_unknown_crs_is_refused(declared: str) -> None:
    with pytest.raises(GeoError, match="unknown"):
        crs_code(declared)


def test_esri_8stellen_is_the_zone_prefixed_utm32() -> None:
    """ESRI:102329 and EPSG:4647 are the same projection (false easting 32 500 000 m)."""
    essen = geo.transformer("ESRI:102329", geo.WGS84).transform(*ESSEN_WILLEKESTR_4)
    same = geo.transformer("EPSG:4647", geo.WGS84).transform(*ESSEN_WILLEKESTR_4)
    plain = geo.transformer("EPSG:25832", geo.WGS84).transform(
        ESSEN_WILLEKESTR_4[0] - 32_000_000, ESSEN_WILLEKESTR_4[1]
    )
    assert metres_between(essen, same) < 0.001
    assert metres_between(essen, plain) < 0.001


# --------------------------------------------------------------------------- transformation accuracy


@pytest.mark.parametrize("position", [RATHAUS, (7.53338, 51.49108), (7.5640, 51.4450), (6.2, 51.0), (9.99, 53.55)])
def test_pyproj_agrees_with_an_independent_utm_implementation(position: tuple[float, float]) -> None:
    easting, northing = geo.transformer(geo.WGS84, geo.METRIC_CRS).transform(*position)
    independent = utm32_independent(*position)
    assert abs(easting - independent[0]) < 0.001
    assert abs(northing - independent[1]) < 0.001


def test_rathaus_utm_coordinates_lie_in_the_dortmund_city_model_extent() -> None:
    """SOURCES.md §5: the Dortmund LoD2 catalogue in EPSG:25832 spans E 392192-395264, N 5704704-5708800."""
    easting, northing = utm32_independent(*RATHAUS)
    assert 392192 <= easting <= 395264
    assert 5704704 <= northing <= 5708800


@pytest.mark.parametrize(
    ("prefix", "declared"), [(0.0, "EPSG:25832"), (32_000_000.0, "EPSG:25832"), (32_000_000.0, "ESRI:102329")]
)
def test_a_rathaus_footprint_in_utm_lands_within_a_metre_of_the_rathaus(prefix: float, declared: str) -> None:
    easting, northing = utm32_independent(*RATHAUS)
    footprint = normalise_geometry(square(easting + prefix, northing, 50.0), declared)
    assert metres_between(footprint.centroid, RATHAUS) < 1.0
    assert footprint.area_m2 == pytest.approx(2500.0, abs=0.01)
    assert footprint.crs == ("EPSG:25832" if prefix == 0 else declared if declared != "EPSG:25832" else "EPSG:4647")


def test_essen_house_coordinate_lands_in_essen() -> None:
    footprint = normalise_geometry(Point(*ESSEN_WILLEKESTR_4), "EPSG:25832")  # declared plain, written prefixed
    lon, lat = footprint.geometry["coordinates"]
    west, south, east, north = ESSEN_BBOX
    assert west < lon < east and south < lat < north
    assert footprint.crs == "EPSG:4647"


# ------------------------------------------------------------------------------------- repairs


def wgs84_shape(footprint: geo.Footprint) -> Polygon | MultiPolygon:
    return shape(footprint.geometry)


def test_bow_tie_becomes_its_two_triangles() -> None:
    x, y = utm32_independent(*RATHAUS)
    bow_tie = Polygon([(x, y), (x + 30, y + 20), (x + 30, y), (x, y + 20), (x, y)])
    footprint = normalise_geometry(bow_tie, "EPSG:25832")
    result = wgs84_shape(footprint)
    assert isinstance(result, MultiPolygon) and len(result.geoms) == 2
    assert result.is_valid
    assert footprint.area_m2 == pytest.approx(300.0, abs=0.5)
    assert any("self-intersection" in note for note in footprint.repairs)


def test_repeated_points_are_removed_and_rings_oriented_per_rfc_7946() -> None:
    x, y = utm32_independent(*RATHAUS)
    ring = [(x, y), (x, y + 20), (x, y + 20), (x + 0.004, y + 20.003), (x + 25, y + 20), (x + 25, y), (x, y)]
    footprint = normalise_geometry(Polygon(ring), "EPSG:25832")
    assert len(footprint.geometry["coordinates"][0]) == 5
    assert footprint.repairs == ("2 repeated point(s) removed",)  # re-orienting is no repair
    assert Polygon(footprint.geometry["coordinates"][0]).exterior.is_ccw


def test_holes_come_out_clockwise_and_shells_counter_clockwise() -> None:
    x, y = utm32_independent(*RATHAUS)
    courtyard = Polygon(
        [(x, y), (x + 40, y), (x + 40, y + 40), (x, y + 40)],
        [[(x + 10, y + 10), (x + 10, y + 30), (x + 30, y + 30), (x + 30, y + 10)]],
    )
    footprint = normalise_geometry(courtyard, "EPSG:25832")
    result = wgs84_shape(footprint)
    assert isinstance(result, Polygon)
    assert result.exterior.is_ccw and not result.interiors[0].is_ccw
    assert footprint.area_m2 == pytest.approx(1200.0, abs=0.01)


def test_a_spike_is_cut_off() -> None:
    x, y = utm32_independent(*RATHAUS)
    spike = Polygon(
        [
            (x, y),
            (x, y + 20),
            (x + 10, y + 20),
            (x + 10, y + 35),
            (x + 10, y + 20),
            (x + 20, y + 20),
            (x + 20, y),
            (x, y),
        ]
    )
    footprint = normalise_geometry(spike, "EPSG:25832")
    assert footprint.area_m2 == pytest.approx(400.0, abs=0.01)
    assert wgs84_shape(footprint).is_valid


def test_an_unclosed_geojson_ring_is_closed() -> None:
    shape_, repairs = geometry_from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0]]]})
    assert repairs == ["unclosed ring closed"]
    assert shapely.get_num_coordinates(shape_) == 5


def test_output_is_on_the_1e7_degree_grid_and_valid() -> None:
    x, y = utm32_independent(*RATHAUS)
    footprint = normalise_geometry(square(x, y, 17.3), "EPSG:25832")
    for lon, lat in footprint.geometry["coordinates"][0]:
        assert round(lon, 7) == lon and round(lat, 7) == lat
    assert wgs84_shape(footprint).is_valid


# ----------------------------------------------------------------------------------- rejections


def test_collinear_footprint_cannot_be_repaired() -> None:
    x, y = utm32_independent(*RATHAUS)
    with pytest.raises(GeoError, match="cannot be repaired"):
        normalise_geometry(Polygon([(x, y), (x + 10, y), (x + 20, y), (x, y)]), "EPSG:25832")


def test_too_small_footprint_is_refused() -> None:
    x, y = utm32_independent(*RATHAUS)
    with pytest.raises(GeoError, match=r"0\.25 m², below min_area_m2 1"):
        normalise_geometry(square(x, y, 0.5), "EPSG:25832")
    assert normalise_geometry(square(x, y, 0.5), "EPSG:25832", min_area_m2=0.1).area_m2 == pytest.approx(0.25)


def test_a_ring_needs_three_distinct_positions() -> None:
    with pytest.raises(GeoError, match="at least 3 distinct positions"):
        geometry_from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0], [1, 1]]]})


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Polygon", "coordinates": [[[0, 0], [0, "1"], [1, 1], [0, 0]]]},
        {"type": "Polygon", "coordinates": [[[0, 0], [0, True], [1, 1], [0, 0]]]},
        {"type": "Polygon", "coordinates": [[[0, 0], [0, float("nan")], [1, 1], [0, 0]]]},
        {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
        {"type": "Polygon", "coordinates": []},
        {"type": "Point", "coordinates": [1]},
    ],
)
def test_unreadable_geometries_are_refused(geometry: dict[str, object]) -> None:
    with pytest.raises(GeoError):
        geometry_from_geojson(geometry)


def test_utm_metres_declared_as_wgs84_name_the_fix() -> None:
    x, y = utm32_independent(*RATHAUS)
    with pytest.raises(GeoError, match=r'not lon/lat degrees but the CRS is EPSG:4326.*crs = "EPSG:25832"'):
        normalise_geometry(square(x, y, 20), "EPSG:4326")


def test_lon_lat_declared_as_utm_name_the_fix() -> None:
    with pytest.raises(GeoError, match="look like lon/lat degrees but the CRS is EPSG:25832"):
        normalise_geometry(square(7.4663, 51.5117, 0.0005), "EPSG:25832")


def test_gauss_krueger_numbers_declared_as_utm_are_refused() -> None:
    with pytest.raises(GeoError, match="Gauss-Krüger exports are EPSG:31466 or EPSG:31467"):
        normalise_geometry(square(2602345.0, 5711234.0, 20), "EPSG:25832")


def test_gauss_krueger_declared_as_such_is_transformed() -> None:
    footprint = normalise_geometry(Point(2602345.12, 5711234.56), "EPSG:31466")
    assert metres_between(footprint.centroid, (7.4741, 51.5263)) < 20


def test_mixed_prefix_in_one_geometry_is_refused() -> None:
    x, y = utm32_independent(*RATHAUS)
    mixed = Polygon([(x, y), (x + 32_000_000, y + 20), (x + 20, y + 20), (x, y)])
    with pytest.raises(GeoError, match="with and without the zone prefix"):
        normalise_geometry(mixed, "EPSG:25832")


def test_swapped_lat_lon_is_named() -> None:
    swapped = square(51.5117, 7.4663, 0.0005)
    with pytest.raises(GeoError, match="look swapped"):
        normalise_geometry(swapped, "EPSG:4326", bbox=(5.8, 47.2, 15.1, 55.1))


def test_outside_the_bbox_is_refused() -> None:
    with pytest.raises(GeoError, match="outside the configured bbox"):
        normalise_geometry(Point(*RATHAUS), "EPSG:4326", bbox=(7.5, 51.3, 7.7, 51.65))


def test_outside_the_crs_area_of_use_is_refused() -> None:
    # Gauss-Krüger zone 2 is defined west of 7°30'E; an easting 400 km east of its meridian is not in it.
    with pytest.raises(GeoError, match="outside the area of use of EPSG:31466"):
        normalise_geometry(Point(2_900_000.0, 5_711_234.0), "EPSG:31466")


# --------------------------------------------------------------------------------------------- WKT


def test_ewkt_srid_and_z_are_read() -> None:
    shape_, srid, repairs = geometry_from_wkt("SRID=25832;POLYGON Z ((0 0 5, 0 10 5, 10 10 5, 10 0 5, 0 0 5))")
    assert srid == "EPSG:25832"
    assert not shape_.has_z
    assert repairs == []


@pytest.mark.parametrize("text", ["POLYGON ((1 2, 3", "LINESTRING (0 0, 1 1)", "POLYGON EMPTY"])
def test_broken_or_wrong_wkt_is_refused(text: str) -> None:
    with pytest.raises(GeoError):
        geometry_from_wkt(text)


# ------------------------------------------------------------------------------------ any ring


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-60, 60, allow_nan=False), st.floats(-60, 60, allow_nan=False)), min_size=3, max_size=12
    )
)
def test_any_ring_becomes_a_valid_footprint_or_a_reason(offsets: list[tuple[float, float]]) -> None:
    """Whatever outline an export holds: a valid, RFC 7946-oriented WGS84 footprint, or a GeoError."""
    x, y = utm32_independent(*RATHAUS)
    ring = [(x + dx, y + dy) for dx, dy in offsets]
    try:
        shape_, repairs = geometry_from_geojson({"type": "Polygon", "coordinates": [[list(p) for p in ring]]})
        footprint = normalise_geometry(shape_, "EPSG:25832", repairs=repairs)
    except GeoError:
        return
    result = wgs84_shape(footprint)
    assert result.is_valid and not result.is_empty
    assert footprint.area_m2 >= 1.0
    for polygon in result.geoms if isinstance(result, MultiPolygon) else [result]:
        assert polygon.exterior.is_ccw and not any(ring.is_ccw for ring in polygon.interiors)
    assert metres_between(footprint.centroid, RATHAUS) < 100

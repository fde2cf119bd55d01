"""Coordinates of municipal GIS exports -> WGS84, and building footprints checked and repaired.

German municipal GIS exports give footprints in ETRS89 / UTM zone 32N (EPSG:25832), sometimes
with the zone number in front of the easting (``32393571.8`` instead of ``393571.8``: EPSG:4647,
"zE-N", or Esri's ESRI:102329 "8stellen", as the Essen house-coordinates WFS declares it), and
sometimes already in WGS84. What we do:

* **Which CRS.** The file's own declaration wins (GeoJSON ``crs`` member, a CSV column, an EWKT
  ``SRID=``); where there is none, the configured CRS applies (default: WGS84, as RFC 7946 says
  for GeoJSON). :func:`crs_code` reads the spellings seen in exports (``EPSG:25832``,
  ``urn:ogc:def:crs:EPSG::25832``, ``http://www.opengis.net/def/crs/EPSG/0/25832``, ``25832``,
  ``urn:ogc:def:crs:OGC:1.3:CRS84``) and falls back to the Esri authority for codes EPSG does
  not know (``urn:ogc:def:crs:EPSG::102329``).
* **Zone prefix.** In the UTM 32N family the data decides: eastings of 32 000 000 and more are
  read as EPSG:4647, eastings below 1 000 000 as EPSG:25832, whatever the declaration says; a
  geometry mixing both is refused.
* **Sanity.** Numbers that cannot be in the CRS are refused before anything is computed (UTM
  metres declared as WGS84, lon/lat declared as UTM); after the transformation the geometry must
  lie in the CRS's area of use and inside the configured bounding box (a swapped lat/lon is named
  as such).
* **Repair** happens in metres (EPSG:25832): repeated points closer than 1 cm are dropped, an
  invalid polygon is rebuilt with GEOS ``make_valid`` (method ``structure``: a bow-tie becomes its
  two triangles, a spike or a collapsed ring part is dropped), only polygonal parts are kept. What
  is left must have an area of at least ``min_area_m2``; otherwise the footprint is refused.
* **Output**: WGS84 ``[lon, lat]`` on a 1e-7° grid (about 1 cm; keeps the output byte-stable
  across PROJ versions), exterior rings counter-clockwise and holes clockwise (RFC 7946 §3.1.6),
  checked valid once more (re-orienting is no repair: GeoJSON 2008 and Esri exports write
  clockwise rings, rightly for them). The centroid is computed in metres.

pyproj is imported on first use: ``dos-adapters`` loads every adapter at start, and most
commands never transform a coordinate.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from pyproj import Transformer

__all__ = [
    "METRIC_CRS",
    "WGS84",
    "Footprint",
    "GeoError",
    "crs_code",
    "geometry_from_geojson",
    "geometry_from_wkt",
    "normalise_geometry",
    "transformer",
]

WGS84 = "EPSG:4326"
METRIC_CRS = "EPSG:25832"
"""Where footprints are repaired and measured: ETRS89 / UTM 32N, metres (Germany west of 12°E)."""
UTM32_PREFIXED = "EPSG:4647"
"""ETRS89 / UTM zone 32N (zE-N): the easting carries the zone number, false easting 32 500 000 m."""
_UTM32_FAMILY = frozenset({METRIC_CRS, UTM32_PREFIXED, "ESRI:102329"})
_PREFIXED_EASTINGS = (32_000_000.0, 33_000_000.0)
_PLAIN_EASTINGS = (0.0, 1_000_000.0)
GRID_DEGREES = 1e-7
DUPLICATE_TOLERANCE_M = 0.01
AREA_OF_USE_MARGIN_DEGREES = 0.5

_EPSG_CODE = re.compile(r"(?:^|[:/])(?:EPSG|epsg)(?::|::|/0/|/)(\d+)$|^(\d{4,6})$")
_AUTHORITY_CODE = re.compile(r"^(?:urn:ogc:def:crs:)?([A-Za-z]+):{1,2}([0-9A-Za-z.]+)$")
_CRS84 = re.compile(r"(?:^|[:/])CRS:?84$", re.IGNORECASE)
_POLYGONAL = ("Polygon", "MultiPolygon")


class GeoError(ValueError):
    """A coordinate or geometry cannot become a WGS84 footprint; the message says why and what to do."""


@dataclass(frozen=True)
class Footprint:
    geometry: Mapping[str, Any]
    """GeoJSON geometry in WGS84 ``[lon, lat]`` (Polygon, MultiPolygon or Point), ready for ``location``."""
    centroid: tuple[float, float]
    """(lon, lat) of the centroid, computed in metres."""
    area_m2: float
    """0 for a Point."""
    crs: str
    """The CRS the coordinates were read in (after the zone-prefix decision)."""
    repairs: tuple[str, ...]
    """What was repaired, in words (empty when the geometry was fine)."""


# --------------------------------------------------------------------------------------------
# CRS


@cache
def _pyproj_crs(code: str) -> Any:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(code)
    except CRSError:
        return None


@cache
def crs_code(declared: str) -> str:
    """``AUTHORITY:CODE`` for a declared CRS in any of the spellings seen in exports; GeoError if unknown."""
    text = declared.strip()
    if _CRS84.search(text) or text.upper() in ("WGS84", "WGS 84"):
        return WGS84  # always_xy makes EPSG:4326 read [lon, lat], which is what CRS84 means
    match = _EPSG_CODE.search(text)
    candidates: list[str] = []
    if match:
        number = match.group(1) or match.group(2)
        candidates = [f"EPSG:{number}", f"ESRI:{number}"]  # Esri codes travel as EPSG in some WFS
    elif authority := _AUTHORITY_CODE.match(text):
        candidates = [f"{authority.group(1).upper()}:{authority.group(2)}"]
    for candidate in candidates:
        crs = _pyproj_crs(candidate)
        if crs is not None:
            return WGS84 if crs.equals(_pyproj_crs(WGS84), ignore_axis_order=True) else candidate
    raise GeoError(f"CRS {declared!r} is unknown (expected e.g. EPSG:25832, urn:ogc:def:crs:EPSG::25832 or EPSG:4326)")


def _is_geographic(code: str) -> bool:
    return bool(_pyproj_crs(code).is_geographic)


@cache
def _area_of_use(code: str) -> tuple[float, float, float, float] | None:
    # PROJ's database gives ESRI:102329 the area of use of zone 33 (east of 12°E) although it is
    # zone 32 (lon_0=9): the UTM 32N family is checked against EPSG:25832's area.
    area = _pyproj_crs(METRIC_CRS if code in _UTM32_FAMILY else code).area_of_use
    return None if area is None else (area.west, area.south, area.east, area.north)


_transformers = threading.local()


def transformer(source: str, target: str) -> Transformer:
    """A cached, per-thread pyproj Transformer with [x=lon/easting, y=lat/northing] axis order."""
    from pyproj import Transformer

    cache_of_thread: dict[tuple[str, str], Transformer] = _transformers.__dict__.setdefault("cache", {})
    key = (source, target)
    if key not in cache_of_thread:
        cache_of_thread[key] = Transformer.from_crs(source, target, always_xy=True)
    return cache_of_thread[key]


def _transform(geometry: BaseGeometry, source: str, target: str) -> BaseGeometry:
    if source == target:
        return geometry
    move = transformer(source, target)
    moved = shapely.transform(geometry, lambda x, y: move.transform(x, y), interleaved=False)
    coordinates = shapely.get_coordinates(moved)
    if not all(math.isfinite(float(value)) for value in coordinates.ravel()):
        raise GeoError(f"coordinates cannot be transformed from {source} to {target}")
    return moved


def _family_member(code: str, eastings: Sequence[float]) -> str:
    """In the UTM 32N family the eastings decide between the plain and the zone-prefixed CRS."""
    if code not in _UTM32_FAMILY or not eastings:
        return code
    prefixed = [_PREFIXED_EASTINGS[0] <= x < _PREFIXED_EASTINGS[1] for x in eastings]
    plain = [_PLAIN_EASTINGS[0] <= x < _PLAIN_EASTINGS[1] for x in eastings]
    if all(prefixed):
        return code if code != METRIC_CRS else UTM32_PREFIXED
    if all(plain):
        return METRIC_CRS
    if any(prefixed) and any(plain):
        raise GeoError("eastings with and without the zone prefix 32 in one geometry")
    worst = next(x for x, ok_a, ok_b in zip(eastings, prefixed, plain, strict=True) if not (ok_a or ok_b))
    raise GeoError(
        f"easting {worst:.2f} is neither a UTM 32N easting (0..1 000 000 m) nor one with the zone prefix "
        f"(32 000 000..33 000 000 m): the coordinates are not in {code}; check the export's CRS "
        "(Gauss-Krüger exports are EPSG:31466 or EPSG:31467)"
    )


# --------------------------------------------------------------------------------------------
# Reading geometries


# Zone-prefixed UTM eastings reach 3.3e7 m; far beyond, GEOS overflows (and warns) on the arithmetic.
_LARGEST_COORDINATE = 1e9


def _position(node: Any, where: str) -> tuple[float, float]:
    if not isinstance(node, list | tuple) or len(node) < 2:
        raise GeoError(f"{where}: a position must be [x, y]")
    values = []
    for number in node[:2]:
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise GeoError(f"{where}: {number!r} is not a number")
        if abs(number) > _LARGEST_COORDINATE:
            raise GeoError(f"{where}: {number!r} is beyond any coordinate of the supported reference systems")
        values.append(float(number))
    return values[0], values[1]


def _ring(node: Any, where: str, repairs: list[str]) -> list[tuple[float, float]]:
    if not isinstance(node, list) or not node:
        raise GeoError(f"{where}: a ring must be a non-empty array of positions")
    ring = [_position(point, f"{where}[{i}]") for i, point in enumerate(node)]
    if ring[0] != ring[-1]:
        ring.append(ring[0])
        if "unclosed ring closed" not in repairs:
            repairs.append("unclosed ring closed")
    if len(set(ring)) < 3:
        raise GeoError(f"{where}: a ring needs at least 3 distinct positions, has {len(set(ring))}")
    return ring


def _polygon(node: Any, where: str, repairs: list[str]) -> Polygon:
    if not isinstance(node, list) or not node:
        raise GeoError(f"{where}: a Polygon needs an array of rings")
    rings = [_ring(ring, f"{where}[{i}]", repairs) for i, ring in enumerate(node)]
    return Polygon(rings[0], rings[1:])


def geometry_from_geojson(geometry: Any) -> tuple[BaseGeometry, list[str]]:
    """A shapely geometry (2D) from a GeoJSON Polygon, MultiPolygon or Point, and the repairs made on reading."""
    if geometry is None:
        raise GeoError("no geometry (the Feature's geometry is null)")
    if not isinstance(geometry, Mapping):
        raise GeoError(f"geometry {geometry!r}: not a GeoJSON geometry object")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    repairs: list[str] = []
    if kind == "Point":
        return Point(_position(coordinates, "Point")), repairs
    if kind == "Polygon":
        return _polygon(coordinates, "Polygon", repairs), repairs
    if kind == "MultiPolygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise GeoError("MultiPolygon: needs an array of polygons")
        parts = [_polygon(part, f"MultiPolygon[{i}]", repairs) for i, part in enumerate(coordinates)]
        return MultiPolygon(parts), repairs
    raise GeoError(f"geometry type {kind!r}: expected Polygon, MultiPolygon or Point")


_EWKT = re.compile(r"^\s*SRID=(\d+)\s*;\s*(.*)$", re.DOTALL | re.IGNORECASE)


def geometry_from_wkt(text: str) -> tuple[BaseGeometry, str | None, list[str]]:
    """A 2D shapely geometry from WKT or PostGIS EWKT (``SRID=25832;POLYGON(...)``), the SRID if given,
    and the repairs made on reading."""
    srid = None
    ewkt = _EWKT.match(text)
    if ewkt:
        srid, text = f"EPSG:{ewkt.group(1)}", ewkt.group(2)
    try:
        geometry = shapely.from_wkt(text.strip())
    except shapely.errors.ShapelyError as error:
        raise GeoError(f"not WKT: {str(error).splitlines()[0]}") from None
    except UnicodeDecodeError:  # shapely cannot decode GEOS's message about a non-ASCII word
        raise GeoError(f"not WKT: {text.strip()[:40]!r}") from None
    if geometry is None or geometry.is_empty:
        raise GeoError("WKT geometry is empty")
    geometry = shapely.force_2d(geometry)
    if geometry.geom_type not in (*_POLYGONAL, "Point"):
        raise GeoError(f"WKT geometry {geometry.geom_type}: expected POLYGON, MULTIPOLYGON or POINT")
    # Re-read through the GeoJSON path so WKT and GeoJSON get the same checks and repairs.
    rebuilt, repairs = geometry_from_geojson(_as_lists(shapely.geometry.mapping(geometry)))
    return rebuilt, srid, repairs


def _as_lists(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {key: _as_lists(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_as_lists(value) for value in node]
    return node


# --------------------------------------------------------------------------------------------
# Repair


def _polygonal_parts(geometry: BaseGeometry) -> BaseGeometry:
    polygons = [part for part in shapely.get_parts(geometry) if part.geom_type in _POLYGONAL and not part.is_empty]
    flat: list[Polygon] = []
    for part in polygons:
        flat.extend(part.geoms if isinstance(part, MultiPolygon) else [part])
    if not flat:
        return Polygon()
    return flat[0] if len(flat) == 1 else MultiPolygon(flat)


def _repair(geometry: BaseGeometry, repairs: list[str]) -> BaseGeometry:
    """In metres: repeated points dropped, invalid polygons rebuilt, only polygonal parts kept."""
    before = shapely.get_num_coordinates(geometry)
    geometry = shapely.remove_repeated_points(geometry, DUPLICATE_TOLERANCE_M)
    if shapely.get_num_coordinates(geometry) < before:
        repairs.append(f"{before - shapely.get_num_coordinates(geometry)} repeated point(s) removed")
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry).split("[")[0].strip().lower()
        try:
            geometry = _polygonal_parts(shapely.make_valid(geometry, method="structure", keep_collapsed=False))
        except shapely.errors.GEOSException as error:
            raise GeoError(f"the footprint ({reason}) cannot be repaired: {error}") from None
        repairs.append(f"{reason} repaired")
    return geometry


def _oriented(geometry: BaseGeometry) -> BaseGeometry:
    """RFC 7946: exterior rings counter-clockwise, holes clockwise."""
    return shapely.orient_polygons(geometry, exterior_cw=False)


def _rounded(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {key: _rounded(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        if node and all(isinstance(value, float) for value in node):
            return [round(value, 7) for value in node]
        return [_rounded(value) for value in node]
    return node


def _check_numbers(geometry: BaseGeometry, code: str) -> None:
    coordinates = shapely.get_coordinates(geometry)
    x, y = float(coordinates[0][0]), float(coordinates[0][1])
    looks_like_degrees = all(abs(float(cx)) <= 180 and abs(float(cy)) <= 90 for cx, cy in coordinates)
    if _is_geographic(code) and not looks_like_degrees:
        raise GeoError(
            f"coordinates ({x:.2f}, {y:.2f}) are not lon/lat degrees but the CRS is {code}: if they are "
            'ETRS89 / UTM 32N metres, declare it (GeoJSON crs member, CSV column, or crs = "EPSG:25832")'
        )
    if not _is_geographic(code) and looks_like_degrees:
        raise GeoError(
            f"coordinates ({x}, {y}) look like lon/lat degrees but the CRS is {code}: declare "
            'crs = "EPSG:4326" for WGS84 exports'
        )


def _check_place(
    geometry: BaseGeometry, code: str, bbox: Sequence[float] | None, centroid: tuple[float, float]
) -> None:
    lon, lat = centroid
    area = _area_of_use(code)
    if area is not None:
        west, south, east, north = area
        margin = AREA_OF_USE_MARGIN_DEGREES
        if not (west - margin <= lon <= east + margin and south - margin <= lat <= north + margin):
            raise GeoError(
                f"the coordinates land at lon {lon:.5f}, lat {lat:.5f}, outside the area of use of {code} "
                f"({west:g}..{east:g} E, {south:g}..{north:g} N): wrong CRS declared?"
            )
    if bbox is None:
        return
    min_lon, min_lat, max_lon, max_lat = bbox
    west, south, east, north = geometry.bounds
    if west >= min_lon and east <= max_lon and south >= min_lat and north <= max_lat:
        return
    hint = ""
    if min_lon <= lat <= max_lon and min_lat <= lon <= max_lat:
        hint = ": latitude and longitude look swapped (GeoJSON positions are [lon, lat])"
    raise GeoError(
        f"the footprint at lon {lon:.5f}, lat {lat:.5f} is outside the configured bbox "
        f"[{min_lon:g}, {min_lat:g}, {max_lon:g}, {max_lat:g}]{hint}"
    )


def normalise_geometry(
    geometry: BaseGeometry,
    crs: str,
    *,
    min_area_m2: float = 1.0,
    bbox: Sequence[float] | None = None,
    repairs: Sequence[str] = (),
) -> Footprint:
    """A WGS84 footprint (or point) from a geometry in ``crs``; GeoError with the reason when it cannot be one."""
    done = list(repairs)
    eastings = [float(x) for x, _ in shapely.get_coordinates(geometry)]
    code = _family_member(crs, eastings)
    _check_numbers(geometry, code)
    metric = _transform(geometry, code, METRIC_CRS)
    if isinstance(metric, Point):
        area = 0.0
    else:
        metric = _repair(metric, done)
        area = float(metric.area)
        if metric.is_empty or area <= 0:
            raise GeoError("the footprint has no area left after repair (collinear or collapsed): cannot be repaired")
        if area < min_area_m2:
            raise GeoError(f"the footprint's area is {area:.2f} m², below min_area_m2 {min_area_m2:g}: degenerate")
    centre = metric.centroid
    centroid_shape = _transform(centre, METRIC_CRS, WGS84)
    centroid = (round(centroid_shape.x, 7), round(centroid_shape.y, 7))
    wgs84 = _transform(metric, METRIC_CRS, WGS84)
    _check_place(wgs84, code, bbox, centroid)
    if not isinstance(wgs84, Point):
        try:
            wgs84 = shapely.set_precision(wgs84, GRID_DEGREES)
        except shapely.errors.GEOSException as error:  # GEOS gives up on some snapped slivers and holes
            raise GeoError(
                f"the footprint cannot be snapped to the 1e-7° output grid ({error}): cannot be repaired"
            ) from None
        wgs84 = _polygonal_parts(wgs84)
        if wgs84.is_empty or not wgs84.is_valid:
            raise GeoError("the footprint collapses on the 1e-7° output grid (narrower than about 1 cm)")
        wgs84 = _oriented(wgs84)
    mapping = _rounded(_as_lists(shapely.geometry.mapping(wgs84)))
    return Footprint(mapping, centroid, round(area, 2), code, tuple(done))


def shape_of(geojson: Mapping[str, Any]) -> BaseGeometry:
    """A shapely geometry from an emitted ``location`` value (already WGS84 and valid)."""
    return shape(geojson)

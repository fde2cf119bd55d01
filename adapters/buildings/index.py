"""Which building is a sensor in? Point-in-polygon against the footprints of the Building entities.

:class:`BuildingIndex` is built once from Building entities (normalized, as ``run`` writes them,
or keyValues) and answers :meth:`BuildingIndex.building_of` for a WGS84 position. The rules,
deterministic whatever the order of the input:

1. only footprints that *cover* the position count (the outline included), only of the tenant
   asked for (a Schwerte sensor never lands in a Dortmund building);
2. a footprint with the position in its interior beats one with the position on its outline: a
   sensor on a shared wall belongs to both, one inside one building and on the edge of its
   neighbour's (overlapping data) to the first;
3. among interior hits, the smaller footprint (a building inside a larger complex outline is the
   more specific);
4. then the smaller entity id (string order): on a wall shared by two buildings.

With ``max_distance_m`` > 0, a position covered by no footprint takes the nearest one within that
distance (metres, measured in EPSG:25832; ties by entity id): a GPS fix just outside the wall.
Buildings located by a Point (inventories without footprints) are never hit, but
:meth:`BuildingIndex.position_of` knows their position.

:func:`load_building_index` reads an entity file (NDJSON as ``run`` and ``normalize`` write it, or
a JSON array) once per path; the latest entity per id wins, as in the broker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from adapters.buildings import geo
from adapters.core.entity_files import read_entity_file

__all__ = ["BuildingIndex", "BuildingIndexError", "IndexedBuilding", "load_building_index", "read_entities"]

_POLYGONAL = ("Polygon", "MultiPolygon")


class BuildingIndexError(ValueError):
    """The buildings cannot be indexed; the message names the file or entity and the problem."""


@dataclass(frozen=True)
class IndexedBuilding:
    entity_id: str
    tenant: str
    local_id: str
    name: str | None
    footprint: BaseGeometry | None
    """WGS84 polygon(s); None for a building located by a Point only."""
    position: tuple[float, float]
    """(lon, lat): the footprint's centroid, or a point on its surface where the centroid falls
    outside (a U-shaped school around its yard); the Point itself for point buildings."""
    area: float
    """Footprint area in square degrees (only compared between neighbours); 0 for a Point."""


def _value(attribute: Any) -> Any:
    if isinstance(attribute, Mapping) and attribute.get("type") in ("Property", "GeoProperty") and "value" in attribute:
        return attribute["value"]
    return attribute


def _indexed(entity: Mapping[str, Any]) -> IndexedBuilding:
    identifier = str(entity["id"])
    parts = identifier.split(":")
    if len(parts) < 5 or parts[:3] != ["urn", "ngsi-ld", "Building"]:
        raise BuildingIndexError(f"{identifier}: not urn:ngsi-ld:Building:<tenant>:<local id>")
    location = _value(entity.get("location"))
    if not isinstance(location, Mapping) or location.get("type") not in (*_POLYGONAL, "Point"):
        raise BuildingIndexError(f"{identifier}: location is not a GeoJSON Polygon, MultiPolygon or Point")
    try:
        geometry = shape(location)
    except (ValueError, TypeError, shapely.errors.ShapelyError) as error:
        raise BuildingIndexError(f"{identifier}: location: {error}") from None
    if geometry.is_empty or not geometry.is_valid:
        raise BuildingIndexError(f"{identifier}: location: {shapely.is_valid_reason(geometry)}")
    name = _value(entity.get("name"))
    if isinstance(geometry, Point):
        footprint, position, area = None, (geometry.x, geometry.y), 0.0
    else:
        centre = geometry.centroid
        inside = centre if geometry.contains(centre) else geometry.point_on_surface()
        footprint, position, area = geometry, (round(inside.x, 7), round(inside.y, 7)), float(geometry.area)
    return IndexedBuilding(
        entity_id=identifier,
        tenant=parts[3],
        local_id=":".join(parts[4:]),
        name=name if isinstance(name, str) else None,
        footprint=footprint,
        position=position,
        area=area,
    )


class BuildingIndex:
    def __init__(self, buildings: Iterable[IndexedBuilding]) -> None:
        self._buildings = sorted(buildings, key=lambda b: b.entity_id)
        self._by_id = {b.entity_id: b for b in self._buildings}
        self._polygons = [b for b in self._buildings if b.footprint is not None]
        self._tree = STRtree([b.footprint for b in self._polygons])
        self._metric: STRtree | None = None
        self._metric_lock = threading.Lock()

    @classmethod
    def from_entities(cls, entities: Iterable[Mapping[str, Any]]) -> BuildingIndex:
        """Index the Building entities among ``entities`` (others are ignored; the latest per id wins)."""
        latest: dict[str, Mapping[str, Any]] = {}
        for entity in entities:
            if isinstance(entity, Mapping) and entity.get("type") == "Building" and isinstance(entity.get("id"), str):
                latest[entity["id"]] = {**latest.get(entity["id"], {}), **entity}
        return cls(_indexed(entity) for entity in latest.values())

    def __len__(self) -> int:
        return len(self._buildings)

    def __iter__(self) -> Iterator[IndexedBuilding]:
        return iter(self._buildings)

    def get(self, building: str, tenant: str | None = None) -> IndexedBuilding | None:
        """By entity id, or by local id (``gymnasium-an-der-schweizer-allee``) within ``tenant``."""
        if building.startswith("urn:"):
            return self._by_id.get(building)
        matches = [b for b in self._buildings if b.local_id == building and (tenant is None or b.tenant == tenant)]
        return matches[0] if len(matches) == 1 else None

    def position_of(self, building: str, tenant: str | None = None) -> tuple[float, float] | None:
        found = self.get(building, tenant)
        return None if found is None else found.position

    def building_of(
        self, lon: float, lat: float, *, tenant: str | None = None, max_distance_m: float = 0.0
    ) -> IndexedBuilding | None:
        """The building whose footprint covers (lon, lat); see the module docstring for ties and distance."""
        point = Point(lon, lat)
        hits = [self._polygons[int(i)] for i in self._tree.query(point, predicate="covered_by")]
        hits = [b for b in hits if tenant is None or b.tenant == tenant]
        if hits:

            def rank(building: IndexedBuilding) -> tuple[bool, float, str]:
                assert building.footprint is not None
                inside = bool(building.footprint.contains(point))
                # Areas only rank interior hits: on a shared wall the id decides, not float noise.
                return (not inside, building.area if inside else 0.0, building.entity_id)

            return min(hits, key=rank)
        if max_distance_m <= 0:
            return None
        return self._nearest(lon, lat, tenant, max_distance_m)

    def _metric_tree(self) -> STRtree:
        with self._metric_lock:
            if self._metric is None:
                shapes = [
                    shapely.transform(
                        b.footprint,
                        lambda x, y: geo.transformer(geo.WGS84, geo.METRIC_CRS).transform(x, y),
                        interleaved=False,
                    )
                    for b in self._polygons
                ]
                self._metric = STRtree(shapes)
            return self._metric

    def _nearest(self, lon: float, lat: float, tenant: str | None, max_distance_m: float) -> IndexedBuilding | None:
        tree = self._metric_tree()
        x, y = geo.transformer(geo.WGS84, geo.METRIC_CRS).transform(lon, lat)
        point = Point(x, y)
        near = tree.query(point, predicate="dwithin", distance=max_distance_m)
        candidates = [
            (float(point.distance(tree.geometries[int(i)])), self._polygons[int(i)].entity_id, self._polygons[int(i)])
            for i in near
            if tenant is None or self._polygons[int(i)].tenant == tenant
        ]
        return min(candidates, key=lambda c: (c[0], c[1]))[2] if candidates else None


# --------------------------------------------------------------------------------------------
# Loading


def read_entities(text: str) -> list[dict[str, Any]]:
    """Entities of an NDJSON file or a JSON array; BuildingIndexError naming the line that is not an object."""
    try:
        return read_entity_file(text)
    except ValueError as error:
        raise BuildingIndexError(str(error)) from None


_cache: dict[str, BuildingIndex | BuildingIndexError] = {}
_cache_lock = threading.Lock()


def load_building_index(path: str | Path) -> BuildingIndex:
    """The index of the Building entities in an entity file, read once per path (an edited file takes
    effect on restart); a broken file raises the same BuildingIndexError every time."""
    key = str(Path(path).absolute())
    with _cache_lock:
        if key not in _cache:
            try:
                text = Path(key).read_text(encoding="utf-8")
                _cache[key] = BuildingIndex.from_entities(read_entities(text))
            except OSError as error:
                _cache[key] = BuildingIndexError(f"{path}: cannot read: {error.strerror or error}")
            except BuildingIndexError as error:
                _cache[key] = BuildingIndexError(f"{path}: {error}")
        loaded = _cache[key]
    if isinstance(loaded, BuildingIndexError):
        raise loaded
    return loaded

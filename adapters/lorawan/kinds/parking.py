"""Kind ``parking``: in-ground occupancy sensors (Bosch TPS110) -> ``ParkingSpot`` + the site's counts.

Each sensor is one ``ParkingSpot``: ``status`` ``free``/``occupied`` from the frames that carry the
occupancy (status, heartbeat, start-up); device-info, usage and debug frames only update the
``Device``. Every spot belongs to a parking site, ``refParkingSite``:

* the registry's ``parking_site`` when it is filled in, else
* the zone (kind setting ``zones``: a GeoJSON FeatureCollection of WGS84 Polygons/MultiPolygons,
  each with ``properties.id`` and optionally ``properties.name``) whose polygon *covers* the
  spot's registry position. A position on a border shared by several zones (or where zones
  overlap) goes to the zone with the smallest id (string order), never to whichever comes first
  in the file.

A spot with neither is rejected with the fix in the reason: ParkingSpot requires refParkingSite.
Site ids and zone ids share one namespace: a zone whose id equals a registry ``parking_site``
gives that site its polygon.

The site is an ``OnStreetParking`` (category ``onStreet``) or an ``OffStreetParking``
(``offStreet``). After every spot update the on-street site is re-sent with its counts:

* ``totalSpotNumber``: the registry's parking devices of that tenant, site and category;
* ``availableSpotNumber`` / ``occupiedSpotNumber``: the spots whose last reading said free /
  occupied. A spot never heard from counts in neither: it is *unknown* (total - available -
  occupied), never guessed free;
* ``occupancy``: occupied / (available + occupied), the share over the spots with a known state
  (a float 0..1; left out while no spot of the site is known);
* ``observedAt``: the newest reading among the counted spots, so an uplink delivered late does
  not move the site's time series backwards;
* ``location``: the zone polygon of that id, else a MultiPoint of the spots' registry positions
  (exact, no invented point; a GeoProperty, so QuantumLeap keeps it as a geometry).

Off-street sites are only referenced, not written: ``OffStreetParking`` belongs to the car-park
sources (adapter ``parking``), whose profile requires what a sensor cannot know (category,
opening status, data provider) and whose own counters must not be overwritten by ours.

When a spot's site changes (registry or zones edited), its next reading also re-sends the old
on-street site, recounted without it (unless no spot is left there). The spot's state is kept per
device (``kind_state``): ``{"occupied", "site", "category", "observed_at"}``; a spot keeps its last
state until it reports again (heartbeats repeat it). The zones file is read once per path, like
the registry: an edited file takes effect on restart.
"""

from __future__ import annotations

import json
import math
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.core.adapter import RecordRejected
from adapters.core.entities import (
    Attribute,
    Entity,
    entity_id,
    geo_point,
    geo_property,
    make_entity,
    prop,
    relationship,
    utc_iso,
)
from adapters.core.lorawan.pipeline import DeviceKind, KindContext, KindOutput, Reading, device_entity_id
from adapters.core.lorawan.registry import Device, DeviceRegistry

if TYPE_CHECKING:
    from shapely import STRtree

__all__ = ["KIND", "SITE_TYPES", "Site", "Zone", "Zones", "ZonesError", "load_zones"]

SITE_TYPES: Mapping[str, str] = {"onStreet": "OnStreetParking", "offStreet": "OffStreetParking"}
# Site entity types this kind writes the counts of (see the module docstring for OffStreetParking).
_AGGREGATED = frozenset({"onStreet"})
_SAFE_ID = re.compile(r"[A-Za-z0-9._~-]+")
_POLYGONS = ("Polygon", "MultiPolygon")


class ZonesError(ValueError):
    """The zones file cannot be used; the message names the file, the feature and the rule broken."""


# --------------------------------------------------------------------------------------------
# Zones


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    geometry: Mapping[str, Any]
    """The GeoJSON geometry as sent in the site's ``location``: 2D, every coordinate a float."""


@dataclass(frozen=True)
class Zones:
    path: str
    zones: tuple[Zone, ...]
    by_id: Mapping[str, Zone]
    _tree: STRtree

    def zone_at(self, lon: float, lat: float) -> Zone | None:
        """The zone covering the point (border included); where several do, the smallest id."""
        from shapely import Point  # shapely loads with the first zones file, not at every start

        hits = self._tree.query(Point(lon, lat), predicate="covered_by")
        return min((self.zones[int(i)] for i in hits), key=lambda zone: zone.id, default=None)


def _position(node: Any, where: str) -> list[float]:
    if not isinstance(node, list) or len(node) < 2:
        raise ZonesError(f"{where}: a position must be [lon, lat]")
    lon, lat = node[0], node[1]
    for name, number, limit in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise ZonesError(f"{where}: {name} {number!r} is not a number")
        if abs(number) > limit:
            raise ZonesError(
                f"{where}: {name} {number!r} is outside ±{limit:g}: the file must be WGS84 lon/lat (RFC 7946); "
                "convert it, e.g. ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson"
            )
    return [float(lon), float(lat)]


def _ring(node: Any, where: str) -> list[list[float]]:
    if not isinstance(node, list):
        raise ZonesError(f"{where}: a ring must be an array of positions")
    ring = [_position(point, f"{where}[{i}]") for i, point in enumerate(node)]
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise ZonesError(f"{where}: a ring needs at least 4 positions, the last equal to the first")
    return ring


def _polygon(node: Any, where: str) -> list[list[list[float]]]:
    if not isinstance(node, list) or not node:
        raise ZonesError(f"{where}: a Polygon's coordinates must be a non-empty array of rings")
    return [_ring(ring, f"{where}[{i}]") for i, ring in enumerate(node)]


def _zone(feature: Any, where: str) -> Zone:
    import shapely
    from shapely.geometry import shape

    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise ZonesError(f"{where}: not a GeoJSON Feature")
    properties = feature.get("properties") or {}
    raw_id = properties.get("id") if isinstance(properties, Mapping) else None
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str) or not _SAFE_ID.fullmatch(raw_id):
        raise ZonesError(
            f"{where}: properties.id {raw_id!r} must be letters, digits, '.', '_', '~' or '-' "
            "(it becomes the site's entity id)"
        )
    name = properties.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ZonesError(f"{where} ({raw_id}): properties.name must be a non-empty string when given")
    geometry = feature.get("geometry")
    kind = geometry.get("type") if isinstance(geometry, Mapping) else None
    if kind not in _POLYGONS:
        raise ZonesError(f"{where} ({raw_id}): geometry must be a Polygon or MultiPolygon, got {kind!r}")
    assert isinstance(geometry, Mapping)
    coordinates: list[Any]
    if kind == "Polygon":
        coordinates = _polygon(geometry.get("coordinates"), f"{where} ({raw_id}).coordinates")
    else:
        polygons = geometry.get("coordinates")
        if not isinstance(polygons, list) or not polygons:
            raise ZonesError(f"{where} ({raw_id}): a MultiPolygon's coordinates must be a non-empty array")
        coordinates = [_polygon(p, f"{where} ({raw_id}).coordinates[{i}]") for i, p in enumerate(polygons)]
    clean = {"type": kind, "coordinates": coordinates}
    reason = shapely.is_valid_reason(shape(clean))
    if reason != "Valid Geometry":
        raise ZonesError(f"{where} ({raw_id}): invalid polygon: {reason}")
    return Zone(raw_id, name.strip() if isinstance(name, str) else raw_id, clean)


def _read_zones(path: str) -> Zones:
    from shapely import STRtree
    from shapely.geometry import shape

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ZonesError(f"{path}: cannot read: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ZonesError(f"{path}: not JSON: {error}") from None
    if not isinstance(document, Mapping) or document.get("type") != "FeatureCollection":
        raise ZonesError(f"{path}: must be a GeoJSON FeatureCollection")
    features = document.get("features")
    if not isinstance(features, list):
        raise ZonesError(f"{path}: features must be an array")
    if not features:
        raise ZonesError(f"{path}: has no features")
    zones = tuple(_zone(feature, f"{path}: features[{i}]") for i, feature in enumerate(features))
    by_id: dict[str, Zone] = {}
    for zone in zones:
        if by_id.setdefault(zone.id, zone) is not zone:
            raise ZonesError(f"{path}: zone id {zone.id!r} is used twice")
    return Zones(path, zones, by_id, STRtree([shape(zone.geometry) for zone in zones]))


_zones_cache: dict[str, Zones | ZonesError] = {}
_zones_lock = threading.Lock()


def load_zones(path: str) -> Zones:
    """Read and check a zones file once per path (a changed file takes effect on restart, like the
    device registry); a broken file raises the same ZonesError every time without re-reading."""
    key = str(Path(path).absolute())
    with _zones_lock:
        if key not in _zones_cache:
            try:
                _zones_cache[key] = _read_zones(key)
            except ZonesError as error:
                _zones_cache[key] = error
        loaded = _zones_cache[key]
    if isinstance(loaded, ZonesError):
        raise loaded
    return loaded


# --------------------------------------------------------------------------------------------
# Sites


@dataclass(frozen=True)
class Site:
    tenant: str
    category: str
    local_id: str

    @property
    def entity_type(self) -> str:
        return SITE_TYPES[self.category]

    @property
    def entity_id(self) -> str:
        return entity_id(self.entity_type, self.tenant, self.local_id)


@dataclass(frozen=True)
class _SiteIndex:
    site_of: Mapping[str, Site]
    """DevEUI -> site, for every parking device that has one."""
    members: Mapping[Site, tuple[Device, ...]]
    """Site -> its spots, in registry order."""


def _assign(device: Device, zones: Zones | None) -> Site | None:
    category = device.params["category"]
    if device.params.get("parking_site"):
        return Site(device.tenant, category, device.params["parking_site"])
    if zones is None or device.lon is None or device.lat is None:
        return None
    zone = zones.zone_at(device.lon, device.lat)
    return None if zone is None else Site(device.tenant, category, zone.id)


_index_cache: weakref.WeakKeyDictionary[DeviceRegistry, dict[str | None, _SiteIndex]] = weakref.WeakKeyDictionary()
_index_lock = threading.Lock()


def _site_index(registry: DeviceRegistry, zones: Zones | None) -> _SiteIndex:
    """Which spot belongs to which site; computed once per registry and zones file."""
    key = None if zones is None else zones.path
    with _index_lock:
        cached = _index_cache.setdefault(registry, {})
        if key not in cached:
            site_of: dict[str, Site] = {}
            members: dict[Site, list[Device]] = {}
            for device in registry:
                site = _assign(device, zones) if device.kind == "parking" else None
                if site is not None:
                    site_of[device.dev_eui] = site
                    members.setdefault(site, []).append(device)
            cached[key] = _SiteIndex(site_of, {site: tuple(devices) for site, devices in members.items()})
        return cached[key]


def _zones(context: KindContext) -> Zones | None:
    path = context.settings.get("zones")
    if not path:
        return None
    try:
        return load_zones(str(path))
    except ZonesError as error:
        raise RecordRejected(f"[adapters.lorawan.parking] zones: {error}") from None


def _no_site(device: Device, zones: Zones | None) -> RecordRejected:
    where = f"({device.lon}, {device.lat})"
    why = (
        f"no zone in {Path(zones.path).name} covers its position {where}"  # the name: reasons must not vary by host
        if zones is not None
        else "no zones file is set ([adapters.lorawan.parking] zones)"
    )
    return RecordRejected(
        f"device {device.dev_eui} ({device.name}): parking spot belongs to no parking site: its registry row "
        f"has no parking_site and {why}; fill in parking_site in the device registry or add a zone covering the spot"
    )


def _site_location(site: Site, spots: Sequence[Device], zones: Zones | None) -> Attribute:
    zone = zones.by_id.get(site.local_id) if zones is not None else None
    if zone is not None:
        return geo_property(zone.geometry)
    positions = [[float(d.lon), float(d.lat)] for d in spots if d.lon is not None and d.lat is not None]
    unique = [list(p) for p in dict.fromkeys(tuple(p) for p in positions)]
    return geo_property({"type": "MultiPoint", "coordinates": unique})


def _site_entity(
    site: Site,
    spots: Sequence[Device],
    states: Mapping[str, Mapping[str, Any]],
    zones: Zones | None,
    now: datetime,
) -> Entity:
    """The site's counts over the spots' latest states (``states``: DevEUI -> kind_state)."""
    known = [states[d.dev_eui] for d in spots if isinstance(states[d.dev_eui].get("occupied"), bool)]
    occupied = sum(1 for state in known if state["occupied"])
    available = len(known) - occupied
    times = [now]
    for state in known:
        try:
            times.append(datetime.fromisoformat(str(state.get("observed_at"))))
        except ValueError:
            continue
    observed = max(time for time in times if time.tzinfo is not None)
    zone = zones.by_id.get(site.local_id) if zones is not None else None
    attributes: dict[str, Attribute] = {
        "name": prop(zone.name if zone is not None else site.local_id),
        "location": _site_location(site, spots, zones),
        "occupancyDetectionType": prop(["singleSpaceDetection"]),
        "totalSpotNumber": prop(len(spots)),
        "availableSpotNumber": prop(available, observed_at=observed),
        "occupiedSpotNumber": prop(occupied, observed_at=observed),
    }
    if known:
        attributes["occupancy"] = prop(round(occupied / len(known), 4), observed_at=observed, unit_code="C62")
    return make_entity(site.entity_type, site.tenant, site.local_id, attributes)


def normalize(reading: Reading, context: KindContext) -> KindOutput:
    device, observed = reading.device, reading.observed_at
    occupied = reading.values.get("occupied")
    if not isinstance(occupied, bool):
        return KindOutput([])  # device-info, usage, debug: only the Device entity changes
    zones = _zones(context)
    index = _site_index(context.registry, zones)
    site = index.site_of.get(device.dev_eui)
    if site is None:
        raise _no_site(device, zones)
    state = {"occupied": occupied, "site": site.local_id, "category": site.category, "observed_at": utc_iso(observed)}
    spot = make_entity(
        "ParkingSpot",
        device.tenant,
        device.entity_id,
        {
            "name": prop(device.name),
            "location": geo_point(device.lon, device.lat),  # type: ignore[arg-type]  # required for parking by the registry
            "category": prop([site.category]),
            "status": prop("occupied" if occupied else "free", observed_at=observed),
            "refParkingSite": relationship(site.entity_id),
            # A list in the official schema: sent as a Property (docs/decisions/0006).
            "refDevice": prop([device_entity_id(device)]),
        },
    )
    entities = [spot]

    def states_of(spots: Sequence[Device]) -> dict[str, Mapping[str, Any]]:
        memory = context.memory_of
        return {d.dev_eui: state if d.dev_eui == device.dev_eui else memory(d.dev_eui).kind_state for d in spots}

    previous = context.memory_of(device.dev_eui).kind_state
    old = Site(device.tenant, str(previous.get("category")), str(previous.get("site")))
    if "site" in previous and old != site and old.category in _AGGREGATED and old in index.members:
        entities.append(_site_entity(old, index.members[old], states_of(index.members[old]), zones, observed))
    if site.category in _AGGREGATED:
        spots = index.members[site]
        entities.append(_site_entity(site, spots, states_of(spots), zones, observed))
    return KindOutput(entities, state)


KIND = DeviceKind(
    name="parking",
    entity_types=("ParkingSpot", "OnStreetParking"),
    controlled_property=("occupancy",),
    normalize=normalize,
    config_properties={
        "zones": {
            "type": "string",
            "minLength": 1,
            "description": (
                "GeoJSON FeatureCollection (WGS84) of parking zones, Polygon/MultiPolygon features with "
                "properties.id and optional properties.name; groups the spots without a parking_site and gives "
                "a site of the same id its polygon. Relative to the configuration's directory."
            ),
        },
    },
)

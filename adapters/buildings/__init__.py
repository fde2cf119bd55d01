"""Buildings adapter: the municipal building inventory as ``Building``, meter readings as ``DeviceMeasurement``.

Two source kinds: ``buildings`` (the inventory, GeoJSON or CSV, footprints transformed to WGS84 and
repaired) and ``building-meters`` (a building-management system's CSV export of meter readings,
cumulative counters with rollover, replacement and negative deltas handled; memory across polls in
SQLite). Room sensors and meters reference their building; :mod:`adapters.buildings.index` finds
the building of a position; ``dos-adapters building show`` sums a building up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from adapters.buildings.inventory import DEFAULT_BBOX, DEFAULT_DATA_PROVIDER
from adapters.buildings.inventory import SOURCE as INVENTORY
from adapters.buildings.meters import DEFAULT_TIMEZONE, timezone_of
from adapters.buildings.meters import SOURCE as METERS
from adapters.buildings.state import DEFAULT_KEEP_DAYS, MeterState
from adapters.core.adapter import Adapter, Governance, SourceKind

__all__ = ["BuildingsAdapter", "BuildingsResources"]

_FIELD_KEYS = (
    "id",
    "name",
    "category",
    "street",
    "house_number",
    "house_number_suffix",
    "address",
    "postal_code",
    "locality",
    "district",
    "floors_above_ground",
    "floors_below_ground",
    "owner",
    "crs",
    "wkt",
    "x",
    "y",
)


@dataclass
class BuildingsResources:
    """Per poll: the building ids seen (inventory) and the meter memory (meters)."""

    seen: dict[str, str] = field(default_factory=dict)
    """Inventory: building id -> label of the record that gave it, in this payload."""
    meters: MeterState | None = None

    def commit(self) -> None:
        if self.meters is not None:
            self.meters.commit()

    def rollback(self) -> None:
        if self.meters is not None:
            self.meters.rollback()

    def close(self) -> None:
        if self.meters is not None:
            self.meters.close()


class BuildingsAdapter(Adapter):
    name = "buildings"
    title = "Municipal buildings: inventory with footprints; meter readings (electricity, heat, water, gas)"
    mode = "poll"
    sources: ClassVar[tuple[SourceKind, ...]] = (INVENTORY, METERS)
    default_tenant = "dortmund"
    # The city's own operational data, not cleared for open data: the inventory names school and
    # administration buildings with their use, the meters show when buildings are occupied. Opening one
    # is a decision of the city: set access="open" and a licence here.
    governance: ClassVar[dict[str, Governance]] = {
        INVENTORY.name: Governance(
            publisher="Stadt Dortmund",
            licence="http://dcat-ap.de/def/licenses/other-closed",
            attribution="Stadt Dortmund, Gebäudemanagement",
            update_frequency="DAILY",
            personal_data="none",
            access="internal",
        ),
        METERS.name: Governance(
            publisher="Stadt Dortmund",
            licence="http://dcat-ap.de/def/licenses/other-closed",
            attribution="Stadt Dortmund, Gebäudemanagement",
            update_frequency="DAILY",
            personal_data="aggregated",
            access="internal",
        ),
    }
    # Meter exports are typically hourly or daily; the inventory changes a few times a year.
    default_interval = 3600
    config_properties: ClassVar[dict[str, Any]] = {
        # Off unless switched on: installing the package must not start polling a new source, and
        # the inventory and the meter export have no public URL: set url.
        "enabled": {"type": "boolean", "default": False, "description": "Poll the configured source."},
        "crs": {
            "type": "string",
            "minLength": 1,
            "default": "EPSG:4326",
            "description": "CRS of inventory files and rows that declare none (GeoJSON without crs member is "
            "WGS84 by RFC 7946), e.g. EPSG:25832; the file's own declaration wins.",
        },
        "bbox": {
            "type": "array",
            "prefixItems": [
                {"type": "number", "minimum": -180, "maximum": 180},
                {"type": "number", "minimum": -90, "maximum": 90},
                {"type": "number", "minimum": -180, "maximum": 180},
                {"type": "number", "minimum": -90, "maximum": 90},
            ],
            "minItems": 4,
            "maxItems": 4,
            "default": list(DEFAULT_BBOX),
            "description": "[min_lon, min_lat, max_lon, max_lat]: footprints outside are rejected (default: Germany).",
        },
        "min_area_m2": {
            "type": "number",
            "minimum": 0,
            "default": 1.0,
            "description": "Footprints smaller than this after repair are rejected as degenerate.",
        },
        "locality": {
            "type": "string",
            "minLength": 1,
            "description": "addressLocality for records without Ort, e.g. Dortmund.",
        },
        "categories": {
            "type": "object",
            "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "default": {},
            "description": "Building use as written in the inventory -> Smart Data Models categories.",
        },
        "owner": {
            "type": "string",
            "minLength": 1,
            "description": "Owner of buildings whose record names none: an entity id or URI, or a name "
            "(becomes urn:ngsi-ld:Organization:<tenant>:<name>).",
        },
        "data_provider": {
            "type": "string",
            "minLength": 1,
            "default": DEFAULT_DATA_PROVIDER,
            "description": "dataProvider of every Building.",
        },
        "fields": {
            "type": "object",
            "description": "Column (or GeoJSON property) name per attribute, where the inventory's differs from "
            "the names the adapter knows.",
            "properties": {key: {"type": "string", "minLength": 1} for key in _FIELD_KEYS},
            "additionalProperties": False,
            "default": {},
        },
        "state_path": {
            "type": "string",
            "default": "var/buildings-meters.sqlite",
            "description": "Per metering point memory of the meter readings (building-meters).",
        },
        "keep_days": {
            "type": "integer",
            "minimum": 1,
            "default": DEFAULT_KEEP_DAYS,
            "description": "Days of applied readings remembered, so that rows of overlapping exports are skipped.",
        },
        "register_digits": {
            "type": "object",
            "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 12},
            "default": {},
            "description": "Register digits per metering point (for rollover), where the export has no Stellen column.",
        },
        "timezone": {
            "type": "string",
            "default": DEFAULT_TIMEZONE,
            "description": "Time zone of reading times without offset, and of the days consumption is summed over.",
        },
    }

    @classmethod
    def open_resources(cls, settings: Mapping[str, Any], *, base_dir: Path, persistent: bool) -> BuildingsResources:
        if settings.get("source") != METERS.name:
            from adapters.buildings.geo import GeoError, crs_code  # shapely: only when this source runs

            try:
                crs_code(str(settings.get("crs") or "EPSG:4326"))  # a wrong setting fails the poll, not each record
            except GeoError as error:
                raise ValueError(f"[adapters.buildings] crs: {error}") from None
            return BuildingsResources()
        timezone_of(settings)  # a wrong zone fails the poll, not every record
        path = base_dir / str(settings.get("state_path") or "var/buildings-meters.sqlite") if persistent else None
        keep_days = int(settings.get("keep_days") or DEFAULT_KEEP_DAYS)
        return BuildingsResources(meters=MeterState(path, keep_days=keep_days))

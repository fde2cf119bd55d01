"""The collection tour: which waste bins need emptying (``dos-adapters waste due``).

The bins are ``WasteContainer`` entities with a ``fillingLevel`` (0..1), written by the LoRaWAN
adapter; the EDG container sites of this adapter carry none and never show up. Two sources:

* the broker: ``GET /ngsi-ld/v1/entities?type=WasteContainer&q=fillingLevel>=<threshold>``, page by
  page (``limit`` ≤ 1000, ``offset``), with the tenant and the @context Link header (``query_due``);
* an NDJSON entity file as ``run`` writes it without a broker (read back with
  ``adapters.core.entity_files``).

Everything else is pure: ``due_bins`` filters and sorts, ``render`` formats a table, JSON or GeoJSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from adapters.core.broker import MAX_PAGE_SIZE, BrokerClient, BrokerError
from adapters.core.entity_files import attribute_value, finite_number, latest_entities

__all__ = [
    "MAX_PAGE_SIZE",
    "DueBin",
    "DueQueryError",
    "OutputFormat",
    "due_bins",
    "due_query",
    "query_due",
    "render",
]

ENTITY_TYPE = "WasteContainer"
OutputFormat = Literal["table", "json", "geojson"]


class DueQueryError(Exception):
    """The broker could not be asked; the message says what to check."""


@dataclass(frozen=True)
class DueBin:
    id: str
    name: str
    filling_level: float
    observed_at: str | None
    lon: float | None
    lat: float | None
    stored_waste_kind: str | None


# -- pure functions ----------------------------------------------------------------------------


def _tenant_of(identifier: str) -> str | None:
    parts = identifier.split(":")
    return parts[3] if len(parts) >= 5 and parts[:2] == ["urn", "ngsi-ld"] else None


def _moment(observed_at: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(observed_at) if observed_at else None
    except ValueError:
        return None


def _bin(entity: Mapping[str, Any], level: float) -> DueBin:
    filling = entity.get("fillingLevel")
    observed_at = filling.get("observedAt") if isinstance(filling, Mapping) else None
    geometry = attribute_value(entity.get("location"))
    lon = lat = None
    if isinstance(geometry, Mapping) and geometry.get("type") == "Point":
        coordinates = geometry.get("coordinates")
        if isinstance(coordinates, Sequence) and len(coordinates) >= 2:
            lon, lat = finite_number(coordinates[0]), finite_number(coordinates[1])
    name, kind = attribute_value(entity.get("name")), attribute_value(entity.get("storedWasteKind"))
    return DueBin(
        id=str(entity["id"]),
        name=name if isinstance(name, str) and name else str(entity["id"]),
        filling_level=level,
        observed_at=observed_at if isinstance(observed_at, str) else None,
        lon=lon,
        lat=lat,
        stored_waste_kind=kind if isinstance(kind, str) else None,
    )


def due_bins(entities: Iterable[Mapping[str, Any]], threshold: float, *, tenant: str | None = None) -> list[DueBin]:
    """The WasteContainers with ``fillingLevel`` ≥ threshold, fullest first.

    Ties go to the bin that has been that full for longer (older ``observedAt``), then by id, so
    the order is stable. ``tenant`` keeps only that city's ids (an entity file may mix cities).
    """
    bins = []
    for entity in entities:
        identifier = entity.get("id")
        if entity.get("type") != ENTITY_TYPE or not isinstance(identifier, str):
            continue
        if tenant is not None and _tenant_of(identifier) != tenant:
            continue
        level = finite_number(attribute_value(entity.get("fillingLevel")))
        if level is not None and level >= threshold:
            bins.append(_bin(entity, level))

    def order(item: DueBin) -> tuple[float, bool, float, str]:
        moment = _moment(item.observed_at)
        return (-item.filling_level, moment is None, moment.timestamp() if moment else 0.0, item.id)

    return sorted(bins, key=order)


def _percent(level: float) -> str:
    return f"{level * 100:.0f} %"


def _coordinate(value: float | None) -> str:
    return "" if value is None else f"{value:.5f}"


def _table(bins: Sequence[DueBin]) -> str:
    header = ("fill", "name", "observedAt", "lon", "lat")
    rows = [
        (_percent(b.filling_level), b.name, b.observed_at or "", _coordinate(b.lon), _coordinate(b.lat)) for b in bins
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    right = {0, 3, 4}  # numbers line up on the right
    lines = [
        "  ".join(
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)


def _as_json(item: DueBin) -> dict[str, Any]:
    record = asdict(item)
    return {
        "id": record["id"],
        "name": record["name"],
        "fillingLevel": record["filling_level"],
        "observedAt": record["observed_at"],
        "storedWasteKind": record["stored_waste_kind"],
        "lon": record["lon"],
        "lat": record["lat"],
    }


def _geojson(bins: Sequence[DueBin]) -> dict[str, Any]:
    features = []
    for item in bins:
        properties = {k: v for k, v in _as_json(item).items() if k not in ("lon", "lat")}
        geometry = (
            {"type": "Point", "coordinates": [item.lon, item.lat]}
            if item.lon is not None and item.lat is not None
            else None
        )
        features.append({"type": "Feature", "id": item.id, "geometry": geometry, "properties": properties})
    return {"type": "FeatureCollection", "features": features}


def render(bins: Sequence[DueBin], output_format: OutputFormat) -> str:
    """``table`` for people (fill in %), ``json`` (fillingLevel 0..1) or ``geojson`` for a map or a router."""
    if output_format == "table":
        return _table(bins)
    if output_format == "json":
        return json.dumps([_as_json(b) for b in bins], ensure_ascii=False, indent=2)
    if output_format == "geojson":
        return json.dumps(_geojson(bins), ensure_ascii=False, indent=2)
    raise ValueError(f"unknown output format {output_format!r}")


def due_query(threshold: float) -> str:
    """The NGSI-LD ``q`` for the threshold; always a decimal so it compares as a number."""
    return f"fillingLevel>={float(threshold)!r}"


# -- the broker --------------------------------------------------------------------------------


def query_due(
    client: BrokerClient, *, tenant: str | None, threshold: float, page_size: int = MAX_PAGE_SIZE
) -> list[dict[str, Any]]:
    """Every WasteContainer of the tenant with ``fillingLevel`` ≥ threshold, as normalized entities.

    Pages with ``limit=page_size`` until a page comes back shorter. Bins that change while the
    pages are read may be seen twice or not at all; ``latest_entities`` folds repeats.
    """
    params = {"type": ENTITY_TYPE, "q": due_query(threshold)}
    try:
        return latest_entities(entity for page in client.query(tenant, params, page_size=page_size) for entity in page)
    except BrokerError as error:
        raise DueQueryError(str(error)) from None

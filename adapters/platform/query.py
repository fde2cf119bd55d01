"""``dos-adapters query``: the current state of entities of one type, from the NGSI-LD API.

``GET /ngsi-ld/v1/entities?type=T[&q=][&attrs=][&georel=near;maxDistance==M&geometry=Point&coordinates=[lon,lat]]``
page by page (``limit`` ≤ 1000, ``offset``) through the core query path (``BrokerClient.query``), with
the tenant header, the @context Link header and the broker credentials; one ``count=true&limit=0``
request first gives the total for the progress bar.
Rendering is pure: ``flatten`` turns a normalized entity into one row of strings.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adapters.core.broker import BrokerClient
from adapters.core.entities import Entity
from adapters.platform.ngsi import NgsiLdClient, PlatformError
from adapters.platform.spreadsheet import spreadsheet_safe

__all__ = [
    "MAX_PAGE_SIZE",
    "Near",
    "count_entities",
    "flatten",
    "parse_near",
    "query_params",
    "read_entities",
    "render",
]

MAX_PAGE_SIZE = 1000  # Orion-LD refuses a larger limit with 400
OutputFormat = Literal["table", "csv", "json"]


@dataclass(frozen=True)
class Near:
    lon: float
    lat: float
    metres: float

    def params(self) -> dict[str, str]:
        """NGSI-LD geo-query: points within ``metres`` of (lon, lat), on the ``location`` GeoProperty."""
        return {
            "georel": f"near;maxDistance=={self.metres:g}",
            "geometry": "Point",
            "coordinates": json.dumps([self.lon, self.lat], separators=(",", ":")),
        }


def parse_near(text: str) -> Near:
    """``LON,LAT,METRES`` (WGS84 degrees, metres); ValueError saying what is wrong."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise ValueError(f"--near {text!r}: expected LON,LAT,METRES, e.g. 7.4653,51.5136,500")
    try:
        lon, lat, metres = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--near {text!r}: LON, LAT and METRES must be numbers") from None
    if not all(math.isfinite(v) for v in (lon, lat, metres)):
        raise ValueError(f"--near {text!r}: numbers must be finite")
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        raise ValueError(f"--near {text!r}: longitude first (-180..180), then latitude (-90..90)")
    if metres <= 0:
        raise ValueError(f"--near {text!r}: METRES must be positive")
    return Near(lon, lat, metres)


def query_params(entity_type: str, *, q: str | None, near: Near | None, attrs: Sequence[str]) -> dict[str, str]:
    params = {"type": entity_type}
    if q:
        params["q"] = q
    if attrs:
        params["attrs"] = ",".join(attrs)
    if near is not None:
        params.update(near.params())
    return params


def count_entities(client: NgsiLdClient, params: Mapping[str, str], *, tenant: str | None) -> int | None:
    """How many entities match (``count=true&limit=0``), for the progress bar; None when the broker
    does not say. Errors are left to the query itself, which reports them properly."""
    try:
        response = client.request("GET", "/entities", tenant=tenant, params={**params, "count": "true", "limit": "0"})
    except PlatformError:
        return None
    with response:
        total = response.headers.get("NGSILD-Results-Count", "")
        return int(total) if response.status_code == 200 and total.isdigit() else None


def read_entities(
    broker: BrokerClient,
    params: Mapping[str, str],
    *,
    tenant: str | None,
    page_size: int = MAX_PAGE_SIZE,
    limit: int | None = None,
    on_page: Callable[[int], None] | None = None,
) -> list[Entity]:
    """The matching entities, page by page through the core query path (``limit`` <= 1000, ``offset``),
    at most ``limit`` of them; BrokerQueryError says what to fix when the broker cannot answer."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page size {page_size}: must be 1..{MAX_PAGE_SIZE}")
    size = min(page_size, limit) if limit else page_size
    entities: list[Entity] = []
    for page in broker.query(tenant, params, page_size=size):
        entities.extend(page)
        if on_page is not None:
            on_page(len(page))
        if limit is not None and len(entities) >= limit:
            return entities[:limit]
    return entities


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping) and value.get("type") == "Point":
        coordinates = value.get("coordinates")
        if isinstance(coordinates, list) and len(coordinates) >= 2:
            return f"{coordinates[0]},{coordinates[1]}"
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _value(attribute: Any) -> Any:
    if isinstance(attribute, list):  # several instances (datasetId): the first
        attribute = attribute[0] if attribute else None
    if not isinstance(attribute, Mapping):
        return attribute
    for member in ("value", "object", "languageMap", "vocab", "json"):
        if member in attribute:
            return attribute[member]
    return None


def columns(entities: Sequence[Mapping[str, Any]], attrs: Sequence[str]) -> list[str]:
    if attrs:
        return ["id", *attrs]
    seen: dict[str, None] = {}
    for entity in entities:
        for name in entity:
            if name not in ("id", "type", "@context"):
                seen.setdefault(name)
    return ["id", *seen]


def flatten(entity: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """One row: the id, then each attribute's value (Point as ``lon,lat``, structures as JSON)."""
    return [str(entity.get("id", "")) if n == "id" else _text(_value(entity.get(n))) for n in names]


def render(entities: Sequence[Mapping[str, Any]], attrs: Sequence[str], output_format: OutputFormat) -> str:
    """``table`` for people, ``csv`` for spreadsheets, ``json`` (the normalized entities) for tools."""
    if output_format == "json":
        return json.dumps(list(entities), ensure_ascii=False, indent=2)
    names = columns(entities, attrs)
    rows = [flatten(e, names) for e in entities]
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(spreadsheet_safe(name) for name in names)
        writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
        return buffer.getvalue().rstrip("\n")
    if output_format == "table":
        clipped = [[cell if len(cell) <= 60 else cell[:57] + "..." for cell in row] for row in rows]
        widths = [max(len(r[i]) for r in (names, *clipped)) for i in range(len(names))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in (names, *clipped)
        )
    raise ValueError(f"unknown output format {output_format!r}")

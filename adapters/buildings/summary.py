"""The per-building summary (``dos-adapters building show``): latest room climate and last day's consumption.

What a building manager reads, and what the building dashboard panel queries:

* the ``Building`` itself: ``GET /ngsi-ld/v1/entities?id=<urn>&type=Building``;
* its rooms: ``GET /ngsi-ld/v1/entities?type=IndoorEnvironmentObserved&q=refPointOfInterest=="<urn>"``
  (the LoRaWAN kind ``indoor`` links each classroom sensor to its building this way);
* its meters: ``GET /ngsi-ld/v1/entities?type=DeviceMeasurement&q=refBuilding=="<urn>"``
  (register readings and daily consumption of the ``building-meters`` source),

each page by page (``limit`` ≤ 1000, ``offset``) with the tenant and the @context Link header. The
broker keeps the latest state of every entity, so each room's row is its latest reading. Without a
broker, an NDJSON entity file serves instead (latest entity per id, attribute by attribute, as an
upsert with ``options=update`` would leave it). Everything but the HTTP is pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from adapters.core.broker import MAX_PAGE_SIZE, BrokerClient, BrokerError
from adapters.core.entities import EntityError, entity_id
from adapters.core.entity_files import attribute_value, finite_number, latest_entities

__all__ = [
    "MAX_PAGE_SIZE",
    "BuildingSummary",
    "MeterRow",
    "OutputFormat",
    "RoomRow",
    "SummaryError",
    "Total",
    "building_urn",
    "query_building",
    "render",
    "summarise",
]

ROOM_TYPE, ROOM_LINK = "IndoorEnvironmentObserved", "refPointOfInterest"
METER_TYPE, METER_LINK = "DeviceMeasurement", "refBuilding"
READING, DAILY = "MeterReading", "DailyConsumption"
OutputFormat = Literal["table", "json"]


class SummaryError(Exception):
    """The summary cannot be made (broker unreachable, unknown tenant, bad id); the message says what to check."""


@dataclass(frozen=True)
class RoomRow:
    id: str
    name: str
    co2: float | None
    air_quality_level: str | None
    temperature: float | None
    relative_humidity: float | None
    observed_at: str | None


@dataclass(frozen=True)
class MeterRow:
    point: str
    name: str
    medium: str
    serial: str | None
    reading: float | None
    reading_unit: str | None
    reading_at: str | None
    day: str | None
    """Local date of the last complete day reported."""
    consumption: float | None
    consumption_unit: str | None


@dataclass(frozen=True)
class Total:
    medium: str
    day: str
    consumption: float
    unit: str
    meters: int
    lagging: int
    """Meters of this medium whose last reported day is older (not in the sum)."""


@dataclass(frozen=True)
class BuildingSummary:
    id: str
    found: bool
    name: str | None
    categories: tuple[str, ...]
    address: str | None
    rooms: tuple[RoomRow, ...]
    meters: tuple[MeterRow, ...]
    totals: tuple[Total, ...]


# -- pure functions ----------------------------------------------------------------------------


def building_urn(building: str, tenant: str) -> str:
    """The Building's entity id from a local id (``gymnasium-an-der-schweizer-allee``) or the id itself."""
    if building.startswith("urn:"):
        parts = building.split(":")
        if len(parts) < 5 or parts[:3] != ["urn", "ngsi-ld", "Building"]:
            raise SummaryError(f"{building!r} is not a Building id (urn:ngsi-ld:Building:<tenant>:<local id>)")
        if parts[3] != tenant:
            raise SummaryError(f"{building} belongs to tenant {parts[3]!r}, not {tenant!r}: pass --tenant {parts[3]}")
        return building
    try:
        return entity_id("Building", tenant, building)
    except EntityError as error:
        raise SummaryError(str(error)) from None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _observed_at(attribute: Any) -> str | None:
    return _text(attribute.get("observedAt")) if isinstance(attribute, Mapping) else None


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _room(entity: Mapping[str, Any]) -> RoomRow:
    times = [t for t in (_observed_at(entity.get(k)) for k in ("co2", "temperature", "relativeHumidity")) if t]
    date_observed = _text(attribute_value(entity.get("dateObserved")))
    return RoomRow(
        id=str(entity["id"]),
        name=_text(attribute_value(entity.get("name"))) or str(entity["id"]),
        co2=finite_number(attribute_value(entity.get("co2"))),
        air_quality_level=_text(attribute_value(entity.get("airQualityLevel"))),
        temperature=finite_number(attribute_value(entity.get("temperature"))),
        relative_humidity=finite_number(attribute_value(entity.get("relativeHumidity"))),
        observed_at=max(times, key=lambda t: _moment(t) or datetime.min) if times else date_observed,
    )


def _day_of(end: str | None, tz: ZoneInfo) -> str | None:
    """The local date of a day that ended at ``end`` (local midnight after it)."""
    moment = _moment(end)
    if moment is None or moment.tzinfo is None:
        return None
    return (moment - timedelta(seconds=1)).astimezone(tz).date().isoformat()


def _meters(entities: Sequence[Mapping[str, Any]], tz: ZoneInfo) -> list[MeterRow]:
    points: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for entity in entities:
        measurement = _text(attribute_value(entity.get("measurementType"))) or ""
        for suffix in (READING, DAILY):
            if measurement.endswith(suffix):
                local = str(entity["id"]).split(":", 4)[-1]
                point = local.removesuffix(f"-{measurement}")
                points.setdefault((point, measurement.removesuffix(suffix)), {})[suffix] = entity
    rows = []
    for (point, medium), parts in sorted(points.items()):
        reading, daily = parts.get(READING), parts.get(DAILY)
        names = [_text(attribute_value(e.get("name"))) for e in (reading, daily) if e is not None]
        name = next((n.rsplit(": ", 1)[0] for n in names if n), point)
        description = _text(attribute_value(reading.get("description"))) if reading is not None else None
        rows.append(
            MeterRow(
                point=point,
                name=name,
                medium=medium,
                serial=description.removeprefix("meter number ") if description else None,
                reading=finite_number(attribute_value(reading.get("numValue"))) if reading is not None else None,
                reading_unit=_text(attribute_value(reading.get("unit"))) if reading is not None else None,
                reading_at=_observed_at(reading.get("numValue")) if reading is not None else None,
                day=_day_of(_observed_at(daily.get("numValue")), tz) if daily is not None else None,
                consumption=finite_number(attribute_value(daily.get("numValue"))) if daily is not None else None,
                consumption_unit=_text(attribute_value(daily.get("unit"))) if daily is not None else None,
            )
        )
    return rows


def _totals(meters: Sequence[MeterRow]) -> list[Total]:
    totals = []
    for medium, unit in sorted({(m.medium, m.consumption_unit) for m in meters if m.consumption_unit and m.day}):
        group = [m for m in meters if m.medium == medium and m.consumption_unit == unit and m.day]
        last = max(str(m.day) for m in group)
        current = [m for m in group if m.day == last]
        total = round(sum(m.consumption or 0.0 for m in current), 3)
        totals.append(Total(medium, last, total, unit, len(current), len(group) - len(current)))
    return totals


def _address(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    street = value.get("streetAddress")
    place = " ".join(str(value[k]) for k in ("postalCode", "addressLocality") if value.get(k))
    return ", ".join(part for part in (street, place) if part) or None


def summarise(entities: Iterable[Mapping[str, Any]], building: str, tz: ZoneInfo) -> BuildingSummary:
    """The summary of the Building ``building`` (its entity id) from any mix of entities."""
    pool = [e for e in entities if isinstance(e.get("id"), str)]
    own = next((e for e in pool if e["id"] == building and e.get("type") == "Building"), None)
    rooms = [e for e in pool if e.get("type") == ROOM_TYPE and attribute_value(e.get(ROOM_LINK)) == building]
    meters = [e for e in pool if e.get("type") == METER_TYPE and attribute_value(e.get(METER_LINK)) == building]
    room_rows = sorted((_room(e) for e in rooms), key=lambda r: (r.name, r.id))
    meter_rows = _meters(meters, tz)
    categories = attribute_value(own.get("category")) if own is not None else None
    return BuildingSummary(
        id=building,
        found=own is not None,
        name=_text(attribute_value(own.get("name"))) if own is not None else None,
        categories=tuple(c for c in categories if isinstance(c, str)) if isinstance(categories, list) else (),
        address=_address(attribute_value(own.get("address"))) if own is not None else None,
        rooms=tuple(room_rows),
        meters=tuple(meter_rows),
        totals=tuple(_totals(meter_rows)),
    )


_UNIT_SYMBOLS = {"KWH": "kWh", "MWH": "MWh", "MTQ": "m³"}


def _cell(value: float | None, unit: str, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f} {unit}".rstrip()


def _quantity(value: float | None, unit: str | None) -> str:
    """Meter values as exact as sent (up to 3 decimals: Wh, litres), with the unit's symbol."""
    if value is None:
        return "-"
    symbol = _UNIT_SYMBOLS.get(unit or "", unit or "")
    return f"{f'{value:.3f}'.rstrip('0').rstrip('.')} {symbol}".rstrip()


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    return [
        "  ".join(
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in (header, *rows)
    ]


def _table(summary: BuildingSummary) -> str:
    title = summary.name or "(no Building entity with this id)"
    if summary.categories:
        title += f" ({', '.join(summary.categories)})"
    if summary.address:
        title += f", {summary.address}"
    lines = [title, summary.id, ""]
    if summary.rooms:
        rows = [
            (
                r.name,
                _cell(r.co2, "ppm", 0),
                r.air_quality_level or "-",
                _cell(r.temperature, "°C"),
                _cell(None if r.relative_humidity is None else r.relative_humidity * 100, "%", 0),
                r.observed_at or "-",
            )
            for r in summary.rooms
        ]
        lines += _grid(("room", "CO2", "air", "temperature", "humidity", "observedAt"), rows, {1, 3, 4})
    else:
        lines.append("no room sensors linked (IndoorEnvironmentObserved with refPointOfInterest)")
    lines.append("")
    if summary.meters:
        rows = [
            (
                m.name,
                m.medium,
                _quantity(m.reading, m.reading_unit),
                m.reading_at or "-",
                m.day or "-",
                _quantity(m.consumption, m.consumption_unit),
            )
            for m in summary.meters
        ]
        lines += _grid(("meter", "medium", "reading", "read at", "last day", "consumption"), rows, {2, 5})
        for total in summary.totals:
            lagging = f"; {total.lagging} meter(s) have not reported this day yet" if total.lagging else ""
            lines.append(
                f"{total.medium} on {total.day}: {_quantity(total.consumption, total.unit)} "
                f"({total.meters} meter(s){lagging})"
            )
    else:
        lines.append("no meters linked (DeviceMeasurement with refBuilding)")
    return "\n".join(lines)


def render(summary: BuildingSummary, output_format: OutputFormat) -> str:
    """``table`` for people, ``json`` (the same data, numbers as sent) for the dashboard and tools."""
    if output_format == "table":
        return _table(summary)
    if output_format == "json":
        return json.dumps(asdict(summary), ensure_ascii=False, indent=2)
    raise ValueError(f"unknown output format {output_format!r}")


# -- the broker --------------------------------------------------------------------------------


def query_building(
    client: BrokerClient, *, tenant: str, building: str, page_size: int = MAX_PAGE_SIZE
) -> list[dict[str, Any]]:
    """The Building ``building`` (entity id) and every room sensor and meter entity that references it."""
    queries = (
        {"id": building, "type": "Building"},
        {"type": ROOM_TYPE, "q": f'{ROOM_LINK}=="{building}"'},
        {"type": METER_TYPE, "q": f'{METER_LINK}=="{building}"'},
    )
    try:
        return latest_entities(
            entity
            for params in queries
            for page in client.query(tenant, params, page_size=page_size)
            for entity in page
        )
    except BrokerError as error:
        raise SummaryError(str(error)) from None

"""Source kind ``sensor-community``: citizen air-quality sensors of sensor.community (formerly luftdaten.info).

Read from ``data.sensor.community/airrohr/v1/filter/area=<lat>,<lon>,<km>`` (or ``/static/v1/data.json``,
same records): a JSON array with one record per *sensor* and measurement cycle, covering the last
five minutes. Quirks of the feed, and what we do:

* A station is several sensors (a PM sensor such as the SDS011, a temperature/humidity/pressure
  sensor such as the BME280 or DHT22) sharing a ``location.id``: their records are merged into one
  ``AirQualityObserved`` per location. The same sensor appears once per cycle (about every 145 s):
  per quantity the newest reading wins; on a tie the sensor with the lower id, so the choice is stable.
* Every ``value`` and coordinate is a string (``"10.50"``); the server-computed
  ``pressure_at_sealevel`` is a JSON number without an id and is not a measurement: ignored.
* ``timestamp`` is UTC without an offset (``"2024-05-14 08:13:27"``).
* ``P1`` is PM10, ``P2`` PM2.5 (µg/m³), ``humidity`` in % (-> fraction), ``pressure`` in Pa (-> hPa).
* A failing SDS011 (blocked inlet, dead fan) reports its maximum, 999.9 (PM2.5) and 1999.9 (PM10):
  those and negative or physically impossible values are rejected with the reason; the location's
  other quantities still go out. Noise and radiation sensors carry nothing we map: no entity.
* Indoor sensors (``location.indoor`` 1) are skipped unless ``include_indoor`` is set.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.core.adapter import NormalizeContext, Payload, PayloadError, RawRecord, RecordRejected, SourceKind
from adapters.core.alerts import AlertStore, AlertSubject, thresholds_from_settings
from adapters.core.entities import Attribute, Entity, entity_id, geo_point, make_entity, prop, utc_iso
from adapters.core.jsonpayload import load_json
from adapters.core.timecheck import time_problem

__all__ = [
    "DATA_PROVIDER",
    "DEFAULT_HYSTERESIS",
    "QUANTITIES",
    "SOURCE",
    "Quantity",
    "normalize_record",
    "parse_payload",
]

# Dortmund and Schwerte: 16 km around a point between the two city centres.
DEFAULT_URL = "https://data.sensor.community/airrohr/v1/filter/area=51.48,7.515,16"
DATA_PROVIDER = "sensor.community"
DEFAULT_HYSTERESIS = 5.0
SOURCE_URL = "https://sensor.community/"
# What a failing SDS011 sends instead of a measurement (sensor.community firmware PR #442, issue #899).
PM25_ERROR = 999.0
PM10_ERROR = 1999.0


@dataclass(frozen=True)
class Quantity:
    """One mapped ``value_type``: where it goes, how it converts, which values can be real."""

    value_type: str
    attribute: str
    unit_code: str
    convert: Callable[[float], float]
    low: float
    high: float
    raw_unit: str
    label: str


QUANTITIES: Mapping[str, Quantity] = {
    q.value_type: q
    for q in (
        Quantity("P1", "pm10", "GQ", lambda v: v, 0.0, PM10_ERROR, "µg/m³", "PM10"),
        Quantity("P2", "pm25", "GQ", lambda v: v, 0.0, PM25_ERROR, "µg/m³", "PM2.5"),
        # Operating ranges of the BME280 / DHT22 / SHT3x the network uses.
        Quantity("temperature", "temperature", "CEL", lambda v: v, -40.0, 85.0, "°C", "temperature"),
        Quantity("humidity", "relativeHumidity", "C62", lambda v: round(v / 100, 4), 0.0, 100.0, "%", "humidity"),
        Quantity("pressure", "pressure", "A97", lambda v: round(v / 100, 2), 30000.0, 110000.0, "Pa", "pressure"),
    )
}
ATTRIBUTE_ORDER = ("pm10", "pm25", "temperature", "relativeHumidity", "pressure")


def parse_payload(payload: Payload) -> Sequence[RawRecord]:
    """One record per location: ``{"location": {...}, "readings": [the sensors' records]}``, in feed order."""
    document = load_json(payload)
    if not isinstance(document, list):
        raise PayloadError("expected a sensor.community JSON array of sensor records")
    groups: dict[str, dict[str, Any]] = {}
    unplaced: list[dict[str, Any]] = []
    for item in document:
        location = item.get("location") if isinstance(item, Mapping) else None
        location_id = location.get("id") if isinstance(location, Mapping) else None
        if location_id is None or isinstance(location_id, bool):
            unplaced.append({"location": location, "readings": [item]})
            continue
        group = groups.setdefault(str(location_id), {"location": location, "readings": []})
        group["readings"].append(item)
    return [*groups.values(), *unplaced]


def record_label(record: RawRecord) -> str:
    location = record.get("location")
    location_id = location.get("id") if isinstance(location, Mapping) else None
    sensors = sorted(
        {str(r["sensor"].get("id")) for r in record.get("readings", []) if isinstance(r.get("sensor"), Mapping)}
    )
    return f"location={location_id!r}, sensors={','.join(sensors)}"


@dataclass(frozen=True)
class _Reading:
    quantity: Quantity
    value: float
    observed_at: datetime
    sensor_id: int
    sensor_type: str


def _to_float(raw: Any) -> float | None:
    """The feed's number strings (and the odd bare number); None for anything else."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    try:
        return float(raw)
    except ValueError:
        return None


_STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)


def _timestamp(reading: Mapping[str, Any]) -> datetime:
    stamp = reading.get("timestamp")
    try:
        if isinstance(stamp, str) and _STAMP.fullmatch(stamp):  # the usual form: read alike, 30 times faster
            return datetime.fromisoformat(stamp).replace(tzinfo=UTC)
        return datetime.strptime(str(stamp), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"timestamp {stamp!r} is not 'YYYY-MM-DD HH:MM:SS'") from None


def _readings(record: RawRecord, problems: list[str], received_at: datetime | None) -> list[_Reading]:
    found = []
    for reading in record.get("readings", []):
        sensor = reading.get("sensor") if isinstance(reading, Mapping) else None
        if not isinstance(sensor, Mapping) or not isinstance(sensor.get("id"), int):
            problems.append("a record without sensor id")
            continue
        kind = sensor.get("sensor_type")
        sensor_type = str((kind.get("name") if isinstance(kind, Mapping) else None) or "?")
        where = f"sensor {sensor['id']} ({sensor_type})"
        values = reading.get("sensordatavalues")
        if not isinstance(values, list):
            problems.append(f"{where}: no sensordatavalues")
            continue
        mapped = [
            v
            for v in values
            if isinstance(v, Mapping) and isinstance(v.get("value_type"), str) and v["value_type"] in QUANTITIES
        ]
        if not mapped:
            continue  # noise, radiation, or only pressure_at_sealevel
        try:
            observed_at = _timestamp(reading)
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        if problem := time_problem(observed_at, received_at):
            problems.append(f"{where}: {problem}")
            continue
        for item in mapped:
            quantity = QUANTITIES[item["value_type"]]
            value = _to_float(item.get("value"))
            if value is None:
                problems.append(f"{where}: {item['value_type']} {item.get('value')!r} is not a number")
                continue
            found.append(_Reading(quantity, value, observed_at, sensor["id"], sensor_type))
    return found


def _newest(readings: list[_Reading]) -> dict[str, _Reading]:
    chosen: dict[str, _Reading] = {}
    for reading in sorted(readings, key=lambda r: (r.observed_at, -r.sensor_id)):
        chosen[reading.quantity.attribute] = reading
    return chosen


def _failing_pm_sensors(chosen: Mapping[str, _Reading]) -> dict[int, list[_Reading]]:
    """PM sensors sending their error values: then neither their P1 nor their P2 is a measurement."""
    failing: dict[int, list[_Reading]] = {}
    for attribute in ("pm10", "pm25"):
        reading = chosen.get(attribute)
        if reading is not None and reading.value >= reading.quantity.high:
            failing.setdefault(reading.sensor_id, []).append(reading)
    return failing


def _implausible(reading: _Reading) -> str | None:
    quantity, value = reading.quantity, reading.value
    if math.isfinite(value) and quantity.low <= value <= quantity.high:
        return None
    unit = quantity.raw_unit
    return (
        f"sensor {reading.sensor_id} ({reading.sensor_type}): {quantity.value_type} {value:g} {unit} is implausible "
        f"(expected {quantity.low:g}..{quantity.high:g} {unit}), {quantity.attribute} left out"
    )


def _location(record: RawRecord) -> tuple[str, Attribute, bool]:
    location = record.get("location")
    if not isinstance(location, Mapping) or location.get("id") is None:
        raise RecordRejected("record has no location id")
    try:
        lon, lat = float(location["longitude"]), float(location["latitude"])
    except (KeyError, TypeError, ValueError):
        raise RecordRejected(
            f"location {location.get('id')}: coordinates {location.get('longitude')!r}, "
            f"{location.get('latitude')!r} are not numbers"
        ) from None
    return str(location["id"]), geo_point(lon, lat), location.get("indoor") in (1, "1", True)


def normalize_record(record: RawRecord, context: NormalizeContext) -> list[Entity]:
    if not isinstance(record, Mapping):
        raise RecordRejected(f"record is {type(record).__name__}, expected a location group")
    strays = [r for r in record.get("readings", []) if not isinstance(r, Mapping)]
    if strays:
        raise RecordRejected(f"record is {type(strays[0]).__name__}, expected a sensor record object")
    location_id, location, indoor = _location(record)
    settings = context.settings
    if indoor and not settings.get("include_indoor", False):
        return []
    problems: list[str] = []
    chosen = _newest(_readings(record, problems, context.received_at))
    failing = _failing_pm_sensors(chosen)
    for sensor_id, readings in failing.items():
        sent = ", ".join(f"{r.quantity.value_type} {r.value:g}" for r in readings)
        problems.append(
            f"sensor {sensor_id} ({readings[0].sensor_type}): sends its error values ({sent} µg/m³: blocked inlet "
            "or failed fan), pm10 and pm25 left out"
        )
    accepted: dict[str, _Reading] = {}
    for attribute, reading in chosen.items():
        if reading.quantity.attribute in ("pm10", "pm25") and reading.sensor_id in failing:
            continue
        reason = _implausible(reading)
        if reason:
            problems.append(reason)
        else:
            accepted[attribute] = reading
    if not accepted:
        if problems:
            raise RecordRejected("; ".join(problems))
        return []  # only sensors we do not map

    local = f"sensor-community-{location_id}"
    attributes: dict[str, Attribute] = {
        "location": location,
        "dateObserved": prop(utc_iso(max(r.observed_at for r in accepted.values()))),
    }
    for attribute in ATTRIBUTE_ORDER:
        if attribute in accepted:
            reading = accepted[attribute]
            attributes[attribute] = prop(
                reading.quantity.convert(reading.value),
                observed_at=reading.observed_at,
                unit_code=reading.quantity.unit_code,
            )
    attributes["typeofLocation"] = prop("indoor" if indoor else "outdoor")
    attributes["dataProvider"] = prop(settings.get("data_provider", DATA_PROVIDER))
    attributes["source"] = prop(SOURCE_URL)
    entities = [make_entity("AirQualityObserved", context.tenant, local, attributes)]
    entities += _alerts(location_id, local, location, accepted, context)
    if problems:
        raise RecordRejected("; ".join(problems), partial=entities)
    return entities


def _alerts(
    location_id: str, local: str, location: Attribute, accepted: Mapping[str, _Reading], context: NormalizeContext
) -> list[Entity]:
    store = context.resources
    tables = context.settings.get("alerts", {}).get(location_id)
    if not isinstance(store, AlertStore) or not tables:
        return []
    alerts = []
    for attribute in ("pm10", "pm25"):
        reading = accepted.get(attribute)
        if reading is None or attribute not in tables:
            continue
        thresholds = thresholds_from_settings(
            tables[attribute],
            context.settings.get("alert_hysteresis", DEFAULT_HYSTERESIS),
            f"adapters.airquality.alerts.{location_id}.{attribute}",
        )
        subject = AlertSubject(
            key=f"{attribute}-{local}",
            source_id=entity_id("AirQualityObserved", context.tenant, local),
            label=f"sensor.community location {location_id}",
            quantity=attribute,
            quantity_label=reading.quantity.label,
            unit_code="GQ",
            unit_text="µg/m³",
            category="environment",
            sub_category="airPollution",
            location=location,
        )
        alert = store.observe(
            subject,
            reading.value,
            reading.observed_at,
            thresholds,
            tenant=context.tenant,
            data_provider=context.settings.get("data_provider", DATA_PROVIDER),
        )
        if alert is not None:
            alerts.append(alert)
    return alerts


SOURCE = SourceKind(
    name="sensor-community",
    description="sensor.community citizen sensors in an area: PM10, PM2.5, temperature, humidity, pressure",
    entity_types=("AirQualityObserved", "Alert"),
    parse=parse_payload,
    normalize=normalize_record,
    record_label=record_label,
    default_url=DEFAULT_URL,
    sample="sensor-community-area.json",
)

"""Source kind ``brightsky``: current weather at the DWD station nearest to a point, via Bright Sky.

Read from ``api.brightsky.dev/current_weather?lat=…&lon=…``: ``{"weather": {…}, "sources": [{…}]}``,
compiled by Bright Sky from the DWD's SYNOP observations of the last 90 minutes. Quirks, and what we do:

* Units follow the ``units`` query parameter: ``dwd`` (the default) gives °C, hPa and **km/h**;
  ``si`` gives K, Pa and m/s (precipitation stays mm). Read from the configured URL; both end up in
  °C, hPa and m/s (unitCode MTS).
* The record names its main station in ``source_id``; values Bright Sky filled in from *other*
  stations are listed in ``fallback_source_ids`` and left out here: they were not observed at the
  station the entity stands for.
* Any value can be null: that attribute is left out. Wind comes as 10/30/60-minute means; we use the
  10-minute values (the SYNOP standard) and the precipitation of the last 60 minutes.
* ``relative_humidity`` is an integer percentage -> a fraction; wind direction 0..360 degrees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from adapters.core.adapter import NormalizeContext, Payload, PayloadError, RawRecord, RecordRejected, SourceKind
from adapters.core.entities import Attribute, Entity, geo_point, make_entity, prop, utc_iso
from adapters.core.jsonpayload import load_json
from adapters.core.timecheck import time_problem

__all__ = ["DATA_PROVIDER", "FIELDS", "SOURCE", "Field", "normalize_record", "parse_payload", "units_of"]

# Dortmund city centre; Bright Sky answers with the nearest DWD SYNOP station within 50 km.
DEFAULT_URL = "https://api.brightsky.dev/current_weather?lat=51.5136&lon=7.4653"
DATA_PROVIDER = "Deutscher Wetterdienst (DWD), via Bright Sky"
STATION_URL = "https://api.brightsky.dev/current_weather?{key}={station}"


def _identity(value: float) -> float:
    return value


@dataclass(frozen=True)
class Field:
    """One Bright Sky field -> one WeatherObserved attribute, converted from either unit system."""

    key: str
    attribute: str
    unit_code: str | None
    from_dwd: Callable[[float], float]
    from_si: Callable[[float], float]
    low: float
    high: float


FIELDS: tuple[Field, ...] = (
    Field("temperature", "temperature", "CEL", _identity, lambda k: round(k - 273.15, 2), -60.0, 60.0),
    Field("relative_humidity", "relativeHumidity", "C62", lambda p: p / 100, lambda p: p / 100, 0.0, 1.0),
    Field("pressure_msl", "atmosphericPressure", "A97", _identity, lambda pa: round(pa / 100, 2), 850.0, 1100.0),
    Field("wind_speed_10", "windSpeed", "MTS", lambda kmh: round(kmh / 3.6, 2), _identity, 0.0, 100.0),
    Field("wind_direction_10", "windDirection", "DD", _identity, _identity, 0.0, 360.0),
    Field("wind_gust_speed_10", "gustSpeed", "MTS", lambda kmh: round(kmh / 3.6, 2), _identity, 0.0, 150.0),
    Field("precipitation_60", "precipitation", "MMT", _identity, _identity, 0.0, 500.0),
    Field("dew_point", "dewPoint", "CEL", _identity, lambda k: round(k - 273.15, 2), -80.0, 60.0),
    Field("visibility", "visibility", "MTR", _identity, _identity, 0.0, 100000.0),
)
CONDITIONS = frozenset({"dry", "fog", "rain", "sleet", "snow", "hail", "thunderstorm"})


def parse_payload(payload: Payload) -> Sequence[RawRecord]:
    document = load_json(payload)
    if not isinstance(document, dict) or not isinstance(document.get("sources"), list):
        raise PayloadError("expected a Bright Sky response {weather: {...}, sources: [...]}")
    if not isinstance(document.get("weather"), dict):
        raise PayloadError("weather is not one record: use the /current_weather endpoint (not /weather or /synop)")
    return [document]


def record_label(record: RawRecord) -> str:
    weather = record.get("weather")
    return f"source_id={weather.get('source_id')!r}" if isinstance(weather, Mapping) else "current weather"


def units_of(url: str | None) -> str:
    """``si`` when the configured URL asks for it, else Bright Sky's default ``dwd``."""
    requested = parse_qs(urlsplit(url or "").query).get("units", ["dwd"])
    return "si" if requested[-1].strip().lower() == "si" else "dwd"


def _station(record: RawRecord, weather: Mapping[str, Any]) -> Mapping[str, Any]:
    source_id = weather.get("source_id")
    for source in record.get("sources", []):
        if isinstance(source, Mapping) and source.get("id") == source_id and source_id is not None:
            return source
    raise RecordRejected(f"source_id {source_id!r} of the weather record is not in sources")


def _station_key(station: Mapping[str, Any]) -> tuple[str, str]:
    """(id query parameter, station id): the DWD station id, else the WMO one."""
    for key, prefix in (("dwd_station_id", "dwd"), ("wmo_station_id", "wmo")):
        value = station.get(key)
        if isinstance(value, str) and value.strip():
            return key, f"{prefix}-{value.strip()}"
    raise RecordRejected(f"source {station.get('id')!r} has neither dwd_station_id nor wmo_station_id")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def normalize_record(record: RawRecord, context: NormalizeContext) -> list[Entity]:
    weather = record.get("weather")
    if not isinstance(weather, Mapping):
        raise RecordRejected("no weather record")
    station = _station(record, weather)
    key, local = _station_key(station)
    lon, lat = _number(station.get("lon")), _number(station.get("lat"))
    if lon is None or lat is None:
        raise RecordRejected(f"station {local}: no coordinates")
    try:
        observed_at = datetime.fromisoformat(str(weather.get("timestamp")))
    except ValueError:
        raise RecordRejected(f"timestamp {weather.get('timestamp')!r} is not ISO 8601") from None
    if observed_at.tzinfo is None:
        raise RecordRejected(f"timestamp {weather.get('timestamp')!r} has no offset")
    if problem := time_problem(observed_at, context.received_at):
        raise RecordRejected(problem)

    units = units_of(context.settings.get("url"))
    fallback = weather.get("fallback_source_ids")
    borrowed = set(fallback) if isinstance(fallback, Mapping) else set()
    problems: list[str] = []
    measured: dict[str, Attribute] = {}
    for field in FIELDS:
        raw = weather.get(field.key)
        if raw is None or field.key in borrowed:
            continue
        value = _number(raw)
        if value is None:
            problems.append(f"{field.key} {raw!r} is not a number")
            continue
        converted = float((field.from_si if units == "si" else field.from_dwd)(value))
        if not field.low <= converted <= field.high:
            problems.append(f"{field.key} {raw!r} is implausible, {field.attribute} left out")
            continue
        measured[field.attribute] = prop(converted, observed_at=observed_at, unit_code=field.unit_code)
    condition = weather.get("condition")
    if isinstance(condition, str) and condition in CONDITIONS and "condition" not in borrowed:
        measured["weatherType"] = prop(condition, observed_at=observed_at)
    if not measured:
        raise RecordRejected("; ".join(problems) or f"station {local}: no observed value (all null or borrowed)")

    attributes: dict[str, Attribute] = {
        "name": prop(str(station.get("station_name") or local)),
        "location": geo_point(lon, lat),
        "dateObserved": prop(utc_iso(observed_at)),
        **measured,
        "dataProvider": prop(context.settings.get("data_provider", DATA_PROVIDER)),
        "source": prop(STATION_URL.format(key=key, station=str(station[key]).strip())),
    }
    entities = [make_entity("WeatherObserved", context.tenant, local, attributes)]
    if problems:
        raise RecordRejected("; ".join(problems), partial=entities)
    return entities


SOURCE = SourceKind(
    name="brightsky",
    description="Bright Sky current weather (DWD SYNOP observations) at the station nearest to a point",
    entity_types=("WeatherObserved",),
    parse=parse_payload,
    normalize=normalize_record,
    record_label=record_label,
    default_url=DEFAULT_URL,
    sample="brightsky-current-weather.json",
)

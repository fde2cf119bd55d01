"""Source kind ``pegelonline``: PEGELONLINE REST API v2 of the WSV, stations with their current measurement.

Read from ``stations.json?includeTimeseries=true&includeCurrentMeasurement=true`` (an array of
stations) or ``stations/<uuid>.json`` (one station). Quirks of the service, and what we do:

* ``W`` is in cm above the gauge zero (PNP), not above sea level: ``waterLevel`` = W / 100 m. A
  negative W (water below the gauge zero, extreme low water) cannot be a ``waterLevel`` (minimum 0):
  the entity goes out without it and the reading is dead-lettered with the reason.
* ``Q`` (discharge, m³/s) exists at few gauges and often lags ``W`` by hours.
* Timestamps carry the local offset (``+01:00`` / ``+02:00``); they end up UTC with ``Z``.
* A timeseries may have no ``currentMeasurement`` (the gauge has not reported): that quantity is
  left out. A measurement older than ``max_age`` before the poll is stale and left out too: QuantumLeap
  would file it under the time of the fresh one. A station with nothing current is rejected.
* Some stations have no ``longitude``/``latitude``: the position comes from
  ``[adapters.waterlevel.locations]``, else the station is rejected (``location`` is required).
* ``trend`` (-1/0/1) and ``stateMnwMhw`` (below mean low water / normal / above mean high water)
  are kept as ``waterLevelTrend`` and ``waterLevelState``.

Stations are keyed by their UUID (PEGELONLINE's recommended key); in settings a station may also be
named by its number or its short name, in any case.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from adapters.core.adapter import NormalizeContext, Payload, PayloadError, RawRecord, RecordRejected, SourceKind
from adapters.core.alerts import AlertStore, AlertSubject, thresholds_from_settings
from adapters.core.entities import Attribute, Entity, entity_id, geo_point, make_entity, prop, utc_iso
from adapters.core.jsonpayload import load_json
from adapters.core.timecheck import time_problem

__all__ = [
    "DATA_PROVIDER",
    "DEFAULT_HYSTERESIS",
    "DEFAULT_MAX_AGE",
    "SOURCE",
    "Measurement",
    "normalize_record",
    "parse_payload",
    "station_keys",
]

API = "https://www.pegelonline.wsv.de/webservices/rest-api/v2"
# Gauges within 30 km of Dortmund city centre: the Ruhr at Hattingen, the Dortmund-Ems canal at
# Henrichenburg, the Datteln-Hamm canal at Waltrop (PEGELONLINE has no gauge in Dortmund or Schwerte).
DEFAULT_URL = (
    f"{API}/stations.json?latitude=51.5136&longitude=7.4653&radius=30"
    "&includeTimeseries=true&includeCurrentMeasurement=true&prettyprint=false"
)
DATA_PROVIDER = "Wasserstraßen- und Schifffahrtsverwaltung des Bundes (WSV), PEGELONLINE"
DEFAULT_MAX_AGE = 6 * 3600
DEFAULT_HYSTERESIS = 0.1
TRENDS: Mapping[int, str] = {-1: "falling", 0: "steady", 1: "rising"}
STATES = frozenset({"low", "normal", "high"})
DISCHARGE_UNITS = frozenset({"m³/s", "m3/s"})


def parse_payload(payload: Payload) -> Sequence[RawRecord]:
    document = load_json(payload)
    if isinstance(document, dict) and "uuid" in document:
        return [document]  # stations/<uuid>.json
    if not isinstance(document, list):
        raise PayloadError("expected a PEGELONLINE stations.json array or one station object")
    return document


def record_label(record: RawRecord) -> str:
    return f"uuid={record.get('uuid')!r}, shortname={record.get('shortname')!r}"


def station_keys(record: RawRecord) -> frozenset[str]:
    """Every name a setting may use for this station: UUID, number, short and long name, in any case."""
    return frozenset(
        str(record[key]).strip().casefold() for key in ("uuid", "number", "shortname", "longname") if record.get(key)
    )


def _for_station(table: Mapping[str, Any], keys: frozenset[str]) -> tuple[str, Any] | None:
    for name, value in table.items():
        if name.strip().casefold() in keys:
            return name, value
    return None


@dataclass(frozen=True)
class Measurement:
    value: float
    observed_at: datetime
    trend: str | None = None
    state: str | None = None


def _timeseries(record: RawRecord, shortname: str) -> Mapping[str, Any] | None:
    series = record.get("timeseries")
    if not isinstance(series, list):
        return None
    return next((s for s in series if isinstance(s, Mapping) and s.get("shortname") == shortname), None)


def _measurement(
    series: Mapping[str, Any] | None, units: frozenset[str], problems: list[str], received_at: datetime | None
) -> Measurement | None:
    """The current measurement of a timeseries; None (and a problem when it is broken) otherwise."""
    if series is None:
        return None
    name = series.get("shortname")
    current = series.get("currentMeasurement")
    if not isinstance(current, Mapping):
        return None  # the gauge has not reported this quantity
    if not isinstance(series.get("unit"), str) or series["unit"] not in units:
        problems.append(f"{name}: unit {series.get('unit')!r}, expected {' or '.join(sorted(units))}")
        return None
    value = _number(current.get("value"))
    if value is None:
        problems.append(f"{name}: value {current.get('value')!r} is not a number")
        return None
    stamp = current.get("timestamp")
    try:
        observed_at = datetime.fromisoformat(str(stamp))
    except ValueError:
        observed_at = None
    if observed_at is None or observed_at.tzinfo is None:
        problems.append(f"{name}: timestamp {stamp!r} is not ISO 8601 with an offset")
        return None
    if problem := time_problem(observed_at, received_at):
        problems.append(f"{name}: {problem}")
        return None
    trend = current.get("trend")
    state = current.get("stateMnwMhw")
    return Measurement(
        value,
        observed_at,
        TRENDS.get(trend) if isinstance(trend, int) and not isinstance(trend, bool) else None,
        state if isinstance(state, str) and state in STATES else None,
    )


def _location(record: RawRecord, keys: frozenset[str], settings: Mapping[str, Any]) -> Attribute:
    lon, lat = _number(record.get("longitude")), _number(record.get("latitude"))
    if lon is not None and lat is not None:
        return geo_point(lon, lat)
    configured = _for_station(settings.get("locations", {}), keys)
    if configured is not None:
        return geo_point(float(configured[1][0]), float(configured[1][1]))
    raise RecordRejected(
        "no coordinates (longitude/latitude missing); add "
        f'[adapters.waterlevel.locations] "{record.get("uuid")}" = [lon, lat]'
    )


def _number(value: Any) -> float | None:
    """A JSON number as float; None for anything else (a string, a bool, null, NaN)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _selected(record: RawRecord, keys: frozenset[str], settings: Mapping[str, Any]) -> bool:
    waters = {str(w).strip().casefold() for w in settings.get("waters", [])}
    water = record.get("water")
    water_names = (
        {str(water.get(k, "")).strip().casefold() for k in ("shortname", "longname")}
        if isinstance(water, Mapping)
        else set()
    )
    if waters and not waters & water_names:
        return False
    stations = {str(s).strip().casefold() for s in settings.get("stations", [])}
    return not stations or bool(stations & keys)


def _water_name(record: RawRecord) -> str | None:
    water = record.get("water")
    if isinstance(water, Mapping):
        name = water.get("longname") or water.get("shortname")
        return str(name) if name else None
    return None


def _description(record: RawRecord) -> str | None:
    parts = []
    if water := _water_name(record):
        km = record.get("km")
        parts.append(f"{water} km {km}" if _number(km) is not None else water)
    if agency := record.get("agency"):
        parts.append(f"gauge of {agency}")
    return ", ".join(parts) or None


def _age(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def normalize_record(record: RawRecord, context: NormalizeContext) -> list[Entity]:
    if not isinstance(record, Mapping):
        raise RecordRejected(f"record is {type(record).__name__}, expected a station object")
    uuid = record.get("uuid")
    if not isinstance(uuid, str) or not uuid.strip():
        raise RecordRejected("station has no uuid")
    settings = context.settings
    keys = station_keys(record)
    if not _selected(record, keys, settings):
        return []
    name = str(record.get("longname") or record.get("shortname") or uuid).strip()
    location = _location(record, keys, settings)

    if not isinstance(record.get("timeseries"), list):
        raise RecordRejected(
            "station without timeseries: the url needs includeTimeseries=true&includeCurrentMeasurement=true"
        )
    problems: list[str] = []
    level = _measurement(_timeseries(record, "W"), frozenset({"cm"}), problems, context.received_at)
    flow = _measurement(_timeseries(record, "Q"), DISCHARGE_UNITS, problems, context.received_at)
    present = [m for m in (level, flow) if m is not None]
    if not present:
        raise RecordRejected("; ".join(problems) or "no current measurement of W or Q (the gauge has not reported)")
    as_of = context.received_at or max(m.observed_at for m in present)
    max_age = settings.get("max_age", DEFAULT_MAX_AGE)

    def stale(measurement: Measurement) -> bool:
        return bool(max_age) and as_of - measurement.observed_at > timedelta(seconds=max_age)

    if all(stale(m) for m in present):
        newest = max(m.observed_at for m in present)
        raise RecordRejected(
            f"stale: the newest measurement ({utc_iso(newest)}) is {_age((as_of - newest).total_seconds())} old, "
            f"more than max_age {_age(max_age)}; the gauge is not reporting"
        )
    level = None if level is None or stale(level) else level
    flow = None if flow is None or stale(flow) else flow
    if level is not None and level.value < 0:
        problems.append(
            f"W {level.value:g} cm: water below the gauge zero, and waterLevel cannot be negative: left out"
        )
        level = None
    if flow is not None and flow.value < 0:
        problems.append(f"Q {flow.value:g} m³/s: a discharge cannot be negative: left out")
        flow = None
    used = [m for m in (level, flow) if m is not None]
    if not used:
        raise RecordRejected("; ".join([*problems, "nothing current left to send"]))

    observed = max(m.observed_at for m in used)
    attributes: dict[str, Attribute] = {
        "name": prop(name),
        "location": location,
        "dateObserved": prop(utc_iso(observed)),
    }
    if level is not None:
        attributes["waterLevel"] = prop(round(level.value / 100, 4), observed_at=level.observed_at, unit_code="MTR")
        if level.trend is not None:
            attributes["waterLevelTrend"] = prop(level.trend, observed_at=level.observed_at)
        if level.state is not None:
            attributes["waterLevelState"] = prop(level.state, observed_at=level.observed_at)
    if flow is not None:
        attributes["flow"] = prop(flow.value, observed_at=flow.observed_at, unit_code="MQS")
    if description := _description(record):
        attributes["description"] = prop(description)
    attributes["dataProvider"] = prop(settings.get("data_provider", DATA_PROVIDER))
    attributes["source"] = prop(f"{API}/stations/{uuid.strip()}.json")
    entities = [make_entity("WaterObserved", context.tenant, uuid.strip(), attributes)]

    alert = _alert(record, keys, name, location, level, context)
    if alert is not None:
        entities.append(alert)
    if problems:
        raise RecordRejected("; ".join(problems), partial=entities)
    return entities


def _alert(
    record: RawRecord,
    keys: frozenset[str],
    name: str,
    location: Attribute,
    level: Measurement | None,
    context: NormalizeContext,
) -> Entity | None:
    store = context.resources
    configured = _for_station(context.settings.get("alerts", {}), keys)
    if level is None or configured is None or not isinstance(store, AlertStore):
        return None
    station_name, table = configured
    thresholds = thresholds_from_settings(
        table,
        context.settings.get("alert_hysteresis", DEFAULT_HYSTERESIS),
        f"adapters.waterlevel.alerts.{station_name}",
    )
    uuid = str(record["uuid"]).strip()
    water = _water_name(record)
    subject = AlertSubject(
        key=f"waterLevel-{uuid}",
        source_id=entity_id("WaterObserved", context.tenant, uuid),
        label=f"{name} ({water})" if water else name,
        quantity="waterLevel",
        quantity_label="Water level",
        unit_code="MTR",
        unit_text="m",
        category="naturalDisaster",
        sub_category="flood",
        location=location,
    )
    return store.observe(
        subject,
        round(level.value / 100, 4),
        level.observed_at,
        thresholds,
        tenant=context.tenant,
        data_provider=context.settings.get("data_provider", DATA_PROVIDER),
    )


SOURCE = SourceKind(
    name="pegelonline",
    description="PEGELONLINE (WSV) gauges: water level and discharge, current measurement per station",
    entity_types=("WaterObserved", "Alert"),
    parse=parse_payload,
    normalize=normalize_record,
    record_label=record_label,
    default_url=DEFAULT_URL,
    sample="pegelonline-stations.json",
)

"""Source kind ``building-meters``: meter readings of a building-management system (CSV) -> ``DeviceMeasurement``.

The export: one row per reading of a cumulative counter (Zählerstand), ``;``-separated with a
decimal comma (German spreadsheet) or ``,``-separated with a decimal point. Columns, found by
name case- and umlaut-insensitively (:data:`COLUMNS`): the metering point (``Zählpunkt``, stable
across meter replacements), the meter's serial number (``Zählernummer``), the building
(``Gebäude-ID``, the inventory's building id), ``Medium`` (Strom, Wärme/Fernwärme, Wasser, Gas),
``Einheit`` (kWh, MWh, m³), optionally the register's digits (``Stellen``), the time
(``Ablesezeitpunkt`` ``04.11.2024 06:00`` or ISO 8601, local time ``timezone`` unless an offset is
given; or ``Datum`` + ``Uhrzeit``), the reading (``Zählerstand``) and optionally the reason
(``Ablesegrund``: ``Ausbau``/``Einbau`` mark a meter replacement). No vendor format was available
to check this against; the candidates are what German exports commonly call these columns.

Rows are applied per metering point in time order (exports often list the newest first, or meter
by meter). For each point the adapter remembers the last accepted reading (SQLite, see
:mod:`adapters.buildings.state`) across polls, and:

* **delta** = reading - last reading; consumption is split over the local calendar days the
  interval covers, in proportion to time (a 6-hourly export spreads a night's consumption
  across midnight as a straight line would);
* **rollover**: a register of N digits (column ``Stellen`` or ``register_digits``) wraps at
  10^N: 999 980 -> 12 is 32, accepted when the wrapped delta is below a tenth of the register;
* **meter replacement**: a new serial number, or ``Einbau``: the new meter's reading starts a new
  baseline. At the same instant as the old meter's last reading (``Ausbau``) no consumption is
  lost; with time between them, that interval is unmetered and its days are not reported;
* **negative delta** (reading below the last, no rollover, same meter): rejected with the reason.
  A single wrong reading is thereby skipped; if the *next* reading continues from the rejected
  one (a reset, or a replacement the export did not mark), the rejected reading becomes the new
  baseline and the interval before it counts as unmetered;
* **repeats**: a row already applied (same point, time, serial and value; overlapping exports)
  is skipped silently; the same time with another value is rejected (the first one stays);
  a reading older than the last accepted one is rejected (late rows are not merged back).

Per point, two entities (docs/decisions/0005 and 0009: one DeviceMeasurement per quantity), each sent
once per payload by the point's newest row (the broker keeps only the last upsert of an id in a batch):

* ``<point>-<medium>MeterReading``: ``numValue`` the register as read, in the meter's unit;
* ``<point>-<medium>DailyConsumption``: ``numValue`` the consumption of the last complete local
  day in kWh or m³, ``dateObserved``/``observedAt`` the end of that day (local midnight, in UTC).
  Sent when a reading completes a day the point covered from its start; the first day after the
  start, a replacement with a gap or a reset is not sent, because part of it is unmetered.

Both carry ``refBuilding`` (the SDM's Building reference, as in dataModel.Building
``BuildingOperation``) to ``urn:ngsi-ld:Building:<tenant>:<building id>``, ``deviceType``
(``electricityMeter``, ``heatMeter``, ``waterMeter``, ``gasMeter``) and the serial number in
``description``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.buildings.tables import TableError, decode_text, fold, parse_number, pick, read_csv
from adapters.core.adapter import (
    NormalizeContext,
    Payload,
    PayloadError,
    RawRecord,
    RecordRejected,
    SourceKind,
    payload_bytes,
)
from adapters.core.entities import (
    Attribute,
    Entity,
    EntityError,
    entity_id,
    local_id,
    make_entity,
    prop,
    relationship,
    utc_iso,
)
from adapters.core.timecheck import time_problem

__all__ = [
    "COLUMNS",
    "DEFAULT_TIMEZONE",
    "MEDIA",
    "SOURCE",
    "UNITS",
    "Medium",
    "MeterMemory",
    "MeterReading",
    "Step",
    "Unit",
    "advance",
    "normalize_record",
    "parse_payload",
    "read_reading",
    "split_by_day",
    "timezone_of",
]

DEFAULT_URL = "https://configure-adapters-buildings-url.invalid/meter-readings.csv"
DEFAULT_TIMEZONE = "Europe/Berlin"
ROLLOVER_SHARE = 0.1
"""A wrapped delta is a rollover only while it is below this share of the register."""
DAYS_KEPT = 7

Kind = Literal["regular", "removal", "installation"]


@dataclass(frozen=True)
class Medium:
    key: str
    """Start of ``measurementType`` (``electricityMeterReading``) and of the entity ids' suffix."""
    words: tuple[str, ...]
    """Folded words of the export's ``Medium`` column that mean this medium (substrings)."""
    controlled_property: str
    """Device.controlledProperty enum word."""
    device_type: str
    units: frozenset[str]
    """UN/CEFACT codes a meter of this medium may count in."""


_ENERGY = frozenset({"KWH", "MWH"})
MEDIA: tuple[Medium, ...] = (
    Medium("electricity", ("strom", "elektr", "wirkarbeit"), "electricityConsumption", "electricityMeter", _ENERGY),
    Medium("heat", ("waerme", "heizung", "heizenergie"), "energy", "heatMeter", _ENERGY),
    Medium("water", ("wasser",), "waterConsumption", "waterMeter", frozenset({"MTQ"})),
    Medium("gas", ("gas",), "gasConsumption", "gasMeter", frozenset({"MTQ", "KWH", "MWH"})),
)


@dataclass(frozen=True)
class Unit:
    code: str
    """UN/CEFACT common code."""
    factor: float
    """Multiply to get the base unit (kWh for energy, m³ for volume)."""
    base: str


UNITS: Mapping[str, Unit] = {
    "kwh": Unit("KWH", 1.0, "KWH"),
    "mwh": Unit("MWH", 1000.0, "KWH"),
    "m3": Unit("MTQ", 1.0, "MTQ"),  # fold() turns m³ into m3
    "cbm": Unit("MTQ", 1.0, "MTQ"),
}

COLUMNS: Mapping[str, tuple[str, ...]] = {
    "point": ("zaehlpunkt", "messstelle", "messpunkt", "zaehler_id", "meter_id"),
    "serial": ("zaehlernummer", "zaehler_nr", "seriennummer", "serial_number"),
    "building": ("gebaeude_id", "gebaeudenummer", "gebaeude_nr", "liegenschaftsnummer", "objektnummer", "building_id"),
    "label": ("bezeichnung", "zaehlerbezeichnung", "name"),
    "medium": ("medium", "sparte", "energieart", "energietraeger"),
    "unit": ("einheit", "unit"),
    "digits": ("stellen", "vorkommastellen", "zaehlwerksstellen", "digits"),
    "time": ("ablesezeitpunkt", "zeitpunkt", "zeitstempel", "timestamp"),
    "date": ("ablesedatum", "datum", "date"),
    "clock": ("uhrzeit", "zeit", "time"),
    "value": ("zaehlerstand", "stand", "wert", "value"),
    "reason": ("ablesegrund", "grund", "ableseart", "reason"),
}
"""Attribute -> candidate column names (compared folded). Fixed: rows are sorted before settings are known."""

_TIME_FORMATS = ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y")
_KIND_ORDER: Mapping[Kind, int] = {"removal": 0, "regular": 1, "installation": 2}


class MeterRecord(dict[str, Any]):
    """A CSV row exactly as received, with what only the whole payload tells."""

    csv_line: int | None = None
    decimal_comma: bool = True
    point_key: str | None = None
    """URN-safe metering point (None when the row has none)."""
    last_of_point: bool = True
    """The newest row of its metering point in this payload: it sends what the point's rows produced."""


@dataclass(frozen=True)
class MeterReading:
    point: str
    """URN-safe local id of the metering point."""
    serial: str | None
    building: str
    label: str
    medium: Medium
    unit: Unit
    digits: int | None
    time: datetime
    """UTC."""
    value: float
    """The register as read, in ``unit``."""
    kind: Kind


@dataclass(frozen=True)
class MeterMemory:
    """What the adapter remembers per metering point between readings and polls."""

    serial: str | None
    unit: str
    """UN/CEFACT code of the last reading."""
    factor: float
    value: float
    time: str
    """ISO UTC time of the last accepted reading."""
    since: str
    """Start of the current stretch without unmetered gaps: days starting before it are not complete."""
    days: Mapping[str, float] = field(default_factory=dict)
    """Local date -> consumption in the base unit, for the days still being filled."""
    candidate: Mapping[str, Any] | None = None
    """A rejected lower reading ``{time, value, serial}``: the new baseline if the next reading continues from it."""

    @property
    def at(self) -> datetime:
        return datetime.fromisoformat(self.time)


@dataclass(frozen=True)
class Step:
    """What one reading does to a metering point."""

    memory: MeterMemory | None
    """The new memory to keep (None: keep the old one)."""
    accepted: bool = False
    skipped: bool = False
    reason: str | None = None
    event: str = ""
    """``first``, ``delta``, ``rollover``, ``replacement``, ``reset`` for accepted readings."""
    completed: tuple[tuple[date, float], ...] = ()
    """Local days completed by this reading, with their consumption in the base unit."""


# --------------------------------------------------------------------------------------------
# Pure helpers


def timezone_of(settings: Mapping[str, Any]) -> ZoneInfo:
    name = str(settings.get("timezone") or DEFAULT_TIMEZONE)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"[adapters.buildings] timezone {name!r}: not an IANA time zone (e.g. Europe/Berlin)"
        ) from None


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def split_by_day(amount: float, start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[date, float]]:
    """``amount`` consumed between ``start`` and ``end`` (UTC), spread over the local days in proportion to time."""
    if end <= start or amount == 0:
        return []
    total = (end - start).total_seconds()
    parts: list[tuple[date, float]] = []
    cursor = start
    while cursor < end:
        day = cursor.astimezone(tz).date()
        stop = min(end, _day_start(day + timedelta(days=1), tz))
        parts.append((day, amount * (stop - cursor).total_seconds() / total))
        cursor = stop
    return parts


def _completed_days(before: datetime, now: datetime, since: datetime, tz: ZoneInfo) -> list[date]:
    """Local days whose end lies in (before, now] and that the point covered from their start."""
    days = []
    day = before.astimezone(tz).date()
    while _day_start(day + timedelta(days=1), tz) <= now:
        end = _day_start(day + timedelta(days=1), tz)
        if end > before and _day_start(day, tz) >= since:
            days.append(day)
        day += timedelta(days=1)
    return days


_SYMBOLS = {"KWH": "kWh", "MWH": "MWh", "MTQ": "m³"}


def _amount(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _number(value: float, unit: str) -> str:
    return f"{_amount(value)} {_SYMBOLS.get(unit, unit)}"


def _time(moment: datetime) -> str:
    return utc_iso(moment)


def advance(memory: MeterMemory | None, reading: MeterReading, seen: float | None, tz: ZoneInfo) -> Step:
    """The effect of one reading on its metering point, given what was remembered (pure).

    ``seen`` is the value of an already accepted reading of this point with the same time,
    serial and kind (an overlapping export repeats rows), or None.
    """
    at = reading.time
    if seen is not None:
        if seen == reading.value:
            return Step(None, skipped=True)
        return Step(
            None,
            reason=(
                f"a reading for {_time(at)} was already applied with {_number(seen, reading.unit.code)}; this row says "
                f"{_number(reading.value, reading.unit.code)}: kept the first (correct it in the source system)"
            ),
        )
    iso = at.isoformat()
    if memory is None:
        first = MeterMemory(reading.serial, reading.unit.code, reading.unit.factor, reading.value, iso, iso)
        return Step(first, accepted=True, event="first")
    before = memory.at
    replaced = (
        reading.serial is not None and memory.serial is not None and reading.serial != memory.serial
    ) or reading.kind == "installation"
    if at == before and not replaced and reading.value * reading.unit.factor == memory.value * memory.factor:
        return Step(None, skipped=True)  # the same reading restated (e.g. an Ausbau row beside the regular one)
    if at < before or (at == before and not replaced):
        return Step(
            None,
            reason=(
                f"reading at {_time(at)} is not newer than the last one applied ({_time(before)}): "
                "late or repeated rows are not merged back into the counter"
            ),
        )
    if replaced:
        continuous = at == before
        new = replace(
            memory,
            serial=reading.serial,
            unit=reading.unit.code,
            factor=reading.unit.factor,
            value=reading.value,
            time=iso,
            since=memory.since if continuous else iso,
            candidate=None,
        )
        return Step(new, accepted=True, event="replacement")
    delta = reading.value * reading.unit.factor - memory.value * memory.factor
    event = "delta"
    start = before
    since = datetime.fromisoformat(memory.since)
    if delta < 0 and reading.unit.code == memory.unit and reading.digits is not None:
        register = 10.0**reading.digits
        wrapped = register - memory.value + reading.value
        if memory.value < register and reading.value < register and 0 <= wrapped < register * ROLLOVER_SHARE:
            delta, event = wrapped * reading.unit.factor, "rollover"
    if delta < 0:
        candidate = memory.candidate
        if (
            candidate is not None
            and candidate.get("serial") == reading.serial
            and datetime.fromisoformat(str(candidate["time"])) < at
            and reading.value * reading.unit.factor >= float(candidate["value"]) * float(candidate["factor"])
        ):
            start = datetime.fromisoformat(str(candidate["time"]))
            since = start
            delta = reading.value * reading.unit.factor - float(candidate["value"]) * float(candidate["factor"])
            event = "reset"
        else:
            remembered = {"time": iso, "value": reading.value, "factor": reading.unit.factor, "serial": reading.serial}
            unit = reading.unit.code
            return Step(
                replace(memory, candidate=remembered),
                reason=(
                    f"reading {_number(reading.value, unit)} at {_time(at)} is below the last one, "
                    f"{_number(memory.value, memory.unit)} at {_time(before)} (negative delta "
                    f"{_number(delta / reading.unit.factor, unit)}): not applied. If the register rolled over, give "
                    "its digits (column Stellen or [adapters.buildings.register_digits]); if the meter was reset or "
                    "replaced, the next reading that continues from this one makes it the new start"
                ),
            )
    days = dict(memory.days)
    for day, share in split_by_day(delta, start, at, tz):
        days[day.isoformat()] = days.get(day.isoformat(), 0.0) + share
    completed = tuple((day, days.get(day.isoformat(), 0.0)) for day in _completed_days(before, at, since, tz))
    oldest = (at.astimezone(tz).date() - timedelta(days=DAYS_KEPT)).isoformat()
    new = replace(
        memory,
        unit=reading.unit.code,
        factor=reading.unit.factor,
        value=reading.value,
        time=iso,
        since=since.isoformat(),
        days={day: amount for day, amount in sorted(days.items()) if day >= oldest},
        candidate=None,
    )
    return Step(new, accepted=True, event=event, completed=completed)


# --------------------------------------------------------------------------------------------
# Parsing


def _cell(record: RawRecord, key: str) -> tuple[str, str] | None:
    found = pick(record, COLUMNS[key])
    return None if found is None else (found[0], " ".join(str(found[1]).split()))


def _kind(record: RawRecord) -> Kind:
    reason = _cell(record, "reason")
    text = fold(reason[1]) if reason else ""
    if "ausbau" in text:
        return "removal"
    if "einbau" in text:
        return "installation"
    return "regular"


def _parse_time(text: str, tz: ZoneInfo) -> datetime:
    moment: datetime | None = None
    for pattern in _TIME_FORMATS:
        try:
            moment = datetime.strptime(text, pattern)
            break
        except ValueError:
            continue
    if moment is None:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"time {text!r}: expected dd.mm.yyyy HH:MM or ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)  # fold=0: in the repeated autumn hour, the first pass
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 01.01.0001 00:00 in Berlin is in year 0 in UTC
        raise ValueError(f"time {text!r}: out of range") from None


def _reading_time(record: RawRecord, tz: ZoneInfo) -> datetime:
    stamp = _cell(record, "time")
    if stamp is None:
        day, clock = _cell(record, "date"), _cell(record, "clock")
        if day is None:
            tried = ", ".join(COLUMNS["time"] + COLUMNS["date"])
            raise ValueError(f"no reading time (columns tried: {tried})")
        return _parse_time(f"{day[1]} {clock[1]}" if clock else day[1], tz)
    return _parse_time(stamp[1], tz)


def _sort_key(index: int, record: MeterRecord) -> tuple[float, int, int]:
    try:
        moment = _reading_time(record, ZoneInfo(DEFAULT_TIMEZONE)).timestamp()
    except ValueError:
        moment = math.inf  # rejected on its own; keeps its place among the others
    return (moment, _KIND_ORDER[_kind(record)], index)


def parse_payload(payload: Payload) -> Sequence[RawRecord]:
    """The rows, oldest first (an Ausbau before the Einbau of the same instant), as a counter needs them."""
    try:
        table = read_csv(decode_text(payload_bytes(payload)))
    except TableError as error:
        raise PayloadError(f"not a readable CSV meter export: {error}") from None
    records = []
    for line, values in table.rows:
        record = MeterRecord(values)
        record.csv_line = line
        record.decimal_comma = table.decimal_comma
        records.append(record)
    ordered = [records[i] for i in sorted(range(len(records)), key=lambda i: _sort_key(i, records[i]))]
    seen: set[str] = set()
    for record in reversed(ordered):
        point = _cell(record, "point")
        try:
            record.point_key = local_id(point[1]) if point else None
        except EntityError:
            record.point_key = None
        record.last_of_point = record.point_key is None or record.point_key not in seen
        if record.point_key is not None:
            seen.add(record.point_key)
    return ordered


def record_label(record: RawRecord) -> str:
    parts = [f"line {record.csv_line}"] if isinstance(record, MeterRecord) and record.csv_line else []
    for key in ("point", "time", "value"):
        cell = _cell(record, key)
        if cell is not None:
            parts.append(f"{cell[0]}={cell[1]!r}")
    return ", ".join(parts)


def _required(record: RawRecord, key: str, what: str) -> str:
    cell = _cell(record, key)
    if cell is None or not cell[1]:
        raise RecordRejected(f"no {what} (columns tried: {', '.join(COLUMNS[key])})")
    return cell[1]


def _medium(text: str) -> Medium:
    folded = fold(text)
    for medium in MEDIA:
        if any(word in folded for word in medium.words):
            return medium
    raise RecordRejected(f"medium {text!r}: not electricity (Strom), heat (Wärme), water (Wasser) or gas (Gas)")


def read_reading(
    record: RawRecord, settings: Mapping[str, Any], tz: ZoneInfo, received_at: datetime | None = None
) -> MeterReading:
    """One row as a typed reading; RecordRejected naming the column when a value is missing or wrong."""
    if isinstance(record, MeterRecord) and "_fields" in record:
        raise RecordRejected(f"row has {record['_fields']}")
    decimal_comma = record.decimal_comma if isinstance(record, MeterRecord) else True
    try:
        point = local_id(_required(record, "point", "metering point"))
        building = local_id(_required(record, "building", "building id"))
    except EntityError as error:
        raise RecordRejected(str(error)) from None
    medium = _medium(_required(record, "medium", "medium"))
    unit_text = _required(record, "unit", "unit")
    unit = UNITS.get(fold(unit_text).replace(" ", ""))
    if unit is None:
        raise RecordRejected(f"unit {unit_text!r}: expected kWh, MWh or m³")
    if unit.code not in medium.units:
        raise RecordRejected(
            f"unit {unit_text!r} does not fit {medium.key} (expected {', '.join(sorted(medium.units))})"
        )
    value_text = _required(record, "value", "meter reading")
    try:
        value = parse_number(value_text, decimal_comma=decimal_comma)
    except ValueError as error:
        raise RecordRejected(f"meter reading: {error}") from None
    if value < 0:
        raise RecordRejected(f"meter reading {value_text!r}: a register cannot be negative")
    try:
        moment = _reading_time(record, tz)
    except ValueError as error:
        raise RecordRejected(str(error)) from None
    if problem := time_problem(moment, received_at):
        raise RecordRejected(problem)
    digits = _digits(record, point, settings, decimal_comma)
    if digits is not None and value >= 10.0**digits:
        raise RecordRejected(f"meter reading {value_text!r} does not fit a register of {digits} digits")
    serial = _cell(record, "serial")
    label = _cell(record, "label")
    return MeterReading(
        point=point,
        serial=serial[1] if serial else None,
        building=building,
        label=label[1] if label else point,
        medium=medium,
        unit=unit,
        digits=digits,
        time=moment,
        value=value,
        kind=_kind(record),
    )


def _digits(record: RawRecord, point: str, settings: Mapping[str, Any], decimal_comma: bool) -> int | None:
    cell = _cell(record, "digits")
    if cell is not None:
        try:
            number = parse_number(cell[1], decimal_comma=decimal_comma)
        except ValueError as error:
            raise RecordRejected(f"{cell[0]}: {error}") from None
        if not number.is_integer() or not 1 <= number <= 12:
            raise RecordRejected(f"{cell[0]} {cell[1]!r}: register digits must be a whole number 1..12")
        return int(number)
    configured = (settings.get("register_digits") or {}).get(point)
    return int(configured) if configured is not None else None


# --------------------------------------------------------------------------------------------
# Entities


def _common(reading: MeterReading, tenant: str) -> dict[str, Attribute]:
    attributes: dict[str, Attribute] = {
        "controlledProperty": prop(reading.medium.controlled_property),
        "deviceType": prop(reading.medium.device_type),
    }
    if reading.serial:
        attributes["description"] = prop(f"meter number {reading.serial}")
    attributes["refBuilding"] = relationship(entity_id("Building", tenant, reading.building))
    return attributes


def _reading_entity(reading: MeterReading, tenant: str) -> Entity:
    measurement = f"{reading.medium.key}MeterReading"
    common = _common(reading, tenant)
    attributes: dict[str, Attribute] = {
        "name": prop(f"{reading.label}: meter reading"),
        "dateObserved": prop(utc_iso(reading.time)),
        "controlledProperty": common.pop("controlledProperty"),
        "measurementType": prop(measurement),
        "numValue": prop(float(reading.value), observed_at=reading.time, unit_code=reading.unit.code),
        "unit": prop(reading.unit.code),
        **common,
    }
    return make_entity("DeviceMeasurement", tenant, f"{reading.point}-{measurement}", attributes)


def _daily_entity(reading: MeterReading, tenant: str, day: date, amount: float, tz: ZoneInfo) -> Entity:
    measurement = f"{reading.medium.key}DailyConsumption"
    end = _day_start(day + timedelta(days=1), tz)
    common = _common(reading, tenant)
    attributes: dict[str, Attribute] = {
        "name": prop(f"{reading.label}: daily consumption"),
        "dateObserved": prop(utc_iso(end)),
        "controlledProperty": common.pop("controlledProperty"),
        "measurementType": prop(measurement),
        "numValue": prop(round(max(amount, 0.0), 3), observed_at=end, unit_code=reading.unit.base),
        "unit": prop(reading.unit.base),
        **common,
    }
    return make_entity("DeviceMeasurement", tenant, f"{reading.point}-{measurement}", attributes)


def normalize_record(record: RawRecord, context: NormalizeContext) -> list[Entity]:
    """Apply one row to its metering point; the point's newest row of the payload sends the latest
    reading and the latest completed day (one entity of each id per payload, also when that row
    itself is skipped or rejected)."""
    from adapters.buildings.state import MeterState

    if not isinstance(record, Mapping):
        raise RecordRejected(f"record is {type(record).__name__}, expected a CSV row")
    state = getattr(context.resources, "meters", None)
    if not isinstance(state, MeterState):
        raise RecordRejected("no meter state loaded: open the adapter's resources (source building-meters)")
    last = record.last_of_point if isinstance(record, MeterRecord) else True
    point = record.point_key if isinstance(record, MeterRecord) else None
    tz = timezone_of(context.settings)
    try:
        reading = read_reading(record, context.settings, tz, context.received_at)
    except RecordRejected as rejected:
        pending = state.flush(f"{context.tenant}:{point}") if last and point else []
        raise RecordRejected(str(rejected), partial=pending) from None
    key = f"{context.tenant}:{reading.point}"
    step = advance(state.memory(key), reading, state.seen(key, reading), tz)
    if step.memory is not None:
        state.stage(key, step.memory, reading if step.accepted else None)
    if step.accepted:
        state.hold(key, _reading_entity(reading, context.tenant))
        if step.completed:
            day, amount = step.completed[-1]
            state.hold(key, _daily_entity(reading, context.tenant, day, amount, tz))
    entities = state.flush(key) if last else []
    if step.reason is not None:
        raise RecordRejected(step.reason, partial=entities)
    return entities


SOURCE = SourceKind(
    name="building-meters",
    description=(
        "Meter readings (electricity, heat, water, gas) exported by a building-management system as CSV: "
        "DeviceMeasurement entities with the register and the daily consumption, linked to their Building"
    ),
    entity_types=("DeviceMeasurement",),
    parse=parse_payload,
    normalize=normalize_record,
    record_label=record_label,
    default_url=DEFAULT_URL,
    sample="zaehlerstaende.csv",
)

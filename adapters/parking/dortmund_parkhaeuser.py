"""Source kind ``dortmund-parkhaeuser``: the Dortmund Parkleitsystem open-data dataset ``parkhauser``.

Opendatasoft serves it as Explore v2.1 records (``{"total_count", "results": [...]}``) or as an
export (a bare JSON array of the same flat records); both are read. Quirks of the feed, and what we do:

* ``frei`` is the free count; when the Parkleitsystem has no connection to a garage, the feed keeps
  ``frei: 0`` and puts an error text into ``stand``. That 0 does not mean "full": without a usable
  timestamp the counts are left out and only the static attributes and the status are sent.
* ``frei`` can be negative (more cars counted in than the garage holds) -> 0 available, occupancy 1.
  ``frei`` above the capacity (count drift) -> capped at the capacity, occupancy 0.
* ``stand`` is local time (Europe/Berlin) without offset; ``zeitstempel`` is ISO 8601 with offset.
* ``capacity`` 0 means "not reporting": no ``totalSpotNumber`` and no counts.
* Garages without ``geo_point_2d`` take their position from ``[adapters.parking.locations]``;
  otherwise they are rejected (``location`` is required by the data model).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from adapters.core.adapter import NormalizeContext, Payload, RawRecord, RecordRejected, SourceKind
from adapters.core.entities import Attribute, Entity, geo_point, make_entity, prop
from adapters.core.opendatasoft import iter_records
from adapters.core.timecheck import time_problem

__all__ = ["SOURCE", "normalize_record", "parse_payload"]

LOCAL_TIME = ZoneInfo("Europe/Berlin")
DATASET_URL = "https://open-data.dortmund.de/explore/dataset/parkhauser/"
DEFAULT_URL = "https://open-data.dortmund.de/api/explore/v2.1/catalog/datasets/parkhauser/exports/json"

OPEN_STATES = {"geoeffnet", "geöffnet", "offen", "open"}
CLOSED_STATES = {"geschlossen", "closed"}

# Facility type in the feed -> OffStreetParking.category (every site of the Parkleitsystem is public).
CATEGORY_BY_TYPE: Mapping[str, tuple[str, ...]] = {
    "park and ride": ("parkingLot", "urbanDeterrentParking"),
    "parkhaus": ("parkingGarage",),
    "tiefgarage": ("parkingGarage", "underground"),
    "parkplatz": ("parkingLot",),
}

WEEKDAYS: tuple[tuple[str, str], ...] = (
    ("montag", "Mo"),
    ("dienstag", "Tu"),
    ("mittwoch", "We"),
    ("donnerstag", "Th"),
    ("freitag", "Fr"),
    ("samstag", "Sa"),
    ("sonntag", "Su"),
)
# The upstream GeoServer layer abbreviates Thursday; accept both spellings.
WEEKDAY_ALIASES = {"donnerstag": ("donnerstag", "donnerst")}
_STAND = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)


def parse_payload(payload: Payload) -> Iterator[RawRecord]:
    """One record at a time: an export of every car park in a region is never in memory as a whole."""
    return iter_records(payload)


def record_label(record: RawRecord) -> str:
    return f"id={record.get('id')!r}, name={record.get('name')!r}"


def _observed_at(record: RawRecord) -> datetime | None:
    """The feed's own time of the counts, or None when the Parkleitsystem has no connection."""
    stamp = record.get("zeitstempel")
    if isinstance(stamp, str) and stamp:
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment
    stand = record.get("stand")
    if isinstance(stand, str):
        text = stand.strip()
        if not text[:1].isdigit():
            return None  # e.g. "Zur Zeit keine Verbindung zum Parkleitsystem" (strptime would fail, slowly)
        try:
            if _STAND.fullmatch(text):  # the usual form: fromisoformat reads it alike, 30 times faster
                return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TIME)
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=LOCAL_TIME)
        except ValueError:
            return None
    return None


def _whole_number(record: RawRecord, key: str) -> int | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordRejected(f"{key}={value!r}: not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RecordRejected(f"{key}={value!r}: not a number") from None
    if not number.is_integer():
        raise RecordRejected(f"{key}={value!r}: not a whole number")
    return int(number)


def _location(record: RawRecord, settings: Mapping[str, Any]) -> Attribute:
    point = record.get("geo_point_2d")
    if (
        (type(point) is dict or isinstance(point, Mapping))
        and point.get("lon") is not None
        and point.get("lat") is not None
    ):
        try:
            lon, lat = float(point["lon"]), float(point["lat"])
        except (TypeError, ValueError):
            raise RecordRejected(f"geo_point_2d={point!r}: lon/lat are not numbers") from None
        return geo_point(lon, lat)
    known = settings.get("locations", {}).get(str(record.get("id")))
    if known is not None:
        return geo_point(float(known[0]), float(known[1]))
    raise RecordRejected(
        f'no coordinates (geo_point_2d missing); add [adapters.parking.locations] "{record.get("id")}" = [lon, lat]'
    )


def _opening_hours(record: RawRecord) -> str | None:
    """schema.org openingHours, e.g. ``Mo-Fr 06:00-22:00, Sa 08:00-20:00``; None when the feed has none."""
    days = list(map(record.get, _DAY_KEYS))
    for index, spellings in _OTHER_SPELLINGS:
        if type(days[index]) is not str:
            days[index] = next((text for key in spellings if isinstance(text := record.get(key), str)), None)
    try:
        return _opening_hours_text(tuple(days))
    except TypeError:  # a list or an object where the hours belong: no hours that day
        return _opening_hours_text(tuple(day if isinstance(day, str) else None for day in days))


_DAY_KEYS = tuple(key for key, _ in WEEKDAYS)
_OTHER_SPELLINGS = tuple(
    (index, aliases[1:]) for index, key in enumerate(_DAY_KEYS) if len(aliases := WEEKDAY_ALIASES.get(key, (key,))) > 1
)


@lru_cache(maxsize=512)
def _opening_hours_text(day_texts: tuple[Any, ...]) -> str | None:
    """Cached: garages share a handful of schedules, and building the text costs ~10 µs. A day whose
    value is not text has no hours."""
    spans: list[tuple[int, int, str]] = []  # (first day, last day, hours), days as WEEKDAYS indexes
    for index, value in enumerate(day_texts):
        hours = value.replace(" ", "") if isinstance(value, str) else ""
        if not hours or hours == "-":
            continue
        if spans and spans[-1][2] == hours and spans[-1][1] == index - 1:
            spans[-1] = (spans[-1][0], index, hours)
        else:
            spans.append((index, index, hours))
    days = [day for _, day in WEEKDAYS]
    return (
        ", ".join(f"{days[first]}{'' if first == last else '-' + days[last]} {hours}" for first, last, hours in spans)
        or None
    )


class _Counts(NamedTuple):  # a NamedTuple: built per record, three times cheaper than a frozen dataclass
    total: int
    available: int
    occupancy: float


def _counts(record: RawRecord, capacity: int | None, observed_at: datetime | None) -> _Counts | None:
    free = _whole_number(record, "frei")
    if capacity is None or capacity < 1 or free is None or observed_at is None:
        return None
    available = min(max(free, 0), capacity)
    return _Counts(capacity, available, round((capacity - available) / capacity, 4))


def _status(state: str, counts: _Counts | None, almost_full: float) -> list[str]:
    if state in CLOSED_STATES:
        return ["closed"]
    if state not in OPEN_STATES:
        raise RecordRejected(f"parkeinrichtung={state!r}: unknown state (expected geoeffnet, offen or geschlossen)")
    status = ["open"]
    if counts is not None and counts.available == 0:
        status.append("full")
    elif counts is not None and counts.occupancy >= almost_full:
        status.append("almostFull")
    return status


def normalize_record(record: RawRecord, context: NormalizeContext) -> list[Entity]:
    if type(record) is not dict and not isinstance(record, Mapping):  # JSON gives dicts; the ABC test is slower
        raise RecordRejected(f"record is {type(record).__name__}, expected a JSON object")
    source_id = record.get("id")
    if source_id in (None, ""):
        raise RecordRejected("record has no id")
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RecordRejected("record has no name")
    settings = context.settings
    capacity = _whole_number(record, "capacity")
    if capacity is not None and capacity < 0:
        raise RecordRejected(f"capacity={capacity}: negative")
    observed_at = _observed_at(record)
    if observed_at is not None and (problem := time_problem(observed_at, context.received_at)):
        raise RecordRejected(f"zeitstempel/stand: {problem}")
    counts = _counts(record, capacity, observed_at)
    state = str(record.get("parkeinrichtung") or "").strip().lower()
    kind = str(record.get("type") or "").strip().lower()

    attributes: dict[str, Attribute] = {
        "name": prop(name.strip()),
        "location": _location(record, settings),
        "category": prop([*CATEGORY_BY_TYPE.get(kind, ()), "public"]),
        "allowedVehicleType": prop(["car"]),
        "status": prop(_status(state, counts, settings.get("almost_full", 0.9)), observed_at=observed_at),
    }
    if capacity is not None and capacity >= 1:
        attributes["totalSpotNumber"] = prop(capacity)
    if counts is not None:
        attributes["availableSpotNumber"] = prop(counts.available, observed_at=observed_at)
        attributes["occupiedSpotNumber"] = prop(counts.total - counts.available, observed_at=observed_at)
        attributes["occupancy"] = prop(counts.occupancy, observed_at=observed_at, unit_code="C62")
    if hours := _opening_hours(record):
        attributes["openingHours"] = prop(hours)
    attributes["parkingSiteId"] = prop(str(source_id))
    attributes["dataProvider"] = prop(settings.get("data_provider", "Stadt Dortmund"))
    attributes["source"] = prop(DATASET_URL)
    return [make_entity("OffStreetParking", context.tenant, source_id, attributes)]


SOURCE = SourceKind(
    name="dortmund-parkhaeuser",
    description="Dortmund Parkleitsystem (open-data.dortmund.de dataset parkhauser): car parks and P+R occupancy",
    entity_types=("OffStreetParking",),
    parse=parse_payload,
    normalize=normalize_record,
    record_label=record_label,
    default_url=DEFAULT_URL,
    sample="parkhauser-records.json",
)

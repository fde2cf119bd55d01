"""Source kind ``edg-containers``: EDG Entsorgung Dortmund, open-data.dortmund.de dataset ``edg-abfallentsorgung``.

Opendatasoft serves the dataset as an export (a bare JSON array of flat records) or as Explore v2.1
records (``{"total_count", "results": [...]}``); both are read. A record is a depot-container site
or a recycling facility: ``titel``, ``adresse``, ``ort``, ``geografische_koordinaten {lat, lon}``
(WGS84), ``offnungszeiten``. Quirks of the dataset, and what we do:

* There is no id field. The local id is derived from what identifies a container site: the
  fraction and the position rounded to 5 decimals (about 1 m; the published positions have no
  more digits), e.g. ``edg-glass-N51.47297-E7.48210``. Addresses are no key: the same street is
  spelt ``Oberste-Wilms-Str. 13`` for a container and ``Oberste-Wilms-Straße 13`` for the
  facility next to it. The ``edg-`` prefix keeps these ids apart from the LoRaWAN-equipped bins
  (same entity type), so an upsert here never touches a sensor's ``fillingLevel``.
* Glass and paper at one site are separate records, a few metres apart or at the same point:
  two entities (the fraction is part of the id).
* A record repeated verbatim becomes one entity; the repeat yields nothing (nothing is lost).
  A *different* record that maps to the same id (same fraction, same position, other address or
  title) is rejected naming the record whose entity was kept, so the conflict is seen.
* ``titel`` starting with ``Recyclinghof``, ``Recyclingzentrum``, ``Wertstoffzentrum`` or
  ``Deponie`` is a staffed facility with opening hours, not a container: skipped, without an
  entity and without a dead letter. Any other title that is not a ``Depotcontainer`` is rejected,
  so a new kind of record in the dataset gets noticed.
* ``ort`` is ``Dortmund`` or, as seen for the facilities, ``44309 Dortmund``: a leading
  five-digit postcode becomes ``postalCode``.
* The data has positions only, no fill level. ``offnungszeiten`` (the facilities' opening hours)
  is not mapped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.core.adapter import NormalizeContext, Payload, RawRecord, RecordRejected, SourceKind
from adapters.core.entities import Attribute, Entity, geo_point, make_entity, prop
from adapters.core.opendatasoft import iter_records

__all__ = ["FRACTIONS", "SOURCE", "EdgRecord", "local_id_of", "normalize_record", "parse_payload"]

DATASET_URL = "https://open-data.dortmund.de/explore/dataset/edg-abfallentsorgung/"
DEFAULT_URL = "https://open-data.dortmund.de/api/explore/v2.1/catalog/datasets/edg-abfallentsorgung/exports/json"
DATA_PROVIDER = "EDG Entsorgung Dortmund GmbH"

CONTAINER_PREFIX = "depotcontainer"
FACILITY_PREFIXES = ("recyclinghof", "recyclingzentrum", "wertstoffzentrum", "deponie")
_POSTCODE_AND_PLACE = re.compile(r"^(\d{5})\s+(.+)$")


@dataclass(frozen=True)
class Fraction:
    """One fraction of the depot containers: a word in ``titel`` after ``Depotcontainer``."""

    marker: str
    """Lower-case part of the title that names it (``glas`` also covers ``Altglas``)."""
    waste_kind: str
    """``storedWasteKind`` and the fraction part of the entity id."""


FRACTIONS: tuple[Fraction, ...] = (
    Fraction("glas", "glass"),
    Fraction("papier", "paper"),
)


class EdgRecord(dict[str, Any]):
    """A record exactly as received; ``duplicate_of`` marks a later record mapping to an id already taken."""

    duplicate_of: int | None = None
    """Number (1-based) of the earlier record that produces the same entity id."""
    identical: bool = False
    """True when that earlier record is the very same record (a verbatim repeat)."""


def parse_payload(payload: Payload) -> Sequence[RawRecord]:
    return _mark_duplicates(list(iter_records(payload)))


def _mark_duplicates(records: list[Any]) -> list[Any]:
    """Records map to ids one by one; which ids repeat is only visible across the payload."""
    first_by_id: dict[str, int] = {}
    marked: list[Any] = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, Mapping):
            marked.append(record)
            continue
        record = EdgRecord(record)
        try:
            local_id = local_id_of(record)
        except RecordRejected:
            local_id = None  # rejected on its own when normalised
        if local_id is not None:
            if local_id in first_by_id:
                first = first_by_id[local_id]
                record.duplicate_of = first
                record.identical = dict(record) == dict(records[first - 1])
            else:
                first_by_id[local_id] = number
        marked.append(record)
    return marked


def record_label(record: RawRecord) -> str:
    return f"titel={record.get('titel')!r}, adresse={record.get('adresse')!r}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split())


def waste_kind_of(titel: str) -> str | None:
    """``storedWasteKind`` of a Depotcontainer title; None for a facility; RecordRejected otherwise."""
    lowered = titel.lower()
    if lowered.startswith(FACILITY_PREFIXES):
        return None
    if not lowered.startswith(CONTAINER_PREFIX):
        raise RecordRejected(
            f"titel {titel!r}: neither a Depotcontainer nor a known facility "
            "(Recyclinghof, Recyclingzentrum, Wertstoffzentrum, Deponie)"
        )
    rest = lowered[len(CONTAINER_PREFIX) :]
    kinds = [fraction.waste_kind for fraction in FRACTIONS if fraction.marker in rest]
    known = ", ".join(f"{f.marker!r} -> {f.waste_kind}" for f in FRACTIONS)
    if not kinds:
        raise RecordRejected(f"titel {titel!r}: unknown container fraction (known: {known})")
    if len(kinds) > 1:
        raise RecordRejected(f"titel {titel!r}: names more than one fraction ({', '.join(kinds)})")
    return kinds[0]


def position_of(record: RawRecord) -> tuple[float, float]:
    """(lon, lat) from ``geografische_koordinaten``; RecordRejected when missing or impossible."""
    point = record.get("geografische_koordinaten")
    if not isinstance(point, Mapping):
        raise RecordRejected(
            "no coordinates (geografische_koordinaten missing or null): WasteContainer requires a location"
        )
    if point.get("lat") is None or point.get("lon") is None:
        raise RecordRejected(f"geografische_koordinaten={dict(point)!r}: lon or lat missing")
    try:
        if isinstance(point["lat"], bool) or isinstance(point["lon"], bool):
            raise TypeError
        lon, lat = float(point["lon"]), float(point["lat"])
    except (TypeError, ValueError):
        raise RecordRejected(f"geografische_koordinaten={dict(point)!r}: lon/lat are not numbers") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        raise RecordRejected(f"geografische_koordinaten={dict(point)!r}: not a WGS84 position")
    return lon, lat


def local_id_of(record: RawRecord) -> str | None:
    """``edg-<kind>-N<lat>-E<lon>`` (5 decimals); None for a facility; RecordRejected when it has none."""
    titel = _text(record.get("titel"))
    if not titel:
        raise RecordRejected("record has no titel")
    kind = waste_kind_of(titel)
    if kind is None:
        return None
    lon, lat = position_of(record)
    north = f"{'N' if lat >= 0 else 'S'}{abs(lat):.5f}"
    east = f"{'E' if lon >= 0 else 'W'}{abs(lon):.5f}"
    return f"edg-{kind}-{north}-{east}"


def _address(record: RawRecord) -> dict[str, str] | None:
    """schema.org PostalAddress from ``adresse`` and ``ort`` (``Dortmund`` or ``44309 Dortmund``)."""
    street, place = _text(record.get("adresse")), _text(record.get("ort"))
    address: dict[str, str] = {}
    if street:
        address["streetAddress"] = street
    postcode_and_place = _POSTCODE_AND_PLACE.match(place)
    if postcode_and_place:
        address["postalCode"], place = postcode_and_place.groups()
    if place:
        address["addressLocality"] = place
    if address:
        address["addressCountry"] = "DE"
    return address or None


def normalize_record(record: RawRecord, context: NormalizeContext) -> list[Entity]:
    if not isinstance(record, Mapping):
        raise RecordRejected(f"record is {type(record).__name__}, expected a JSON object")
    local_id = local_id_of(record)
    if local_id is None:
        return []  # a recycling facility, not a container
    if isinstance(record, EdgRecord) and record.duplicate_of is not None:
        if record.identical:
            return []  # verbatim repeat of an earlier record: its entity is already there
        raise RecordRejected(
            f"same fraction at the same position as record {record.duplicate_of}, which already gave "
            f"{local_id}; kept that one (compare titel and adresse of both)"
        )
    titel = _text(record.get("titel"))
    lon, lat = position_of(record)
    address = _address(record)
    settings = context.settings
    street = address.get("streetAddress") if address else None
    attributes: dict[str, Attribute] = {
        "name": prop(f"{titel}, {street}" if street else titel),
        "location": geo_point(lon, lat),
        "storedWasteKind": prop(waste_kind_of(titel)),
    }
    category = list(settings.get("category", ["ground"]))
    if category:
        attributes["category"] = prop(category)
    if address:
        attributes["address"] = prop(address)
    attributes["dataProvider"] = prop(settings.get("data_provider", DATA_PROVIDER))
    attributes["source"] = prop(DATASET_URL)
    return [make_entity("WasteContainer", context.tenant, local_id, attributes)]


SOURCE = SourceKind(
    name="edg-containers",
    description=(
        "EDG Entsorgung Dortmund (open-data.dortmund.de dataset edg-abfallentsorgung): "
        "depot-container sites for glass and paper"
    ),
    entity_types=("WasteContainer",),
    parse=parse_payload,
    normalize=normalize_record,
    record_label=record_label,
    default_url=DEFAULT_URL,
    sample="edg-abfallentsorgung.json",
)

"""NGSI-LD *normalized* entities, built the same way by every adapter.

Ids are deterministic (``urn:ngsi-ld:<Type>:<tenant>:<local id>``) so a re-sent reading is an
idempotent upsert. Times are UTC with ``Z``: QuantumLeap answers 500 when ``observedAt`` values
with and without a zone are mixed, and takes the latest ``observedAt`` as its time index.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

Entity = dict[str, Any]
Attribute = dict[str, Any]

__all__ = [
    "Attribute",
    "Entity",
    "EntityError",
    "entity_id",
    "geo_point",
    "geo_property",
    "local_id",
    "make_entity",
    "prop",
    "relationship",
    "tenant_name",
    "tenant_of_entity",
    "utc_iso",
]

_TENANT = re.compile(r"^[a-z0-9_-]{1,50}$")
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._~-]+")
_SAFE_ID = re.compile(r"[A-Za-z0-9._~-]+")
_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_RESERVED_NAMES = frozenset({"id", "type", "@context"})
# German names are common in local ids; transliterate instead of dropping the letters.
_TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})


class EntityError(ValueError):
    """A value cannot become a valid NGSI-LD entity; the message names the rule broken."""


def tenant_name(raw: str) -> str:
    """Orion-LD lowercases tenants and accepts at most 50 chars of [A-Za-z0-9_-]."""
    name = raw.strip().lower()
    if not _TENANT.match(name):
        raise EntityError(f"tenant {raw!r}: must be 1-50 characters of A-Z, a-z, 0-9, '_' or '-'")
    return name


def local_id(raw: object) -> str:
    """Make a source id safe inside a URN: no ':' injection, no spaces, stable for the same input."""
    if type(raw) is str and _SAFE_ID.fullmatch(raw):
        # Already safe ASCII, which Unicode normalisation leaves as it is: only the strip applies.
        safe = raw.strip("-")
    else:
        text = unicodedata.normalize("NFKC", str(raw)).translate(_TRANSLITERATION)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
        safe = _UNSAFE_ID_CHARS.sub("-", text).strip("-")
    if not safe:
        raise EntityError(f"local id {raw!r}: nothing usable left after removing unsafe characters")
    return safe


@lru_cache(maxsize=256)
def _id_prefix(entity_type: str, tenant: str) -> str:
    """``urn:ngsi-ld:<Type>:<tenant>:``, checked once per (type, tenant): every entity of a run repeats them."""
    if not _TYPE_NAME.match(entity_type):
        raise EntityError(f"entity type {entity_type!r}: must be a Smart Data Models type name")
    return f"urn:ngsi-ld:{entity_type}:{tenant_name(tenant)}:"


def entity_id(entity_type: str, tenant: str, source_id: object) -> str:
    return _id_prefix(entity_type, tenant) + local_id(source_id)


def tenant_of_entity(entity: Entity) -> str:
    """The tenant part of ``urn:ngsi-ld:<Type>:<tenant>:<local id>``."""
    return str(entity["id"]).split(":")[3]


def utc_iso(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; naive datetimes are refused because their zone is a guess."""
    global _last_utc_iso
    last = _last_utc_iso
    if last[0] is moment:  # the attributes of one reading pass the very same datetime object
        return last[1]
    if moment.tzinfo is UTC:  # already UTC (fromisoformat of "+00:00" or "Z"): nothing to convert
        text = _utc_text(moment)
    elif moment.tzinfo is None or moment.utcoffset() is None:
        raise EntityError(f"time {moment.isoformat()}: has no time zone")
    else:
        text = _utc_text(moment.astimezone(UTC))
    _last_utc_iso = (moment, text)  # one tuple, swapped whole: safe to read from another thread
    return text


_last_utc_iso: tuple[datetime | None, str] = (None, "")


@lru_cache(maxsize=1024)
def _utc_text(utc: datetime) -> str:
    """Cached because ``isoformat`` costs ~2 µs and the attributes of one reading share their time.

    Keyed by the UTC datetime, never the caller's: two local times of a DST fold compare (and hash)
    equal although they are different instants.
    """
    return utc.isoformat(timespec="milliseconds" if utc.microsecond else "seconds").replace("+00:00", "Z")


def prop(
    value: Any,
    *,
    observed_at: datetime | None = None,
    unit_code: str | None = None,
) -> Attribute:
    if value is None:
        raise EntityError("a Property needs a value; leave the attribute out instead of sending null")
    if isinstance(value, float) and not math.isfinite(value):
        raise EntityError(f"a Property value must be finite, got {value}")
    attribute: Attribute = {"type": "Property", "value": value}
    if observed_at is not None:
        attribute["observedAt"] = utc_iso(observed_at)
    if unit_code is not None:
        attribute["unitCode"] = unit_code
    return attribute


def relationship(object_id: str, *, observed_at: datetime | None = None) -> Attribute:
    """One target per Relationship: QuantumLeap stores an array-valued object only as raw JSON."""
    if not object_id.startswith("urn:"):
        raise EntityError(f"relationship object {object_id!r}: must be an entity id (urn:...)")
    attribute: Attribute = {"type": "Relationship", "object": object_id}
    if observed_at is not None:
        attribute["observedAt"] = utc_iso(observed_at)
    return attribute


def geo_point(lon: float, lat: float) -> Attribute:
    """WGS84 Point in GeoJSON order [lon, lat]."""
    # Two floats in range (NaN compares False) is the usual case, checked in one expression.
    if not (type(lon) is float and type(lat) is float and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        _check_degrees("longitude", lon, 180.0)
        _check_degrees("latitude", lat, 90.0)
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [float(lon), float(lat)]}}


def _check_degrees(name: str, number: object, limit: float) -> None:
    if not isinstance(number, int | float) or isinstance(number, bool):
        raise EntityError(f"{name} {number!r}: not a number")
    if not math.isfinite(number) or abs(number) > limit:
        raise EntityError(f"{name} {number!r}: outside WGS84 range ±{limit:g}")


def geo_property(geometry: Mapping[str, Any]) -> Attribute:
    if "type" not in geometry or ("coordinates" not in geometry and "geometries" not in geometry):
        raise EntityError("a GeoProperty needs a GeoJSON geometry with type and coordinates")
    return {"type": "GeoProperty", "value": dict(geometry)}


def make_entity(
    entity_type: str,
    tenant: str,
    source_id: object,
    attributes: Mapping[str, Attribute],
    *,
    context: Sequence[str] | None = None,
) -> Entity:
    """Assemble an entity; attribute order is kept so output stays byte-for-byte deterministic."""
    entity: Entity = {"id": entity_id(entity_type, tenant, source_id), "type": entity_type}
    if "id" in attributes or "type" in attributes or "@context" in attributes:  # three lookups, not a walk
        name = next(name for name in attributes if name in _RESERVED_NAMES)  # the first one, as in the mapping
        raise EntityError(f"attribute name {name!r} is reserved by NGSI-LD")
    entity.update(attributes)
    if context:
        entity["@context"] = list(context)
    return entity

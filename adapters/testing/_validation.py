"""Entity validation as strict as Orion-LD, with its error titles.

Verified in the Orion-LD sources (FIWARE/context.Orion-LD, ``src/lib/orionld/payloadCheck``):
``pCheckUri`` (a URI needs a colon and only RFC 3986 characters), ``pcheckName`` (attribute names
may not hold ``= [ ] & ? " '`` or whitespace), ``pCheckAttribute`` (the per-type member rules and
titles, NULL rejected, ``observedAt`` must parse as ISO 8601, ``unitCode`` must be a string,
``location``/``observationSpace``/``operationSpace`` must be GeoProperties, datasetId arrays) and
``pCheckGeo*`` (six geometry types, 2 or 3 numbers per position, WGS84 ranges, rings of at least 4
closed positions).

Deliberately stricter than Orion-LD, because this project emits the normalized format only:
attributes must be objects with an explicit ``type`` (Orion-LD would turn a bare value into a
Property), ids need a real scheme (``urn:``, ``http:``), ``observedAt`` needs ``Z`` or an offset, and
attribute names may not hold ``< > ; ( )`` either (the NGSIv2 forbidden characters, which break
QuantumLeap columns).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from adapters.testing.problems import bad_request

SYSTEM_MEMBERS = frozenset({"createdAt", "modifiedAt"})
GEO_SPECIAL = frozenset({"location", "observationSpace", "operationSpace"})

#: The member that holds the value, per attribute type.
VALUE_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "VocabularyProperty": "vocab",
    "JsonProperty": "json",
    "ListProperty": "valueList",
}
_VALUE_MEMBERS = frozenset(VALUE_MEMBER.values())
_META_MEMBERS = frozenset({"type", "observedAt", "datasetId", "unitCode", "objectType", "valueType"})
#: Per attribute type, the value members of the other types: forbidden in it.
_OTHER_VALUE_MEMBERS = {attr_type: _VALUE_MEMBERS - {member} for attr_type, member in VALUE_MEMBER.items()}
#: Per attribute type, the members kept as they are (an attribute with only these has no sub-attributes).
_PLAIN_MEMBERS = {attr_type: _META_MEMBERS | {member} for attr_type, member in VALUE_MEMBER.items()}

_URI_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789%:/?#[]@!$&'()*+,;=-._~")
#: An ASCII character outside ``_URI_CHARS`` (non-ASCII characters pass).
_URI_INVALID_CHAR = re.compile("[^" + re.escape("".join(sorted(_URI_CHARS))) + r"\x80-\U0010ffff]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_FORBIDDEN_NAME_CHARS = frozenset("=[]&?\"'<>;()")
#: A forbidden character or whitespace: re's ``\s`` on str is ``str.isspace``.
_INVALID_NAME_CHAR = re.compile("[" + re.escape("".join(sorted(_FORBIDDEN_NAME_CHARS))) + r"\s]")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

#: Nesting depth of positions inside ``coordinates`` for each GeoJSON geometry Orion-LD accepts.
_GEOMETRY_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}


def check_uri(value: object, field: str) -> str:
    """A URI as Orion-LD's ``pCheckUri(mustBeUri=true)`` wants it, plus a real scheme."""
    if not isinstance(value, str):
        raise bad_request("Invalid JSON type", f"{field}: must be a JSON String")
    if value == "":
        raise bad_request("Empty URI", field)
    if ":" not in value:
        raise bad_request("Invalid URI - no colon found", f"{field}: {value!r}")
    if _URI_INVALID_CHAR.search(value):
        raise bad_request("Invalid URI - invalid character", f"{field}: {value!r}")
    if not _SCHEME.match(value):
        raise bad_request("Invalid URI - no scheme", f"{field}: {value!r} must start like 'urn:'")
    return value


def check_entity_type(value: object) -> str:
    """Entity types are short names or URIs; Orion-LD forbids whitespace in short names."""
    if not isinstance(value, str):
        raise bad_request("Invalid JSON type", "type: must be a JSON String")
    if value == "":
        raise bad_request("Empty String", "type")
    if ":" in value:
        return check_uri(value, "type")
    if any(ch.isspace() for ch in value):
        raise bad_request("Invalid URI/Shortname - whitespace present", f"type: {value!r}")
    return value


def check_attribute_name(name: str) -> None:
    """Reject names Orion-LD (or QuantumLeap downstream) cannot take."""
    if name == "":
        raise bad_request("Invalid attribute name", "empty string")
    invalid = _invalid_name_char(name)
    if invalid is not None:
        raise bad_request("Invalid attribute name", f"{name!r}: invalid character {invalid!r}")


@lru_cache(maxsize=4096)
def _invalid_name_char(name: str) -> str | None:
    """The first character a name may not hold; cached, since the same few names come in every entity."""
    found = _INVALID_NAME_CHAR.search(name)
    return found.group() if found else None


def check_entity(entity: object, stored_type: str | None) -> dict[str, Any]:
    """Validate one entity and return it as stored: no ``@context``, no system members.

    ``stored_type`` is the type of the entity already in the broker (None when it is new): Orion-LD
    lets an update omit ``type`` and fills it in from the database.
    """
    if not isinstance(entity, dict):
        raise bad_request("Invalid Entity", "must be a JSON Object")
    if not entity:
        raise bad_request("Empty Entity", "must be a non-empty JSON Object")
    if "id" not in entity:
        raise bad_request("Entity id is missing", "The 'id' field is mandatory")
    entity_id = check_uri(entity["id"], "id")
    if "type" in entity:
        entity_type = check_entity_type(entity["type"])
    elif stored_type is not None:
        entity_type = stored_type
    else:
        raise bad_request("Invalid Entity", "no type in incoming payload for CREATION of Entity")
    out: dict[str, Any] = {"id": entity_id, "type": entity_type}
    for name, attribute in entity.items():
        if name in ("id", "type", "@context") or name in SYSTEM_MEMBERS:
            continue
        out[name] = check_attribute(name, attribute)
    return out


def check_attribute(name: str, attribute: object, *, top_level: bool = True) -> Any:
    """Validate one normalized attribute (or a datasetId array of them); return it as stored."""
    check_attribute_name(name)
    if top_level and isinstance(attribute, list):
        return _check_instances(name, attribute)
    if attribute is None:
        raise bad_request(
            "The use of NULL value is not recommended for JSON-LD (the whole attribute gets ignored)",
            name,
        )
    if not isinstance(attribute, dict):
        raise bad_request(
            "Invalid attribute",
            f"{name}: not a normalized attribute object (the double accepts the normalized format only)",
        )
    return _check_instance(name, attribute, top_level)


def _check_instances(name: str, instances: list[Any]) -> list[dict[str, Any]]:
    """A multi-attribute: objects with distinct datasetIds, at most one without."""
    dataset_ids = [i.get("datasetId") for i in instances if isinstance(i, dict)]
    if len(dataset_ids) != len(instances) or all(d is None for d in dataset_ids):
        raise bad_request(
            "Invalid attribute",
            f"{name}: an array is only valid as attribute instances with a datasetId each",
        )
    present = [d for d in dataset_ids if d is not None]
    if len(present) != len(set(map(str, present))):
        raise bad_request("More than one attribute instance with one and the same datasetId", name)
    if len(dataset_ids) - len(present) > 1:
        raise bad_request("More than one default attribute in dataset array", name)
    return [_check_instance(name, instance, True) for instance in instances]


def _check_instance(name: str, attribute: dict[str, Any], top_level: bool) -> dict[str, Any]:
    attr_type = attribute.get("type")
    if attr_type is None:
        raise bad_request(
            "Invalid attribute",
            f"{name}: missing /type/ (the double accepts the normalized format only)",
        )
    if not isinstance(attr_type, str) or attr_type not in VALUE_MEMBER:
        raise bad_request("Invalid value for attribute /type/", str(attr_type))
    if top_level and name in GEO_SPECIAL and attr_type != "GeoProperty":
        raise bad_request("Invalid type for special GeoProperty attribute", name)
    value_member = VALUE_MEMBER[attr_type]
    forbidden = _OTHER_VALUE_MEMBERS[attr_type].intersection(attribute)
    if forbidden:
        raise bad_request(f"Forbidden field for a {attr_type}: {min(forbidden)}", name)
    if value_member not in attribute:
        raise bad_request(f"Missing /{value_member}/ field for {attr_type} at creation time", name)
    value = attribute[value_member]
    if value is None:
        raise bad_request(
            "The use of NULL value is not recommended for JSON-LD (the whole attribute gets ignored)",
            name,
        )
    _check_value(name, attr_type, value)
    _check_meta(name, attr_type, attribute, top_level)
    if _PLAIN_MEMBERS[attr_type].issuperset(attribute):
        return dict(attribute)  # the common case: no system members to drop, no sub-attributes to check
    out: dict[str, Any] = {}
    for member, member_value in attribute.items():
        if member in SYSTEM_MEMBERS:
            continue
        if member in _META_MEMBERS or member == value_member:
            out[member] = member_value
        else:
            out[member] = check_attribute(member, member_value, top_level=False)
    return out


def _check_value(name: str, attr_type: str, value: Any) -> None:
    if attr_type == "Relationship":
        _check_object(value)
    elif attr_type == "GeoProperty":
        check_geometry(value)
    elif attr_type == "LanguageProperty":
        _check_language_map(name, value)
    elif attr_type in ("VocabProperty", "VocabularyProperty"):
        words = value if isinstance(value, list) else [value]
        if not words or not all(isinstance(word, str) for word in words):
            raise bad_request("Invalid VocabProperty vocab - not a string nor an array", name)
    elif attr_type == "ListProperty" and not isinstance(value, list):
        raise bad_request("Invalid ListProperty valueList - not an array", name)


def _check_object(value: Any) -> None:
    if isinstance(value, str):
        check_uri(value, "object")
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise bad_request("Invalid Relationship object array item - not a String", "object")
            check_uri(item, "object")
    else:
        raise bad_request("Invalid Relationship object - not a string nor an array", "object")


def _check_language_map(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise bad_request("The languageMap of a LanguageProperty attribute must be a JSON Object", name)
    for texts in value.values():
        items = texts if isinstance(texts, list) else [texts]
        if not all(isinstance(text, str) and text for text in items):
            raise bad_request(
                "Items of the value of a LanguageProperty attribute must be JSON String or Array of String",
                name,
            )


def _check_meta(name: str, attr_type: str, attribute: dict[str, Any], top_level: bool) -> None:
    if "observedAt" in attribute:
        check_date_time(attribute["observedAt"], "observedAt")
    if "unitCode" in attribute:
        if attr_type != "Property":
            raise bad_request("Invalid member /unitCode/", "valid for Property attributes only")
        if not isinstance(attribute["unitCode"], str):
            raise bad_request("Invalid JSON type - not a string", "unitCode")
    if "datasetId" in attribute:
        if not top_level:
            raise bad_request("Invalid member /datasetId/", f"{name}: sub-attributes have no datasetId")
        check_uri(attribute["datasetId"], "datasetId")
    if "objectType" in attribute and attr_type != "Relationship":
        raise bad_request("Invalid member /objectType/", "valid for Relationship attributes only")
    if "valueType" in attribute and attr_type == "Relationship":
        raise bad_request("Invalid member /valueType/", "valid for Properties only")


def check_date_time(value: object, field: str) -> None:
    """ISO 8601 date-time with ``Z`` or an offset (QuantumLeap fails on mixed zones)."""
    if not isinstance(value, str):
        raise bad_request("Invalid JSON type - not a string (so, not a valid timestamp)", field)
    if not _DATE_TIME.fullmatch(value):
        raise bad_request("Invalid ISO8601 timestamp", f"{field}: {value!r}")
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise bad_request("Invalid ISO8601 timestamp", f"{field}: {value!r}") from exc


def check_geometry(value: Any) -> None:
    """A GeoJSON geometry in WGS84 longitude/latitude, structurally valid."""
    if not isinstance(value, dict):
        raise bad_request("Invalid GeoJSON", "the value of a GeoProperty must be a GeoJSON geometry")
    geometry = value.get("type")
    if not isinstance(geometry, str) or geometry not in _GEOMETRY_DEPTH:
        raise bad_request("Invalid geometry", str(geometry))
    coordinates = value.get("coordinates")
    if not isinstance(coordinates, list):
        raise bad_request("Invalid GeoJSON", f"'coordinates' of a '{geometry}' must be a JSON Array")
    _check_coordinates(geometry, coordinates, _GEOMETRY_DEPTH[geometry])


def _check_coordinates(geometry: str, coordinates: list[Any], depth: int) -> None:
    if depth == 0:
        _check_position(coordinates)
        return
    if not coordinates:
        raise bad_request("Invalid GeoJSON", f"empty 'coordinates' array in a '{geometry}'")
    for part in coordinates:
        if not isinstance(part, list):
            raise bad_request("Invalid GeoJSON", f"Non-Array in 'coordinates' for a '{geometry}'")
        _check_coordinates(geometry, part, depth - 1)
    if depth == 1 and geometry in ("LineString", "MultiLineString") and len(coordinates) < 2:
        raise bad_request("Invalid GeoJSON", "A LineString must have at least 2 points")
    if depth == 1 and geometry in ("Polygon", "MultiPolygon"):
        if len(coordinates) < 4:
            raise bad_request("Invalid GeoJSON", "A Polygon must have at least 4 points")
        first, last = coordinates[0], coordinates[-1]
        if len(first) != len(last) or any(abs(a - b) > 1e-9 for a, b in zip(first, last, strict=True)):
            raise bad_request("Invalid GeoJSON", "In a Polygon, the first and the last position must be identical")


def _check_position(position: list[Any]) -> None:
    for number in position:
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            raise bad_request("Invalid GeoJSON", "all members of a position in 'coordinates' must be of type 'Number'")
    if len(position) not in (2, 3):
        raise bad_request("Invalid GeoJSON", "a position in 'coordinates' must be an array with two or three Numbers")
    longitude, latitude = position[0], position[1]
    if not -90 <= latitude <= 90:
        raise bad_request("Invalid GeoJSON", "latitude outside of range -90 to 90")
    if not -180 <= longitude <= 180:
        raise bad_request("Invalid GeoJSON", "longitude outside of range -180 to 180")

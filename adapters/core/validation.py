"""Checks every entity before it leaves: NGSI-LD structure, then the project's data-model profile.

The profile (``datamodels/<Type>/schema.json``) is written in the keyValues form, like the official
Smart Data Models schemas, and is stricter than them (units, ranges, required attributes we always
fill). An entity the profile refuses is dead-lettered, never sent.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema_rs

from adapters.core.entities import Entity

__all__ = ["datamodels_root", "entity_problems", "profile_types", "to_key_values"]

ATTRIBUTE_TYPES = {
    "Property",
    "GeoProperty",
    "Relationship",
    "LanguageProperty",
    "VocabProperty",
    "ListProperty",
    "JsonProperty",
}
GEOMETRY_NAMES = {"location", "observationSpace", "operationSpace"}
GEOJSON_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
ENTITY_ID = re.compile(r"^urn:ngsi-ld:[A-Za-z][A-Za-z0-9]*:[a-z0-9_-]{1,50}:[A-Za-z0-9._~-]+$")
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
# Orion-LD refuses these in attribute names.
FORBIDDEN_NAME_CHARS = re.compile(r"[<>\"'=;()\s]")


def datamodels_root() -> Traversable:
    """``datamodels/`` beside the package in a checkout, else the copy installed as adapters.datamodels."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "setup.cfg").is_file() and (checkout / "datamodels").is_dir():
        return checkout / "datamodels"
    return resources.files("adapters.datamodels")


def profile_types() -> list[str]:
    root = datamodels_root()
    return sorted(child.name for child in root.iterdir() if child.is_dir() and child.joinpath("schema.json").is_file())


@cache
def _schema(entity_type: str) -> dict[str, Any]:
    schema_file = datamodels_root().joinpath(entity_type).joinpath("schema.json")
    if not schema_file.is_file():
        return {}
    schema: dict[str, Any] = json.loads(schema_file.read_text(encoding="utf-8"))
    return schema


@cache
def _validator(entity_type: str) -> jsonschema_rs.Draft202012Validator | None:
    """Compiled once per type; jsonschema-rs because this runs for every entity (docs/decisions/0007)."""
    schema = _schema(entity_type)
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True) if schema else None


def _geometry_problems(name: str, geometry: Any) -> list[str]:
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOJSON_TYPES:
        return [f"{name}: value is not a GeoJSON geometry"]
    positions: list[Any] = []

    def collect(node: Any) -> None:
        if (
            isinstance(node, list)
            and node
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in node)
        ):
            positions.append(node)
        elif isinstance(node, list):
            for child in node:
                collect(child)

    collect(geometry.get("coordinates"))
    if not positions:
        return [f"{name}: geometry has no positions"]
    for lon, lat, *_ in (p if len(p) >= 2 else (math.nan, math.nan) for p in positions):
        if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
            return [f"{name}: position [{lon}, {lat}] is not WGS84 [lon, lat]"]
    return []


# How deep the positions sit in ``coordinates`` for each GeoJSON geometry type.
_POSITION_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def _is_plain_wgs84_geometry(geometry: Any) -> bool:
    """``{"type", "coordinates"}`` and nothing else, every level a non-empty list, every position 2 or 3
    finite floats with lon/lat in range.

    The shape adapters emit, checked in one walk; for it both the non-finite scan and
    ``_geometry_problems`` are known to find nothing, so False only means "take the general path".
    """
    if type(geometry) is not dict or len(geometry) != 2:
        return False
    kind = geometry.get("type")
    depth = _POSITION_DEPTH.get(kind) if type(kind) is str else None
    return depth is not None and _plain_positions(geometry.get("coordinates"), depth)


def _plain_positions(node: Any, depth: int) -> bool:
    if type(node) is not list or not node:
        return False
    if depth:
        for child in node:  # noqa: SIM110 - a plain loop; all() over a generator costs more here
            if not _plain_positions(child, depth - 1):
                return False
        return True
    if len(node) == 2:
        lon, lat = node
    elif len(node) == 3 and type(node[2]) is float and math.isfinite(node[2]):
        lon, lat, _ = node
    else:
        return False
    return type(lon) is float and type(lat) is float and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0


# Value classes that can hold no float (bool is a subclass of int, str holds no number).
_SCALARS = frozenset({str, int, bool, type(None)})


def _has_non_finite(value: Any) -> bool:
    """Entities are plain JSON-like dicts and lists: exact type tests first, isinstance only for subclasses."""
    cls = type(value)
    if cls is float:
        return not math.isfinite(value)
    # Plain loops: any() over a generator costs twice as much for the short lists entities hold.
    if cls is list:
        for item in value:  # noqa: SIM110
            if type(item) not in _SCALARS and _has_non_finite(item):
                return True
        return False
    if cls is dict:
        for item in value.values():  # noqa: SIM110
            if type(item) not in _SCALARS and _has_non_finite(item):
                return True
        return False
    if cls in _SCALARS:
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


@lru_cache(maxsize=4096)
def _name_refused(name: str) -> bool:
    """Cached: an entity type has a fixed set of attribute names, checked once each instead of per entity."""
    return FORBIDDEN_NAME_CHARS.search(name) is not None


@lru_cache(maxsize=4096)
def _is_utc_time(text: str) -> bool:
    """Cached: the attributes of one reading, and many readings of a poll, share their ``observedAt``."""
    return UTC_TIME.match(text) is not None


def _check_attribute(name: str, attribute: Any, problems: list[str]) -> Any:
    """Append what is wrong with one attribute; return its keyValues form (as ``to_key_values``).

    Both in one pass because this runs for every attribute of every entity; it appends rather than
    returning lists for the same reason.
    """
    if not isinstance(attribute, dict):
        if _name_refused(name):
            problems.append(f"{name}: attribute name contains a character Orion-LD refuses")
        else:
            problems.append(f"{name}: not an NGSI-LD attribute object (Property, GeoProperty, Relationship, ...)")
        return attribute
    kind = attribute.get("type")
    value = attribute.get("value")
    if kind == "Property":  # most attributes: the checks of the general branch that apply, in its order
        if _name_refused(name):
            problems.append(f"{name}: attribute name contains a character Orion-LD refuses")
            return value
        if name in GEOMETRY_NAMES:
            problems.append(f"{name}: must be a GeoProperty")
        if value is None:
            problems.append(f"{name}: Property without a value")
        elif type(value) not in _SCALARS and _has_non_finite(value):
            problems.append(f"{name}: NaN or Infinity is not JSON; the broker would refuse the whole batch")
        key_value = value
    else:
        key_value = attribute.get("object") if kind == "Relationship" else value
        if _name_refused(name):
            problems.append(f"{name}: attribute name contains a character Orion-LD refuses")
            return key_value
        if kind not in ATTRIBUTE_TYPES:
            problems.append(f"{name}: not an NGSI-LD attribute object (Property, GeoProperty, Relationship, ...)")
            return key_value
        if name in GEOMETRY_NAMES and kind != "GeoProperty":
            problems.append(f"{name}: must be a GeoProperty")
        if kind == "GeoProperty":
            if not _is_plain_wgs84_geometry(value):
                if _has_non_finite(value):
                    problems.append(f"{name}: NaN or Infinity is not JSON; the broker would refuse the whole batch")
                problems += _geometry_problems(name, value)
        elif type(value) not in _SCALARS and _has_non_finite(value):
            problems.append(f"{name}: NaN or Infinity is not JSON; the broker would refuse the whole batch")
        if kind == "Relationship":
            target = attribute.get("object")
            if not (isinstance(target, str) and ENTITY_ID.match(target)):
                problems.append(f"{name}: Relationship object must be one entity id, got {target!r}")
    observed_at = attribute.get("observedAt")
    if observed_at is not None and not (isinstance(observed_at, str) and _is_utc_time(observed_at)):
        problems.append(f"{name}.observedAt: must be UTC ISO 8601 ending in Z, got {observed_at!r}")
    if "unitCode" in attribute and not isinstance(attribute["unitCode"], str):
        problems.append(f"{name}.unitCode: must be a UN/CEFACT code string")
    return key_value


def to_key_values(entity: Mapping[str, Any]) -> dict[str, Any]:
    """NGSI-LD normalized -> keyValues, the form the Smart Data Models schemas describe."""
    simplified: dict[str, Any] = {}
    for name, attribute in entity.items():
        if name == "@context":
            continue
        if name in ("id", "type") or not isinstance(attribute, dict):
            simplified[name] = attribute
        elif attribute.get("type") == "Relationship":
            simplified[name] = attribute.get("object")
        else:
            simplified[name] = attribute.get("value")
    return simplified


def _because(entity_type: str, error: Any, instance: Mapping[str, Any]) -> str:
    """jsonschema-rs does not say which attribute made another one required; name it."""
    if list(error.schema_path)[-1:] != ["dependentRequired"]:
        return ""
    rules = _schema(entity_type).get("dependentRequired", {})
    triggers = [key for key, needed in rules.items() if key in instance and error.message.split('"')[1] in needed]
    return f" when {', '.join(triggers)} is present" if triggers else ""


def entity_problems(entity: Entity) -> list[str]:
    """Every reason this entity must not be sent; empty when it conforms."""
    entity_type = entity.get("type")
    identifier = entity.get("id")
    problems = []
    if not isinstance(entity_type, str):
        return ["entity has no type"]
    if not (isinstance(identifier, str) and ENTITY_ID.match(identifier) and identifier.split(":")[2] == entity_type):
        problems.append(f"id {identifier!r}: must be urn:ngsi-ld:{entity_type}:<tenant>:<local id>")
    simplified: dict[str, Any] = {}  # to_key_values(entity), built in the same pass
    for name, attribute in entity.items():
        if name == "id" or name == "type":
            simplified[name] = attribute
        elif name != "@context":
            simplified[name] = _check_attribute(name, attribute, problems)
    validator = _validator(entity_type)
    if validator is None:
        problems.append(f"type {entity_type}: no data-model profile in datamodels/")
        return problems
    try:
        if validator.is_valid(simplified):  # the common case; collecting errors costs a third more
            return problems
        errors = sorted(validator.iter_errors(simplified), key=lambda e: [str(p) for p in e.instance_path])
    except UnicodeEncodeError as unencodable:  # a lone surrogate ("\ud800") cannot cross into the Rust validator
        problems.append(f"text {str(unencodable.object)[:60]!r}: not valid Unicode ({unencodable.reason})")
        return problems
    for error in errors:
        where = ".".join(str(part) for part in error.instance_path) or entity_type
        problems.append(f"{where}: {error.message}{_because(entity_type, error, simplified)} (profile {entity_type})")
    return problems

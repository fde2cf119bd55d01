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
from functools import cache
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


def _has_non_finite(value: Any) -> bool:
    """Entities are plain JSON-like dicts and lists (ABC isinstance checks cost a third of validation)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


def _attribute_problems(name: str, attribute: Any) -> list[str]:
    if FORBIDDEN_NAME_CHARS.search(name):
        return [f"{name}: attribute name contains a character Orion-LD refuses"]
    if not isinstance(attribute, dict) or attribute.get("type") not in ATTRIBUTE_TYPES:
        return [f"{name}: not an NGSI-LD attribute object (Property, GeoProperty, Relationship, ...)"]
    kind = attribute["type"]
    problems = []
    if name in GEOMETRY_NAMES and kind != "GeoProperty":
        problems.append(f"{name}: must be a GeoProperty")
    if kind == "Property" and attribute.get("value") is None:
        problems.append(f"{name}: Property without a value")
    if _has_non_finite(attribute.get("value")):
        problems.append(f"{name}: NaN or Infinity is not JSON; the broker would refuse the whole batch")
    if kind == "GeoProperty":
        problems += _geometry_problems(name, attribute.get("value"))
    if kind == "Relationship":
        target = attribute.get("object")
        if not (isinstance(target, str) and ENTITY_ID.match(target)):
            problems.append(f"{name}: Relationship object must be one entity id, got {target!r}")
    observed_at = attribute.get("observedAt")
    if observed_at is not None and not (isinstance(observed_at, str) and UTC_TIME.match(observed_at)):
        problems.append(f"{name}.observedAt: must be UTC ISO 8601 ending in Z, got {observed_at!r}")
    if "unitCode" in attribute and not isinstance(attribute["unitCode"], str):
        problems.append(f"{name}.unitCode: must be a UN/CEFACT code string")
    return problems


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
    for name, attribute in entity.items():
        if name not in ("id", "type", "@context"):
            problems += _attribute_problems(name, attribute)
    validator = _validator(entity_type)
    if validator is None:
        problems.append(f"type {entity_type}: no data-model profile in datamodels/")
        return problems
    simplified = to_key_values(entity)
    for error in sorted(validator.iter_errors(simplified), key=lambda e: [str(p) for p in e.instance_path]):
        where = ".".join(str(part) for part in error.instance_path) or entity_type
        problems.append(f"{where}: {error.message}{_because(entity_type, error, simplified)} (profile {entity_type})")
    return problems

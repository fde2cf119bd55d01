"""Entity files as ``run`` writes them without a broker (NDJSON), or JSON arrays, read back."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["attribute_value", "finite_number", "latest_entities", "read_entity_file"]


def read_entity_file(text: str) -> list[dict[str, Any]]:
    """Entities of an NDJSON file or a JSON array; ValueError naming the line that is not a JSON object."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError as error:
            raise ValueError(f"not a JSON array: {error}") from None
        if not all(isinstance(item, dict) for item in items):
            raise ValueError("the JSON array holds something else than entity objects")
        return list(items)
    entities = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as error:
            raise ValueError(f"line {number}: not JSON ({error})") from None
        if not isinstance(item, dict):
            raise ValueError(f"line {number}: not a JSON object")
        entities.append(item)
    return entities


def latest_entities(entities: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per id, what the broker holds after upserting these in order with ``options=update``.

    The latest entity per id wins, attribute by attribute: a later one replaces the attributes it
    carries and keeps the others (a lid-open frame without ``fillingLevel`` keeps the last level).
    """
    merged: dict[str, dict[str, Any]] = {}
    for entity in entities:
        identifier = entity.get("id")
        if isinstance(identifier, str):
            merged.setdefault(identifier, {}).update(entity)
    return list(merged.values())


def attribute_value(attribute: Any) -> Any:
    """The value of a normalized attribute (a Relationship's object), or a keyValues one, which is the value."""
    if isinstance(attribute, Mapping):
        if attribute.get("type") == "Relationship" or "object" in attribute:
            return attribute.get("object")
        if "value" in attribute:
            return attribute["value"]
    return attribute


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite JSON number (not a bool); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)

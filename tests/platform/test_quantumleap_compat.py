"""What QuantumLeap needs from every entity the adapters emit, proven over all their sample output.

QuantumLeap answers 200 even when it stores a row badly (../shared/DESIGN.md §3, observed on its
PostgreSQL/Timescale back end), so these rules are checked here, on the entities of every installed
adapter's offline sample run and of every recorded case:

* per entity type, each attribute keeps one JSON type: the first notification fixes the column type,
  and a later integer-for-float (or string-for-number) row is kept only as raw JSON;
* quantities with a ``unitCode`` are JSON floats, always (``21.0``, never ``21``);
* a string attribute is always an ISO date-time or never (QuantumLeap types such strings as
  timestamps, the others as text);
* no Relationship has an array ``object`` (the whole row falls back to raw JSON);
* ``observedAt`` is UTC with ``Z`` wherever it appears, and every measured number carries it (the
  time index is the latest ``observedAt``; mixing zones gives a 500);
* no attribute is named ``timestamp`` or ``TimeInstant`` (either would win over ``observedAt``);
* no multi-instance attributes (``datasetId``) and no Language/Vocab/Json/List properties, which
  QuantumLeap drops without a word.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from platform_support import Sample, offline_sample_run, recorded_cases

from adapters.core.adapter import discover_adapters

Z_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
#: Numbers that are settings of the thing, not observations: they carry no observedAt on purpose.
STATIC_NUMBERS = {
    ("OffStreetParking", "totalSpotNumber"),
    ("OnStreetParking", "totalSpotNumber"),
    ("FloodMonitoring", "referenceLevel"),
    ("FloodMonitoring", "alertLevel"),
    ("FloodMonitoring", "dangerLevel"),
    ("Building", "floorsAboveGround"),
    ("Building", "floorsBelowGround"),
}
DROPPED_TYPES = {"LanguageProperty", "VocabProperty", "JsonProperty", "ListProperty"}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    """Every installed adapter's offline sample run (as CI runs it), plus every recorded case."""
    run, output = offline_sample_run(tmp_path_factory.mktemp("sample-run"))
    produced = {entity["type"] for _, entity in run}
    silent = [name for name, a in discover_adapters().items() if not produced & set(a.entity_types())]
    assert not silent, f"adapters without sample output: {silent}\n{output}"
    return run + recorded_cases()


def _attributes(entity: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for name, attribute in entity.items():
        if name not in ("id", "type", "@context"):
            yield name, attribute


def _kind(attribute: dict[str, Any]) -> str:
    if attribute.get("type") == "Relationship":
        target = attribute.get("object")
        return "relationship-array" if isinstance(target, list) else "relationship"
    value = attribute.get("value")
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "date-time" if ISO_DATE_TIME.fullmatch(value) else "text"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "geometry" if attribute.get("type") == "GeoProperty" else "object"
    return "null"


def test_the_samples_cover_every_type_the_adapters_emit(samples: list[Sample]) -> None:
    emitted = {t for a in discover_adapters().values() for t in a.entity_types()}
    covered = {entity["type"] for _, entity in samples}
    assert emitted <= covered, f"no sample output for {sorted(emitted - covered)}"


def test_each_attribute_keeps_one_json_type_per_entity_type(samples: list[Sample]) -> None:
    kinds: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for where, entity in samples:
        for name, attribute in _attributes(entity):
            if isinstance(attribute, dict):
                kinds[(entity["type"], name)].setdefault(_kind(attribute), f"{where} {entity['id']}")
    mixed = {f"{t}.{a}": seen for (t, a), seen in kinds.items() if len(seen) > 1}
    assert not mixed, "attributes that change JSON type (QuantumLeap keeps the later rows as raw JSON only):\n" + (
        json.dumps(mixed, indent=2)
    )


def test_quantities_with_a_unit_are_always_floats(samples: list[Sample]) -> None:
    problems = [
        f"{where} {entity['id']} {name}={attribute.get('value')!r} ({attribute['unitCode']})"
        for where, entity in samples
        for name, attribute in _attributes(entity)
        if isinstance(attribute, dict) and "unitCode" in attribute and not isinstance(attribute.get("value"), float)
    ]
    assert not problems, "quantities that are not JSON floats:\n" + "\n".join(problems)


def test_no_relationship_has_an_array_object(samples: list[Sample]) -> None:
    problems = [
        f"{where} {entity['id']} {name}"
        for where, entity in samples
        for name, attribute in _attributes(entity)
        if isinstance(attribute, dict)
        and attribute.get("type") == "Relationship"
        and not isinstance(attribute.get("object"), str)
    ]
    assert not problems, "Relationships whose object is not one URI:\n" + "\n".join(problems)


def test_observed_at_is_utc_z_and_every_measured_number_has_it(samples: list[Sample]) -> None:
    problems = []
    for where, entity in samples:
        for name, attribute in _attributes(entity):
            if not isinstance(attribute, dict):
                continue
            observed = attribute.get("observedAt")
            if observed is not None and not (isinstance(observed, str) and Z_TIME.fullmatch(observed)):
                problems.append(f"{where} {entity['id']} {name}: observedAt {observed!r} is not UTC with Z")
            measured = _kind(attribute) in ("integer", "float") and (entity["type"], name) not in STATIC_NUMBERS
            if measured and observed is None:
                problems.append(f"{where} {entity['id']} {name}: a measured number without observedAt")
    assert not problems, "\n".join(problems)


def test_no_attribute_competes_with_observed_at_for_the_time_index(samples: list[Sample]) -> None:
    problems = [
        f"{where} {entity['id']} {name}"
        for where, entity in samples
        for name, _ in _attributes(entity)
        if name.lower() in ("timestamp", "timeinstant")
    ]
    assert not problems, "attributes named timestamp/TimeInstant win over observedAt:\n" + "\n".join(problems)


def test_nothing_quantumleap_drops_silently(samples: list[Sample]) -> None:
    problems = []
    for where, entity in samples:
        for name, attribute in _attributes(entity):
            if isinstance(attribute, list):
                problems.append(f"{where} {entity['id']} {name}: several instances (only one survives)")
            elif isinstance(attribute, dict) and (attribute.get("type") in DROPPED_TYPES or "datasetId" in attribute):
                problems.append(f"{where} {entity['id']} {name}: {attribute.get('type')} / datasetId is dropped")
    assert not problems, "\n".join(problems)

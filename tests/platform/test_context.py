"""The merged @context (broker-config/context/dos-adapters.jsonld) and its source list.

Built by scripts/build_context.py from the official Smart Data Models subject contexts; CI re-runs
the build with ``--check`` against ../shared/sdm. These tests need only the committed files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from platform_support import ROOT

from adapters.core.adapter import discover_adapters

CONTEXT = ROOT / "broker-config" / "context" / "dos-adapters.jsonld"
SOURCES = ROOT / "broker-config" / "context" / "sources.json"
CORE = ROOT / "broker-config" / "orion-ld" / "ldcontexts" / "ngsi-ld-core-context-v1.6.jsonld"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"defined twice in one object: {duplicates}")
    return dict(pairs)


def load_strict(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)


@pytest.fixture(scope="module")
def context() -> dict[str, Any]:
    document = load_strict(CONTEXT)
    assert set(document) == {"@context"}
    assert isinstance(document["@context"], dict)
    return dict(document["@context"])


@pytest.fixture(scope="module")
def core() -> dict[str, Any]:
    url, _, text = CORE.read_text(encoding="utf-8").partition("\n")
    assert url == "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"  # -coreContextDir format
    return dict(json.loads(text)["@context"])


@pytest.fixture(scope="module")
def sources() -> dict[str, Any]:
    return dict(load_strict(SOURCES))


def scopes(context: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """('top level', terms) and (type, its type-scoped terms) for every scope of the context."""
    yield "top level", context
    for term, definition in context.items():
        if isinstance(definition, dict) and "@context" in definition:
            yield term, definition["@context"]


def iri(definition: Any) -> str:
    return str(definition["@id"] if isinstance(definition, dict) else definition)


def test_no_term_maps_to_two_iris_in_any_scope(context: dict[str, Any]) -> None:
    # load_strict already refused a key defined twice in one object; within a scope that is the rule.
    for scope, terms in scopes(context):
        for term, definition in terms.items():
            assert not term.startswith("@"), f"{scope}: keyword {term}"
            assert iri(definition).startswith(("https://", "http://")), f"{scope}: {term} -> {definition!r}"
            if isinstance(definition, dict):
                assert set(definition) <= {"@id", "@type", "@container", "@context"}, f"{scope}: {term}"


def test_type_scopes_only_override_what_the_top_level_says_otherwise(context: dict[str, Any]) -> None:
    for scope, terms in scopes(context):
        if scope == "top level":
            continue
        for term, definition in terms.items():
            assert term in context, f"{scope}: {term} has no top-level definition (Orion-LD reads only that)"
            assert iri(definition) != iri(context[term]), f"{scope}: {term} repeats the top level"
            assert not (isinstance(definition, dict) and "@context" in definition), f"{scope}: nested scope {term}"


def test_no_term_collides_with_the_ngsi_ld_core_context(context: dict[str, Any], core: dict[str, Any]) -> None:
    for scope, terms in scopes(context):
        clashes = sorted(set(terms) & set(core))
        assert not clashes, f"{scope}: the core context defines {clashes}; Orion-LD would let the core win"


def test_orion_ld_can_read_every_term_definition(context: dict[str, Any]) -> None:
    """Orion-LD 1.12 rejects a context key whose value is neither a string nor an object."""
    assert "@version" not in context
    for term, definition in context.items():
        assert isinstance(definition, str | dict), term
        if isinstance(definition, dict):
            assert isinstance(definition.get("@id"), str), term


def test_sources_list_every_type_and_its_subject(context: dict[str, Any], sources: dict[str, Any]) -> None:
    listed = {entry["type"]: entry for entry in sources["types"]}
    for entity_type, entry in listed.items():
        assert entry["subject"].startswith("dataModel."), entity_type
        assert len(entry["commit"]) == 40 and len(entry["sha256"]) == 64, entity_type
        assert iri(context[entity_type]) == entry["iri"], entity_type
        assert entry["iri"].startswith(f"https://smartdatamodels.org/{entry['subject']}/"), entity_type
    scoped = {t for t, d in context.items() if isinstance(d, dict) and "@context" in d}
    assert scoped == set(sources["type_scoped_terms"])
    assert sources["core_context"]["file"] == str(CORE.relative_to(ROOT))


def test_every_type_an_installed_adapter_emits_is_in_the_context(sources: dict[str, Any]) -> None:
    listed = {entry["type"] for entry in sources["types"]}
    emitted = {t for adapter in discover_adapters().values() for t in adapter.entity_types()}
    assert emitted <= listed, f"run scripts/build_context.py: {sorted(emitted - listed)} missing"


def test_disputed_terms_resolve_to_each_types_own_subject(context: dict[str, Any], sources: dict[str, Any]) -> None:
    """``temperature`` of a WeatherObserved is Weather's, of an IndoorEnvironmentObserved Environment's."""
    subject_of = {entry["type"]: entry["subject"] for entry in sources["types"]}
    for term, dispute in sources["disputed_terms"].items():
        for entity_type, subject in subject_of.items():
            scope = context[entity_type].get("@context", {}) if isinstance(context[entity_type], dict) else {}
            effective = iri(scope.get(term, context[term]))
            wanted = dispute["others"].get(subject, dispute["top_level"]["iri"])
            if subject == dispute["top_level"]["subject"] or subject in dispute["others"]:
                assert effective == wanted, f"{entity_type}.{term}: {effective} instead of {wanted}"
    weather = context["WeatherObserved"]["@context"]
    assert iri(weather["temperature"]) == "https://smartdatamodels.org/dataModel.Weather/temperature"
    assert iri(context["temperature"]) == "https://smartdatamodels.org/dataModel.Environment/temperature"


def test_every_attribute_the_adapters_emit_is_a_term(context: dict[str, Any], core: dict[str, Any]) -> None:
    """An attribute outside the context expands to the core's default vocabulary: not the Smart Data
    Models IRI, and (DESIGN §3) QuantumLeap may receive it as a full URI."""
    missing: dict[str, set[str]] = {}
    for adapter in discover_adapters().values():
        package = Path(__import__(adapter.__module__, fromlist=["_"]).__file__ or "").parent
        for expected in package.glob("cases/*/expected.ndjson"):
            for line in expected.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                entity = json.loads(line)
                for name in (entity["type"], *entity):
                    if name not in ("id", "type", "@context") and name not in context and name not in core:
                        missing.setdefault(name, set()).add(f"{adapter.name}: {entity['type']}")
    assert not missing, f"not in the @context: { {k: sorted(v) for k, v in missing.items()} }"

#!/usr/bin/env python3
"""Build the merged @context the adapters send (broker-config/context/dos-adapters.jsonld).

Input: the official Smart Data Models subject contexts of every entity type we emit (the installed
adapters' types plus ``PLANNED_TYPES``), copied byte for byte in ``../shared/sdm/<Type>/context.jsonld``,
and the NGSI-LD core context copy in ``../shared/sdm/_common/ngsi-ld-core-context.jsonld``. Output,
committed so that nothing at test or run time needs ``../shared``:

* ``broker-config/context/dos-adapters.jsonld`` - the merged context, served by the context server;
* ``broker-config/context/sources.json``         - the source list: type -> subject, commit, sha256;
  the core terms dropped; the terms whose subjects disagree and how each was resolved;
* ``broker-config/orion-ld/ldcontexts/ngsi-ld-core-context-v1.6.jsonld`` - the core context Orion-LD
  loads from a local file (first line its URL, then the JSON-LD; the format of Orion-LD's
  ``-coreContextDir``).

Rules:

1. A term the NGSI-LD core context defines is dropped: Orion-LD applies the core context over every
   user context, so ours would be dead weight at best. A source term that the core defines with a
   *different* IRI aborts the build (that would be a real collision).
2. The subject contexts disagree on some terms (``temperature`` is Environment, Weather, Device and
   WasteManagement). The top level gets the IRI used by most of our types (ties: subject name), and
   each type whose subject says otherwise gets a JSON-LD 1.1 *type-scoped* context with its own
   subject's IRI, so a standard JSON-LD processor expands every attribute to its subject's IRI.
   Orion-LD reads only ``@id``/``@type`` of a term definition (orionldContextHashTablesFill.cpp), so
   inside the broker the top-level IRI applies; the names the platform uses stay the same either way.
3. No term maps to two IRIs within one scope, and no ``@version`` key (Orion-LD releases before
   1.13 reject non-string values in a context).

    .venv/bin/python scripts/build_context.py            # rebuild from ../shared/sdm
    .venv/bin/python scripts/build_context.py --check    # exit 1 if the committed files are stale (CI)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SDM = ROOT.parent / "shared" / "sdm"
OUT_CONTEXT = ROOT / "broker-config" / "context" / "dos-adapters.jsonld"
OUT_SOURCES = ROOT / "broker-config" / "context" / "sources.json"
CORE_VERSION = "1.6"  # Orion-LD's default core context (-coreContext v1.6), 1.4 up to 1.12.0
CORE_URL = f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v{CORE_VERSION}.jsonld"
OUT_CORE = ROOT / "broker-config" / "orion-ld" / "ldcontexts" / CORE_URL.rsplit("/", 1)[1]

#: Types of adapters under development (environment: water level, PM, weather, warnings; buildings);
#: their terms must be in the context before the first entity of them reaches the broker.
PLANNED_TYPES = ("AirQualityObserved", "Alert", "Building", "WaterObserved", "WeatherObserved")


#: Attributes of our own, where no Smart Data Model has one (see the adapter READMEs). Their IRIs live in
#: the project's namespace, never in smartdatamodels.org, so nobody mistakes them for official terms.
PROJECT_VOCABULARY = "https://dos-adapters.example/terms/"
PROJECT_TERMS = ("waterLevelState", "waterLevelTrend")


class BuildError(Exception):
    pass


def emitted_types() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from adapters.core.adapter import discover_adapters

    types = {t for adapter in discover_adapters().values() for t in adapter.entity_types()}
    return sorted(types | set(PLANNED_TYPES))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _provenance(sdm: Path) -> dict[str, tuple[str, str]]:
    """Type -> (subject repository, commit) from PROVENANCE.txt."""
    found = {}
    for line in (sdm / "PROVENANCE.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("dataModel."):
            found[parts[1]] = (parts[0], parts[2])
    return found


def _expand(value: Any, prefixes: dict[str, str]) -> Any:
    """A term definition with compact IRIs (``ngsi-ld:x``) expanded against ``prefixes``."""
    if isinstance(value, str):
        head, sep, tail = value.partition(":")
        if sep and head in prefixes and not tail.startswith("//"):
            return prefixes[head] + tail
        return value
    if isinstance(value, dict):
        return {k: _expand(v, prefixes) if k in ("@id", "@type") else v for k, v in value.items()}
    return value


def load_core(sdm: Path) -> dict[str, Any]:
    versions = json.loads((sdm / "_common" / "ngsi-ld-core-context.jsonld").read_text(encoding="utf-8"))
    return dict(versions[CORE_VERSION])


def core_terms(core: dict[str, Any]) -> dict[str, Any]:
    prefixes = {k: v for k, v in core.items() if isinstance(v, str) and v.endswith(("/", "#"))}
    return {k: _expand(v, prefixes) for k, v in core.items()}


def iri_of(definition: Any) -> str:
    return definition["@id"] if isinstance(definition, dict) else str(definition)


def build(sdm: Path, types: list[str]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Return (context document, sources document, core context file text)."""
    provenance = _provenance(sdm)
    core = load_core(sdm)
    core_expanded = core_terms(core)
    subject_terms: dict[str, dict[str, Any]] = {}
    type_subject: dict[str, str] = {}
    sources = []
    for entity_type in types:
        path = sdm / entity_type / "context.jsonld"
        if not path.is_file():
            raise BuildError(f"{path}: missing; copy the official context of {entity_type} into ../shared/sdm")
        if entity_type not in provenance:
            raise BuildError(f"{entity_type}: not listed in {sdm / 'PROVENANCE.txt'}")
        subject, commit = provenance[entity_type]
        terms = json.loads(path.read_text(encoding="utf-8"))["@context"]
        if subject in subject_terms and subject_terms[subject] != terms:
            raise BuildError(f"{entity_type}: its {subject} context differs from another type's copy of it")
        subject_terms[subject] = terms
        type_subject[entity_type] = subject
        sources.append(
            {
                "type": entity_type,
                "subject": subject,
                "commit": commit,
                "source": f"../shared/sdm/{entity_type}/context.jsonld",
                "sha256": _sha256(path),
                "iri": iri_of(terms.get(entity_type, "")),
            }
        )
        if entity_type not in terms:
            raise BuildError(f"{entity_type}: its subject context does not define the type itself")

    dropped: dict[str, str] = {}
    per_term: dict[str, dict[str, Any]] = defaultdict(dict)  # term -> subject -> definition
    for subject, terms in sorted(subject_terms.items()):
        for term, definition in terms.items():
            if term in core_expanded:
                if iri_of(definition) != iri_of(core_expanded[term]):
                    raise BuildError(
                        f"{subject}: term {term!r} -> {iri_of(definition)} collides with the NGSI-LD core "
                        f"context ({iri_of(core_expanded[term])})"
                    )
                dropped[term] = iri_of(definition)
                continue
            if term.startswith("@"):
                raise BuildError(f"{subject}: keyword {term!r} in a subject context is not supported")
            per_term[term][subject] = definition

    # How many of our types use each subject: the top-level winner of a disputed term.
    weight = Counter(type_subject.values())
    top: dict[str, Any] = {}
    disputed: dict[str, Any] = {}
    for term in sorted(per_term):
        by_subject = per_term[term]
        definitions = {json.dumps(d, sort_keys=True) for d in by_subject.values()}
        winner = sorted(by_subject, key=lambda s: (-weight[s], s))[0]
        top[term] = by_subject[winner]
        if len(definitions) > 1:
            disputed[term] = {
                "top_level": {"subject": winner, "iri": iri_of(by_subject[winner])},
                "others": {s: iri_of(d) for s, d in sorted(by_subject.items()) if s != winner},
            }

    scoped: dict[str, dict[str, Any]] = {}
    for entity_type, subject in sorted(type_subject.items()):
        own = {
            term: definition
            for term, definition in subject_terms[subject].items()
            if term in top and top[term] != definition
        }
        if own:
            scoped[entity_type] = dict(sorted(own.items()))
    for entity_type, own in scoped.items():
        top[entity_type] = {"@id": iri_of(top[entity_type]), "@context": own}
    for term in PROJECT_TERMS:
        if term in top or term in core_expanded:
            raise BuildError(f"project term {term!r} is defined by a Smart Data Model or the core: use that one")
        top[term] = PROJECT_VOCABULARY + term

    context = {"@context": top}
    sources_doc = {
        "generated_by": "scripts/build_context.py",
        "note": "Rebuild with `.venv/bin/python scripts/build_context.py`; CI runs it with --check.",
        "core_context": {
            "url": CORE_URL,
            "source": f"../shared/sdm/_common/ngsi-ld-core-context.jsonld, key {CORE_VERSION!r}",
            "provenance": "smart-data-models/data-models "
            + next(
                (
                    line.split()[-1]
                    for line in (sdm / "PROVENANCE.txt").read_text(encoding="utf-8").splitlines()
                    if "ngsi-ld-core-context" in line
                ),
                "?",
            ),
            "file": str(OUT_CORE.relative_to(ROOT)),
        },
        "types": sources,
        "dropped_core_terms": dict(sorted(dropped.items())),
        "disputed_terms": disputed,
        "type_scoped_terms": {t: sorted(own) for t, own in scoped.items()},
        "project_terms": {term: PROJECT_VOCABULARY + term for term in PROJECT_TERMS},
    }
    core_file = CORE_URL + "\n" + json.dumps({"@context": core}, indent=2, ensure_ascii=False) + "\n"
    return context, sources_doc, core_file


def render(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdm", type=Path, default=DEFAULT_SDM, help="folder of the SDM copies (../shared/sdm)")
    parser.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    args = parser.parse_args(argv)
    if not (args.sdm / "PROVENANCE.txt").is_file():
        print(f"error: {args.sdm}/PROVENANCE.txt not found; pass --sdm", file=sys.stderr)
        return 2
    try:
        context, sources, core_file = build(args.sdm, emitted_types())
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    outputs = {OUT_CONTEXT: render(context), OUT_SOURCES: render(sources), OUT_CORE: core_file}
    if args.check:
        stale = [p for p, text in outputs.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}; run scripts/build_context.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    print(
        f"{len(sources['types'])} types, {len(context['@context'])} terms, "
        f"{len(sources['disputed_terms'])} disputed, {len(sources['type_scoped_terms'])} types with scoped terms, "
        f"{len(sources['dropped_core_terms'])} core terms dropped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

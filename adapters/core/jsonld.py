"""The JSON-LD check: every attribute expands to the Smart Data Models IRI of its type's subject.

The entities are expanded with pyld under the @context the adapters send (the merged
``broker-config/context/dos-adapters.jsonld``, served as ``http://context-server/dos-adapters.jsonld``,
then the NGSI-LD core context the broker applies). The document loader serves only these two local
files and refuses every other URL: the check never touches the network.

What is a problem (``expansion_problems``):

* the type does not expand to the IRI ``broker-config/context/sources.json`` lists for it;
* an attribute the context does not define (JSON-LD drops it, or it falls into the NGSI-LD default
  vocabulary, where nobody knows what it means);
* an attribute outside smartdatamodels.org, the NGSI-LD core and the project's own terms;
* a *disputed* term (``temperature`` is Environment, Weather, Device and WasteManagement) expanding
  to another subject's IRI than the entity type's own;
* a project term expanding anywhere but its declared IRI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pyld import jsonld

from adapters.core.entities import Entity

__all__ = [
    "DOS_CONTEXT_URL",
    "ContextRefused",
    "JsonLdUnavailable",
    "expand",
    "expansion_problems",
    "local_document_loader",
    "sent_context",
]

DOS_CONTEXT_URL = "http://context-server/dos-adapters.jsonld"
SDM_PREFIX = "https://smartdatamodels.org/"
CORE_PREFIX = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCABULARY = "https://uri.etsi.org/ngsi-ld/default-context/"
_PROBE_VALUE = {"type": "Property", "value": 0}


class ContextRefused(Exception):
    """The loader was asked for a document it does not hold locally; nothing is fetched."""


class JsonLdUnavailable(Exception):
    """The local contexts cannot be read (a broken install or checkout)."""


def _broker_config() -> Traversable:
    """``broker-config/`` beside the package in a checkout, else the copy installed as adapters.broker_config."""
    checkout = Path(__file__).resolve().parents[2] / "broker-config"
    if checkout.joinpath("context").joinpath("sources.json").is_file():
        return checkout
    installed = resources.files("adapters.broker_config")
    if installed.joinpath("context").joinpath("sources.json").is_file():
        return installed
    raise JsonLdUnavailable(f"{checkout}/context/sources.json not found, and the installed package has no copy")


@dataclass(frozen=True)
class _Vocabulary:
    documents: Mapping[str, Any]
    """URL -> parsed JSON-LD document, the only ones the loader serves."""
    core_url: str
    type_iris: Mapping[str, str]
    subjects: Mapping[str, str]
    disputed: Mapping[str, Mapping[str, str]]
    """term -> subject -> IRI, for the terms whose subjects disagree."""
    project_terms: Mapping[str, str]
    core_terms: Mapping[str, str]
    """Terms of the NGSI-LD core context outside its namespace (``description`` is Dublin Core)."""


def _read_context(path: Traversable) -> Any:
    text = path.read_text(encoding="utf-8")
    if not text.lstrip().startswith("{"):
        text = text.split("\n", 1)[1]  # Orion-LD's -coreContextDir format: the URL on the first line
    return json.loads(text)


@cache
def _vocabulary() -> _Vocabulary:
    folder = _broker_config()
    sources = json.loads(folder.joinpath("context").joinpath("sources.json").read_text(encoding="utf-8"))
    core = sources["core_context"]
    documents = {
        DOS_CONTEXT_URL: _read_context(folder.joinpath("context").joinpath("dos-adapters.jsonld")),
        # sources.json names the file from the checkout's root: broker-config/orion-ld/...
        core["url"]: _read_context(folder.joinpath("/".join(Path(core["file"]).parts[1:]))),
    }
    disputed: dict[str, dict[str, str]] = {}
    for term, rule in sources["disputed_terms"].items():
        disputed[term] = {rule["top_level"]["subject"]: rule["top_level"]["iri"], **rule["others"]}
    return _Vocabulary(
        documents=documents,
        core_url=core["url"],
        type_iris={row["type"]: row["iri"] for row in sources["types"]},
        subjects={row["type"]: row["subject"] for row in sources["types"]},
        disputed=disputed,
        project_terms=dict(sources["project_terms"]),
        core_terms=dict(sources["dropped_core_terms"]),
    )


def sent_context() -> list[str]:
    """The @context an entity is read under: ours, then the core context the broker applies last."""
    return [DOS_CONTEXT_URL, _vocabulary().core_url]


def local_document_loader(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A pyld document loader that knows only the project's local contexts."""
    documents = _vocabulary().documents
    if url not in documents:
        raise ContextRefused(f"refusing to load {url}: only the local contexts {sorted(documents)} are served")
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": documents[url]}


def expand(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """pyld expansion with the local loader; raises jsonld.JsonLdError (network never used)."""
    expanded: list[dict[str, Any]] = jsonld.expand(dict(document), {"documentLoader": local_document_loader})
    return expanded


@cache
def _term_iri(context: str, entity_type: str, name: str) -> str | None:
    """What ``name`` expands to in an entity of ``entity_type`` (type-scoped contexts apply), or None.

    ``context`` is the JSON text of the @context list (hashable, for the cache)."""
    node = expand({"@context": json.loads(context), "type": entity_type, name: _PROBE_VALUE})
    keys = [key for key in (node[0] if node else {}) if not key.startswith("@")]
    return keys[0] if keys else None


def _attribute_problem(vocabulary: _Vocabulary, entity_type: str, name: str, iri: str | None) -> str | None:
    if iri is None:
        return f"{name}: not defined in the @context (a JSON-LD processor drops it)"
    if iri.startswith(DEFAULT_VOCABULARY):
        return f"{name}: not defined in the @context (falls into the NGSI-LD default vocabulary: {iri})"
    if name in vocabulary.project_terms:
        wanted = vocabulary.project_terms[name]
        return None if iri == wanted else f"{name}: expands to {iri}, not the project term {wanted}"
    if name in vocabulary.disputed:
        subject = vocabulary.subjects.get(entity_type, "")
        own = vocabulary.disputed[name].get(subject)
        if own is not None and iri != own:
            return f"{name}: expands to {iri}, not to {own} of the type's subject {subject}"
    if not (iri.startswith(SDM_PREFIX) or iri.startswith(CORE_PREFIX) or vocabulary.core_terms.get(name) == iri):
        return f"{name}: expands to {iri}, neither a Smart Data Models nor an NGSI-LD core IRI"
    return None


def _reason(error: BaseException) -> str:
    """pyld's own message is generic; a refused context says which URL and why."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ContextRefused):
            return str(cause)
        cause = cause.__cause__
    return str(error.args[0]) if error.args else repr(error)


def expansion_problems(entity: Entity, context: Sequence[str | Mapping[str, Any]] | None = None) -> list[str]:
    """Every reason ``entity`` does not expand to the Smart Data Models IRIs; empty when it does.

    ``context`` (URLs the loader serves, or inline contexts) defaults to ``sent_context()``; an
    ``@context`` inside the entity is ignored, since the adapters send the context in the Link header.
    """
    try:
        vocabulary = _vocabulary()
    except (OSError, ValueError, KeyError) as error:
        raise JsonLdUnavailable(f"cannot read the local contexts: {error}") from error
    scope = list(context) if context is not None else sent_context()
    scope_key = json.dumps(scope, sort_keys=True)
    entity_type = entity.get("type")
    if not isinstance(entity_type, str):
        return ["entity has no type"]
    document = {name: value for name, value in entity.items() if name != "@context"}
    try:
        expanded = expand({"@context": scope, **document})
        names = [name for name in document if name not in ("id", "type")]
        iris = {name: _term_iri(scope_key, entity_type, name) for name in names}
    except jsonld.JsonLdError as error:
        return [f"JSON-LD expansion failed: {_reason(error)}"]
    problems = []
    node = expanded[0] if expanded else {}
    wanted_type = vocabulary.type_iris.get(entity_type)
    if wanted_type is None:
        problems.append(f"type {entity_type}: not in broker-config/context/sources.json (no Smart Data Models subject)")
    elif node.get("@type") != [wanted_type]:
        problems.append(f"type {entity_type}: expands to {node.get('@type')}, not {wanted_type}")
    seen: dict[str, str] = {}
    for name, iri in iris.items():
        problem = _attribute_problem(vocabulary, entity_type, name, iri)
        if problem:
            problems.append(problem)
            continue
        assert iri is not None
        if iri in seen:
            problems.append(f"{name}: expands to {iri} like {seen[iri]}")
        elif iri not in node:
            problems.append(f"{name}: missing from the expanded entity ({iri})")
        seen[iri] = name
    return problems

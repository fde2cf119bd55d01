"""``dos-adapters catalog``: the open datasets of the platform as DCAT-AP.de, for German open-data portals.

One ``dcat:Dataset`` per adapter source whose ``Adapter.governance`` says ``access="open"``; its
distributions are the NGSI-LD queries of the entity types the source emits. A source marked
``internal``, or without governance metadata, is never exported: asking for it explicitly is an error
(``CatalogRefused``), not a silent omission.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from adapters.core.adapter import Adapter, Governance, SourceKind, discover_adapters

__all__ = ["CATALOG_CONTEXT", "CatalogRefused", "Dataset", "build_catalog", "catalog", "datasets"]

FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
CATALOG_CONTEXT: dict[str, Any] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "dcatde": "http://dcat-ap.de/def/dcatde/",
    "foaf": "http://xmlns.com/foaf/0.1/",
}


class CatalogRefused(Exception):
    """A dataset was asked for that must not (or cannot) be published."""


@dataclass(frozen=True)
class Dataset:
    adapter: type[Adapter]
    source: SourceKind
    governance: Governance

    @property
    def name(self) -> str:
        return f"{self.adapter.name}/{self.source.name}"

    @property
    def tenant(self) -> str:
        return self.governance.tenant or self.adapter.default_tenant


def datasets(adapters: Mapping[str, type[Adapter]], only: Sequence[str] = ()) -> tuple[list[Dataset], list[str]]:
    """The open datasets (all, or those named ``adapter`` or ``adapter/source`` in ``only``) and notes
    on the sources left out. Raises CatalogRefused when ``only`` names an internal or unknown one."""
    chosen: list[Dataset] = []
    notes: list[str] = []
    wanted = set(only)
    matched: set[str] = set()
    for adapter in adapters.values():
        for source in adapter.sources:
            name = f"{adapter.name}/{source.name}"
            asked = {adapter.name, name} & wanted
            if wanted and not asked:
                continue
            matched |= asked
            governance = adapter.governance.get(source.name)
            if governance is None or governance.access != "open":
                why = "no governance metadata" if governance is None else "marked internal"
                if asked:
                    raise CatalogRefused(f"{name}: {why}; it is never published in the catalogue")
                notes.append(f"{name}: not published ({why})")
                continue
            chosen.append(Dataset(adapter, source, governance))
    unknown = sorted(wanted - matched)
    if unknown:
        raise CatalogRefused(f"unknown dataset(s): {', '.join(unknown)}; use ADAPTER or ADAPTER/SOURCE")
    return chosen, notes


def _agent(name: str, uri: str | None) -> dict[str, Any]:
    agent: dict[str, Any] = {"@type": "foaf:Agent", "foaf:name": name}
    if uri:
        agent["@id"] = uri
    return agent


def _dataset_node(dataset: Dataset, *, base_uri: str, broker_url: str) -> dict[str, Any]:
    governance = dataset.governance
    source = dataset.source
    identifier = f"{dataset.tenant}/{dataset.adapter.name}/{source.name}"
    distributions = [
        {
            "@id": f"{base_uri}/datasets/{identifier}/{entity_type}",
            "@type": "dcat:Distribution",
            "dct:title": f"{entity_type} (NGSI-LD, tenant {dataset.tenant})",
            "dct:description": (
                f"NGSI-LD API; send the header NGSILD-Tenant: {dataset.tenant}. Entities of the Smart Data "
                f"Model {entity_type}."
            ),
            "dcat:accessURL": {"@id": f"{broker_url}/ngsi-ld/v1/entities?type={quote(entity_type)}"},
            "dct:format": "application/ld+json",
            "dct:license": {"@id": governance.licence},
            "dcatde:licenseAttributionByText": governance.attribution,
        }
        for entity_type in source.entity_types
    ]
    return {
        "@id": f"{base_uri}/datasets/{identifier}",
        "@type": "dcat:Dataset",
        "dct:identifier": identifier,
        "dct:title": f"{dataset.adapter.title} ({source.name})",
        "dct:description": source.description,
        "dct:publisher": _agent(governance.publisher, governance.publisher_uri),
        "dct:license": {"@id": governance.licence},
        "dcatde:licenseAttributionByText": governance.attribution,
        "dct:accrualPeriodicity": {"@id": f"{FREQUENCY}{governance.update_frequency}"},
        "dcat:keyword": list(source.entity_types),
        "dcat:distribution": distributions,
    }


def build_catalog(
    chosen: Iterable[Dataset],
    *,
    base_uri: str,
    broker_url: str,
    title: str = "dos-adapters open data",
    publisher: str = "Stadt Dortmund",
) -> dict[str, Any]:
    """The catalogue as a JSON-LD document (inline @context: nothing to fetch to read it)."""
    nodes = []
    for dataset in chosen:
        if dataset.governance.access != "open":  # a second lock behind datasets()
            raise CatalogRefused(f"{dataset.name}: marked internal; it is never published in the catalogue")
        nodes.append(_dataset_node(dataset, base_uri=base_uri.rstrip("/"), broker_url=broker_url.rstrip("/")))
    return {
        "@context": CATALOG_CONTEXT,
        "@id": f"{base_uri.rstrip('/')}/catalog",
        "@type": "dcat:Catalog",
        "dct:title": title,
        "dct:description": "Open datasets of the FIWARE platform, as Smart Data Models over NGSI-LD.",
        "dct:publisher": _agent(publisher, None),
        "dcat:dataset": nodes,
    }


@click.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonld"]),
    default="jsonld",
    show_default=True,
    help="JSON-LD (DCAT-AP.de); portals that harvest RDF/XML can convert it with any RDF tool.",
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.option(
    "--dataset",
    "only",
    multiple=True,
    help="Only this dataset, ADAPTER or ADAPTER/SOURCE (repeatable). An internal one is refused (exit 2).",
)
@click.option(
    "--broker-url",
    envvar="DOS_CATALOG_BROKER_URL",
    default="http://localhost:1026",
    show_default=True,
    help="Public base URL of the NGSI-LD API, for the distributions' access URLs.",
)
@click.option(
    "--base-uri",
    envvar="DOS_CATALOG_BASE_URI",
    default="https://dos-adapters.example",
    show_default=True,
    help="Base of the catalogue's and datasets' URIs.",
)
def catalog(output_format: str, output: Path | None, only: tuple[str, ...], broker_url: str, base_uri: str) -> None:
    """Export the open datasets as a DCAT-AP.de catalogue; internal datasets are never published."""
    try:
        chosen, notes = datasets(discover_adapters(), only)
    except CatalogRefused as error:
        click.echo(f"catalog: {error}", err=True)
        sys.exit(2)
    document = build_catalog(chosen, base_uri=base_uri, broker_url=broker_url)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for note in notes:
        click.echo(note, err=True)
    click.echo(f"{len(chosen)} open dataset(s) in the catalogue", err=True)

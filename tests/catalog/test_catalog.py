"""dos-adapters catalog: valid JSON-LD (read back with pyld), every open dataset with licence and
publisher, and never an internal one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from adapters.core.adapter import Adapter, Governance, discover_adapters
from adapters.core.jsonld import expand
from adapters.platform.catalog import CatalogRefused, Dataset, build_catalog, catalog, datasets

DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
DCATDE = "http://dcat-ap.de/def/dcatde/"
FOAF = "http://xmlns.com/foaf/0.1/"
ADAPTERS = discover_adapters()
OPEN = {
    f"{a.name}/{s.name}": a.governance[s.name]
    for a in ADAPTERS.values()
    for s in a.sources
    if s.name in a.governance and a.governance[s.name].access == "open"
}
INTERNAL = {
    f"{a.name}/{s.name}"
    for a in ADAPTERS.values()
    for s in a.sources
    if s.name not in a.governance or a.governance[s.name].access != "open"
}


def _run(*args: str) -> Any:
    return CliRunner().invoke(catalog, list(args))


def _datasets(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Expanded with pyld (the loader refuses every remote document): identifier -> dataset node."""
    expanded = expand(document)
    assert len(expanded) == 1
    assert expanded[0]["@type"] == [f"{DCAT}Catalog"]
    nodes = expanded[0].get(f"{DCAT}dataset", [])
    return {node[f"{DCT}identifier"][0]["@value"]: node for node in nodes}


def test_every_adapter_source_declares_governance() -> None:
    for adapter in ADAPTERS.values():
        assert set(adapter.governance) == {source.name for source in adapter.sources}, adapter.name


def test_catalogue_lists_every_open_dataset_with_licence_and_publisher(tmp_path: Path) -> None:
    out = tmp_path / "catalog.jsonld"
    result = _run("--output", str(out))
    assert result.exit_code == 0, result.output
    nodes = _datasets(json.loads(out.read_text(encoding="utf-8")))
    by_name = {identifier.split("/", 1)[1]: node for identifier, node in nodes.items()}
    assert set(by_name) == set(OPEN)
    assert len(OPEN) >= 5
    for name, governance in OPEN.items():
        node = by_name[name]
        assert node["@type"] == [f"{DCAT}Dataset"]
        assert node[f"{DCT}license"] == [{"@id": governance.licence}]
        assert governance.licence.startswith("http://dcat-ap.de/def/licenses/")
        assert node[f"{DCATDE}licenseAttributionByText"] == [{"@value": governance.attribution}]
        publisher = node[f"{DCT}publisher"][0]
        assert publisher[f"{FOAF}name"] == [{"@value": governance.publisher}]
        frequency = node[f"{DCT}accrualPeriodicity"][0]["@id"]
        assert frequency == f"http://publications.europa.eu/resource/authority/frequency/{governance.update_frequency}"
        for distribution in node[f"{DCAT}distribution"]:
            assert distribution[f"{DCAT}accessURL"][0]["@id"].startswith(
                "http://localhost:1026/ngsi-ld/v1/entities?type="
            )


def test_licences_from_the_sources() -> None:
    zero = "http://dcat-ap.de/def/licenses/dl-zero-de/2.0"
    assert OPEN["parking/dortmund-parkhaeuser"].licence == zero
    assert OPEN["waste/edg-containers"].licence == zero
    assert OPEN["waterlevel/pegelonline"].licence == zero
    assert OPEN["airquality/sensor-community"].licence == "http://dcat-ap.de/def/licenses/odbl"
    assert OPEN["weather/brightsky"].licence == "http://dcat-ap.de/def/licenses/cc-by/4.0"


def test_internal_datasets_never_appear() -> None:
    assert {"buildings/building-meters", "lorawan/chirpstack-v4"} <= INTERNAL
    result = _run()
    assert result.exit_code == 0
    text = result.stdout
    for name in INTERNAL:
        assert f"/{name}" not in text
        assert f"{name}: not published (marked internal)" in result.stderr


@pytest.mark.parametrize("asked", ["buildings", "buildings/building-meters", "lorawan/tts-v3", "lorawan"])
def test_asking_for_an_internal_dataset_is_refused(asked: str, tmp_path: Path) -> None:
    out = tmp_path / "catalog.jsonld"
    result = _run("--dataset", "parking", "--dataset", asked, "--output", str(out))
    assert result.exit_code == 2
    assert "marked internal; it is never published" in result.stderr
    assert result.stdout == ""
    assert not out.exists()


def test_unknown_dataset_is_refused() -> None:
    result = _run("--dataset", "parking/nope")
    assert result.exit_code == 2
    assert "unknown dataset(s): parking/nope" in result.stderr


def test_one_open_dataset_on_request() -> None:
    result = _run("--dataset", "weather", "--broker-url", "https://ngsi.dortmund.example/")
    assert result.exit_code == 0
    nodes = _datasets(json.loads(result.stdout))
    assert list(nodes) == ["dortmund/weather/brightsky"]
    distribution = nodes["dortmund/weather/brightsky"][f"{DCAT}distribution"][0]
    assert distribution[f"{DCAT}accessURL"] == [
        {"@id": "https://ngsi.dortmund.example/ngsi-ld/v1/entities?type=WeatherObserved"}
    ]


class _SecretAdapter(Adapter):
    name = "secret"
    title = "A partner's internal source"
    sources = ADAPTERS["parking"].sources
    default_tenant = "schwerte"
    governance: ClassVar[dict[str, Governance]] = {
        "dortmund-parkhaeuser": Governance(
            publisher="Stadt Schwerte",
            licence="http://dcat-ap.de/def/licenses/other-closed",
            attribution="Stadt Schwerte",
            update_frequency="DAILY",
            personal_data="aggregated",
            access="internal",
        )
    }


def test_an_internal_dataset_cannot_be_built_into_a_catalogue() -> None:
    chosen, notes = datasets({"secret": _SecretAdapter})
    assert chosen == []
    assert notes == ["secret/dortmund-parkhaeuser: not published (marked internal)"]
    with pytest.raises(CatalogRefused):
        datasets({"secret": _SecretAdapter}, ["secret"])
    source = _SecretAdapter.sources[0]
    with pytest.raises(CatalogRefused):
        build_catalog(
            [Dataset(_SecretAdapter, source, _SecretAdapter.governance[source.name])],
            base_uri="https://x.example",
            broker_url="http://localhost:1026",
        )

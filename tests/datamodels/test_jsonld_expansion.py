"""The JSON-LD check (adapters/core/jsonld.py) over every adapter's recorded output, and its traps."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pyld import jsonld as pyld_jsonld

from adapters.cli import main
from adapters.core.jsonld import (
    DOS_CONTEXT_URL,
    ContextRefused,
    expand,
    expansion_problems,
    local_document_loader,
    sent_context,
)

ROOT = Path(__file__).resolve().parents[2]
CASE_OUTPUTS = sorted(ROOT.glob("adapters/*/cases/*/expected.ndjson"))
WEATHER = "https://smartdatamodels.org/dataModel.Weather/"
ENVIRONMENT = "https://smartdatamodels.org/dataModel.Environment/"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the JSON-LD check must not open a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _entities(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _example(entity_type: str) -> dict[str, Any]:
    path = ROOT / "datamodels" / entity_type / "examples" / "example-normalized.jsonld"
    entity: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return entity


def test_every_adapter_has_recorded_output() -> None:
    adapters = {path.parts[-4] for path in CASE_OUTPUTS}
    assert adapters >= {"airquality", "buildings", "lorawan", "parking", "waste", "waterlevel", "weather"}


@pytest.mark.parametrize("path", CASE_OUTPUTS, ids=lambda p: f"{p.parts[-4]}/{p.parts[-2]}")
def test_recorded_output_expands_to_smart_data_models_iris(path: Path) -> None:
    problems = {entity["id"]: expansion_problems(entity) for entity in _entities(path)}
    assert {k: v for k, v in problems.items() if v} == {}


def test_disputed_term_expands_to_the_types_own_subject() -> None:
    weather = _example("WeatherObserved")
    node = expand({"@context": sent_context(), **{k: v for k, v in weather.items() if k != "@context"}})[0]
    assert f"{WEATHER}temperature" in node
    assert f"{ENVIRONMENT}temperature" not in node
    air = _example("AirQualityObserved")
    node = expand({"@context": sent_context(), **{k: v for k, v in air.items() if k != "@context"}})[0]
    assert f"{ENVIRONMENT}temperature" in node


def test_the_temperature_trap_is_caught() -> None:
    """Read like Orion-LD does (only the top-level @id of a term): Weather terms become Environment ones."""
    without_scope = [DOS_CONTEXT_URL, {"WeatherObserved": f"{WEATHER}WeatherObserved"}, sent_context()[1]]
    problems = expansion_problems(_example("WeatherObserved"), without_scope)
    assert f"temperature: expands to {ENVIRONMENT}temperature, not to {WEATHER}temperature" in "\n".join(problems)


def test_undefined_and_foreign_attributes_are_problems() -> None:
    entity = _example("WaterObserved")
    entity["fooLevel"] = {"type": "Property", "value": 1.0}
    entity["http://example.org/level"] = {"type": "Property", "value": 1.0}
    problems = expansion_problems(entity)
    assert len(problems) == 2
    assert problems[0].startswith("fooLevel: not defined in the @context")
    assert "neither a Smart Data Models nor an NGSI-LD core IRI" in problems[1]


def test_project_terms_and_wrong_type_iri() -> None:
    entity = _example("WaterObserved")
    assert expansion_problems(entity) == []  # waterLevelState / waterLevelTrend are project terms
    renamed = [DOS_CONTEXT_URL, {"WaterObserved": "https://example.org/WaterObserved"}, sent_context()[1]]
    assert expansion_problems(entity, renamed) == [
        "type WaterObserved: expands to ['https://example.org/WaterObserved'], "
        "not https://smartdatamodels.org/dataModel.Environment/WaterObserved"
    ]


def test_loader_serves_only_the_local_contexts() -> None:
    for url in sent_context():
        assert local_document_loader(url)["document"]["@context"]
    with pytest.raises(ContextRefused):
        local_document_loader("https://smartdatamodels.org/context.jsonld")
    with pytest.raises(pyld_jsonld.JsonLdError):
        expand({"@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld", "name": "x"})
    problems = expansion_problems(_example("Building"), ["https://example.org/context.jsonld"])
    assert problems == [
        "JSON-LD expansion failed: refusing to load https://example.org/context.jsonld: only the local contexts "
        f"{sorted(sent_context())} are served"
    ]


def test_cli_validate_jsonld(tmp_path: Path) -> None:
    good = tmp_path / "good.ndjson"
    good.write_text("".join(path.read_text(encoding="utf-8") for path in CASE_OUTPUTS), encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", "--jsonld", str(good)])
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.ndjson"
    entity = _example("Building")
    entity.pop("@context")
    entity["http://example.org/floors"] = {"type": "Property", "value": 3}
    bad.write_text(json.dumps(entity) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", "--jsonld", str(bad)])
    assert result.exit_code == 1
    assert "JSON-LD: http://example.org/floors: expands to http://example.org/floors" in result.output
    assert CliRunner().invoke(main, ["validate", str(good)]).exit_code == 0

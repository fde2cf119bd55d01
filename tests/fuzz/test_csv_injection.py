"""Formula text from sources stays data: verbatim in NGSI-LD, inert in the CSV we write for spreadsheets.

Inventory names, EDG streets and registry names reach entities as given (they are data, and the
strict broker double, like Orion-LD, takes any string value). Where the project writes CSV for people
(``query --format csv``, ``history --format csv``) a cell that starts like a formula gets a leading
``'`` (OWASP), so Excel or LibreOffice shows it instead of running it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fuzz_support import broker_refusals

from adapters.buildings import BuildingsAdapter
from adapters.core.adapter import NormalizeContext
from adapters.core.entities import Entity
from adapters.core.normalize import normalize_payload
from adapters.platform.history import Series, render_csv
from adapters.platform.query import render
from adapters.platform.spreadsheet import spreadsheet_safe
from adapters.testing.cases import adapter_settings
from adapters.testing.fuzz import FORMULAS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The inventory tidies whitespace in names ("\t=1+1" arrives as "=1+1"); the rest is kept as given.
TIDIED = [" ".join(formula.split()) for formula in FORMULAS]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_becomes_text(formula: str) -> None:
    assert spreadsheet_safe(formula) == "'" + formula


@pytest.mark.parametrize("plain", ["-3.5", "+49", "7.46,51.51", "-7.46,51.51", "1e-3", "Rathaus", "", "'quoted", "a=b"])
def test_numbers_and_ordinary_text_are_left_alone(plain: str) -> None:
    assert spreadsheet_safe(plain) == plain


def _buildings_named(names: list[str]) -> list[Entity]:
    """Building entities from the recorded inventory, renamed, through the real normaliser."""
    source = BuildingsAdapter.source("buildings")
    document = json.loads(BuildingsAdapter.sample_payload(source))
    features = [dict(document["features"][0], properties=dict(document["features"][0]["properties"])) for _ in names]
    for number, (feature, name) in enumerate(zip(features, names, strict=True)):
        feature["properties"].update(gebaeude_id=f"formula-{number}", bezeichnung=name)
    document["features"] = features
    settings = adapter_settings(BuildingsAdapter, {"source": "buildings"})
    resources = BuildingsAdapter.open_resources(settings, base_dir=Path(), persistent=False)
    try:
        context = NormalizeContext(tenant="dortmund", settings=settings, resources=resources)
        result = normalize_payload(source, json.dumps(document).encode(), context, origin="payload")
    finally:
        resources.close()
    assert result.rejections == []
    return result.entities


def test_formula_names_reach_the_broker_verbatim_as_data() -> None:
    entities = _buildings_named(list(FORMULAS))
    assert [entity["name"]["value"] for entity in entities] == TIDIED
    assert broker_refusals(entities) == []


def test_query_csv_shows_formula_names_as_text() -> None:
    entities = _buildings_named(list(FORMULAS))
    rows = list(csv.reader(io.StringIO(render(entities, ["name", "category"], "csv"))))
    assert rows[0] == ["id", "name", "category"]
    assert [row[1] for row in rows[1:]] == ["'" + formula for formula in TIDIED]
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]


def test_history_csv_shows_formula_values_as_text_and_keeps_numbers() -> None:
    series = Series("urn:ngsi-ld:Building:dortmund:x", "name", index=["2024-11-05T08:00:00Z"] * 3)
    series.values = ["=1+1", -3.5, "@SUM(1+1)"]
    rows = list(csv.reader(io.StringIO(render_csv(series))))
    assert rows == [
        ["time", "name"],
        ["2024-11-05T08:00:00Z", "'=1+1"],
        ["2024-11-05T08:00:00Z", "-3.5"],
        [
            "2024-11-05T08:00:00Z",
            "'@SUM(1+1)",
        ],
    ]

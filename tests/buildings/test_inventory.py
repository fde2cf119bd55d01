"""The building inventory: categories, addresses, numbers, CSV and GeoJSON reading, the recorded sample."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from adapters.buildings import BuildingsAdapter
from adapters.buildings.categories import SDM_CATEGORIES, UnknownCategory, categories_of
from adapters.buildings.inventory import SOURCE, parse_payload
from adapters.buildings.tables import TableError, decode_text, fold_key, parse_number, read_csv
from adapters.core.adapter import NormalizeContext, PayloadError
from adapters.core.normalize import NormalizeResult, normalize_payload
from adapters.core.validation import entity_problems
from adapters.testing.cases import adapter_settings

OFFICIAL_CATEGORY_ENUM = 63  # dataModel.Building Building/schema.json 0.0.3: category items enum


def normalise(payload: bytes, **settings: Any) -> NormalizeResult:
    merged = adapter_settings(BuildingsAdapter, {"source": SOURCE.name, **settings})
    resources = BuildingsAdapter.open_resources(merged, base_dir=Path("."), persistent=False)
    return normalize_payload(SOURCE, payload, NormalizeContext(tenant="dortmund", settings=merged, resources=resources))


# ------------------------------------------------------------------------------------ categories


@pytest.mark.parametrize(
    ("use", "expected"),
    [
        ("Grundschule", ["school"]),
        ("Städt. Gymnasium", ["school"]),
        ("Gesamtschule", ["school"]),
        ("Berufskolleg", ["school"]),
        ("Kita", ["kindergarten"]),
        ("Kindertageseinrichtung", ["kindergarten"]),
        ("Familienzentrum", ["kindergarten"]),
        ("Feuerwache", ["public"]),
        ("FW-Gerätehaus", ["public"]),
        ("Rathaus", ["public", "office"]),
        ("Bürgeramt", ["public"]),
        ("Verwaltungsgebäude", ["office"]),
        ("Schulverwaltung", ["office"]),
        ("Volkshochschule", ["school"]),
        ("Fachhochschule", ["university"]),
        ("Sporthalle", ["civic"]),
        ("Hallenbad", ["civic"]),
        ("Stadt- und Landesbibliothek", ["civic"]),
        ("Jugendfreizeitstätte", ["civic"]),
        ("Tiefgarage", ["parking"]),
        ("Betriebshof", ["industrial"]),
        ("Trauerhalle", ["chapel"]),
        ("school", ["school"]),
        ("office, civic", ["office", "civic"]),
    ],
)
def test_german_uses_map_to_sdm_categories(use: str, expected: list[str]) -> None:
    assert categories_of(use) == expected
    assert set(expected) <= set(SDM_CATEGORIES)


def test_settings_map_first_and_unknown_uses_name_the_setting() -> None:
    assert categories_of("Tierheim", {"tierheim": ["civic"]}) == ["civic"]
    assert categories_of("Grundschule", {"Grundschule": ["school", "civic"]}) == ["school", "civic"]
    with pytest.raises(UnknownCategory, match=r"\[adapters.buildings.categories\]"):
        categories_of("Schutzhütte")


def test_the_category_enum_is_the_official_one() -> None:
    assert len(SDM_CATEGORIES) == len(set(SDM_CATEGORIES)) == OFFICIAL_CATEGORY_ENUM


# --------------------------------------------------------------------------------- tables, numbers


@pytest.mark.parametrize(
    ("text", "decimal_comma", "expected"),
    [
        ("12345,6", True, 12345.6),
        ("12.345,6", True, 12345.6),
        ("393571.79", True, 393571.79),
        ("12,345.6", False, 12345.6),
        ("1.234.567", True, 1234567.0),
        ("1 234,5", True, 1234.5),
        ("-5", True, -5.0),
        (3, True, 3.0),
    ],
)
def test_numbers_as_german_and_other_exports_write_them(text: object, decimal_comma: bool, expected: float) -> None:
    assert parse_number(text, decimal_comma=decimal_comma) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["zwölf", "", "1,2,3", "1.2.3", "nan", True, float("inf"), "12,5"])
def test_not_numbers(text: object) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_number(text, decimal_comma=False)


def test_csv_delimiter_and_windows_1252() -> None:
    payload = "Gebäude-ID;Straße\r\n1;Königswall\r\n".encode("cp1252")
    table = read_csv(decode_text(payload))
    assert table.delimiter == ";" and table.decimal_comma
    assert table.rows == ((2, {"Gebäude-ID": "1", "Straße": "Königswall"}),)
    assert fold_key("Gebäude-ID") == fold_key("GEBAEUDE_ID") == "gebaeudeid"


@pytest.mark.parametrize("text", ["", "\n\n", "just one column\nvalue\n", "a;a\n1;2\n"])
def test_unreadable_tables(text: str) -> None:
    with pytest.raises(TableError):
        read_csv(text)


def test_unreadable_payloads_fail_as_a_whole() -> None:
    with pytest.raises(PayloadError, match="FeatureCollection"):
        parse_payload(b'{"type": "Topology"}')
    with pytest.raises(PayloadError, match="crs member"):
        parse_payload(
            b'{"type": "FeatureCollection", "features": [], "crs": {"type": "name", "properties": {"name": "x"}}}'
        )
    with pytest.raises(PayloadError, match="neither GeoJSON nor a readable CSV"):
        parse_payload(b"nothing here")


# ------------------------------------------------------------------------------------- records


def feature(properties: dict[str, Any], coordinates: Any = None) -> dict[str, Any]:
    ring = coordinates or [
        [7.4659, 51.5115],
        [7.4667, 51.5115],
        [7.4667, 51.5119],
        [7.4659, 51.5119],
        [7.4659, 51.5115],
    ]
    return {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


BASE = {"gebaeude_id": "b1", "bezeichnung": "Rathaus", "nutzung": "Rathaus", "ort": "Dortmund"}


@pytest.mark.parametrize(
    ("properties", "address"),
    [
        (
            {"strasse": "Friedensplatz", "hausnummer": "1", "plz": "44135"},
            {"streetAddress": "Friedensplatz 1", "streetNr": "1", "postalCode": "44135"},
        ),
        (
            {"strasse": "Kleyer Weg", "hausnummer": 25, "hausnummerzusatz": "a"},
            {"streetAddress": "Kleyer Weg 25a", "streetNr": "25a"},
        ),
        (
            {"strasse": "Hansastraße", "hausnummer": "2", "zusatz": "- 4"},
            {"streetAddress": "Hansastraße 2-4", "streetNr": "2-4"},
        ),
        (
            {"adresse": "Hermannstraße 76 - 78, 44263 Dortmund"},
            {"streetAddress": "Hermannstraße 76-78", "streetNr": "76-78", "postalCode": "44263"},
        ),
        ({"adresse": "Am Gerätehaus 3a"}, {"streetAddress": "Am Gerätehaus 3a", "streetNr": "3a"}),
        ({"adresse": "Olpe"}, {"streetAddress": "Olpe"}),
        ({"strasse": "Kleyer Weg", "plz": 1067}, {"streetAddress": "Kleyer Weg", "postalCode": "01067"}),
        ({"strasse": "Kleyer Weg", "plz": 44149.0}, {"streetAddress": "Kleyer Weg", "postalCode": "44149"}),
    ],
)
def test_german_addresses(properties: dict[str, Any], address: dict[str, str]) -> None:
    result = normalise(collection(feature({**BASE, **properties})))
    assert result.rejections == []
    value = result.entities[0]["address"]["value"]
    assert {k: v for k, v in value.items() if k not in ("addressLocality", "addressCountry")} == address
    assert value["addressLocality"] == "Dortmund" and value["addressCountry"] == "DE"


def test_ort_with_postcode_and_locality_from_the_settings() -> None:
    with_postcode = normalise(collection(feature({**BASE, "ort": "44135 Dortmund"})))
    assert with_postcode.entities[0]["address"]["value"]["postalCode"] == "44135"
    without_ort = normalise(collection(feature({k: v for k, v in BASE.items() if k != "ort"})), locality="Schwerte")
    assert without_ort.entities[0]["address"]["value"]["addressLocality"] == "Schwerte"


def test_field_names_from_the_settings() -> None:
    properties = {"GEB_NR": "4711/01", "TEXT": "Rathaus Dortmund", "ART": "Rathaus", "ort": "Dortmund", "id": "gis-17"}
    result = normalise(collection(feature(properties)), fields={"id": "GEB_NR", "name": "TEXT", "category": "ART"})
    assert result.rejections == []
    assert result.entities[0]["id"] == "urn:ngsi-ld:Building:dortmund:4711-01"
    assert result.entities[0]["name"]["value"] == "Rathaus Dortmund"


def test_owner_and_floors() -> None:
    result = normalise(
        collection(
            feature({**BASE, "eigentuemer": "Stadt Dortmund", "geschosse": "4,0", "untergeschosse": 1}),
            feature(
                {**BASE, "gebaeude_id": "b2", "eigentuemer": "urn:ngsi-ld:Organization:dortmund:immobilienwirtschaft"}
            ),
        )
    )
    first, second = result.entities
    assert first["owner"]["value"] == ["urn:ngsi-ld:Organization:dortmund:Stadt-Dortmund"]
    assert first["floorsAboveGround"]["value"] == 4 and first["floorsBelowGround"]["value"] == 1
    assert second["owner"]["value"] == ["urn:ngsi-ld:Organization:dortmund:immobilienwirtschaft"]


def test_repairs_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    bow_tie = [[7.4659, 51.5115], [7.4667, 51.5119], [7.4667, 51.5115], [7.4659, 51.5119], [7.4659, 51.5115]]
    with caplog.at_level(logging.INFO, logger="dos_adapters.buildings"):
        result = normalise(collection(feature(BASE, bow_tie)))
    assert result.entities[0]["location"]["value"]["type"] == "MultiPolygon"
    assert "building b1: footprint repaired: self-intersection repaired" in caplog.text


def test_recorded_sample_conforms_and_rejects_only_the_shelter() -> None:
    result = normalise(BuildingsAdapter.sample_payload(SOURCE))
    assert len(result.entities) == 7
    assert all(entity_problems(e) == [] for e in result.entities)
    assert [r.reason for r in result.rejections] == [
        "geometry: the footprint's area is 0.49 m², below min_area_m2 1: degenerate"
    ]
    by_id = {e["id"].rsplit(":", 1)[1]: e for e in result.entities}
    assert by_id["gymnasium-an-der-schweizer-allee"]["category"]["value"] == ["school"]
    assert by_id["feuerwache-1"]["category"]["value"] == ["public"]
    assert by_id["kita-hoerde"]["category"]["value"] == ["kindergarten"]
    assert by_id["altes-stadthaus"]["category"]["value"] == ["office"]


def test_an_unknown_crs_setting_fails_the_poll_at_open() -> None:
    settings = adapter_settings(BuildingsAdapter, {"source": SOURCE.name, "crs": "EPSG:25833x"})
    with pytest.raises(ValueError, match=r"\[adapters.buildings\] crs: CRS 'EPSG:25833x' is unknown"):
        BuildingsAdapter.open_resources(settings, base_dir=Path("."), persistent=False)

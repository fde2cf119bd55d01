"""Source kind edg-containers: both payload shapes, the mapping, skipping, rejections, stable ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.core.adapter import NormalizeContext, PayloadError, RecordRejected
from adapters.core.normalize import normalize_payload
from adapters.core.validation import entity_problems
from adapters.waste import WasteAdapter
from adapters.waste.edg_containers import (
    DATASET_URL,
    SOURCE,
    EdgRecord,
    local_id_of,
    normalize_record,
    parse_payload,
    waste_kind_of,
)

CONTEXT = NormalizeContext(tenant="dortmund", settings={"category": ["ground"], "data_provider": "EDG"})
HOURS = "Mo-Fr 07:00-12:00,13:00-19:00; Sa 07:00-15:00; Dez 24 geschlossen; Dez 31 geschlossen; Feiertage geschlossen"


def record(titel: str = "Depotcontainer Glas", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "titel": titel,
        "adresse": "Mergelteichstr. 47",
        "ort": "Dortmund",
        "offnungszeiten": None,
        "geografische_koordinaten": {"lon": 7.46472, "lat": 51.47224},
    }
    return {**base, **overrides}


def payload(records: Any) -> bytes:
    return json.dumps(records, ensure_ascii=False).encode("utf-8")


def run(records: Any, context: NormalizeContext = CONTEXT) -> tuple[list[dict[str, Any]], list[str]]:
    result = normalize_payload(SOURCE, payload(records), context)
    return result.entities, [r.reason for r in result.rejections]


# -- parsing -----------------------------------------------------------------------------------


def test_export_array_and_records_response_give_the_same_records() -> None:
    records = [record(), record("Depotcontainer Papier")]
    exported = parse_payload(payload(records))
    explored = parse_payload(payload({"total_count": 2, "results": records}))
    assert [dict(r) for r in exported] == [dict(r) for r in explored] == records


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"<html>maintenance</html>", "not JSON"),
        (b'{"error_code": "ODSQLError"}', "records response"),
        (b'"Depotcontainer"', "records response"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_unreadable_payloads(body: bytes, needle: str) -> None:
    with pytest.raises(PayloadError, match=needle):
        parse_payload(body)


def test_records_stay_as_received() -> None:
    """The dead-letter file shows the record exactly as the portal sent it."""
    parsed = parse_payload(payload([record(), record()]))
    assert json.loads(json.dumps(parsed)) == [record(), record()]


def test_the_recorded_sample_parses() -> None:
    records = parse_payload(WasteAdapter.sample_payload(SOURCE))
    assert len(records) == 26
    assert all(set(r) == {"titel", "adresse", "ort", "offnungszeiten", "geografische_koordinaten"} for r in records)


# -- mapping -----------------------------------------------------------------------------------


def test_a_glass_container_maps_to_a_conforming_waste_container() -> None:
    (entity,) = normalize_record(record(), CONTEXT)
    assert entity == {
        "id": "urn:ngsi-ld:WasteContainer:dortmund:edg-glass-N51.47224-E7.46472",
        "type": "WasteContainer",
        "name": {"type": "Property", "value": "Depotcontainer Glas, Mergelteichstr. 47"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.46472, 51.47224]}},
        "storedWasteKind": {"type": "Property", "value": "glass"},
        "category": {"type": "Property", "value": ["ground"]},
        "address": {
            "type": "Property",
            "value": {"streetAddress": "Mergelteichstr. 47", "addressLocality": "Dortmund", "addressCountry": "DE"},
        },
        "dataProvider": {"type": "Property", "value": "EDG"},
        "source": {"type": "Property", "value": DATASET_URL},
    }
    assert entity_problems(entity) == []


def test_no_fill_level_and_no_status_from_open_data() -> None:
    """Static sites must not overwrite what the sensors say (and they have other ids anyway)."""
    (entity,) = normalize_record(record(), CONTEXT)
    assert not {"fillingLevel", "status", "refDevice", "temperature"} & set(entity)


@pytest.mark.parametrize(
    ("titel", "kind"),
    [
        ("Depotcontainer Glas", "glass"),
        ("Depotcontainer Altglas", "glass"),
        ("DEPOTCONTAINER GLAS", "glass"),
        ("Depotcontainer Papier", "paper"),
        ("Depotcontainer Altpapier", "paper"),
        ("depotcontainer papier", "paper"),
    ],
)
def test_fraction_spellings(titel: str, kind: str) -> None:
    assert waste_kind_of(titel) == kind
    (entity,) = normalize_record(record(titel), CONTEXT)
    assert entity["storedWasteKind"]["value"] == kind
    assert entity["id"].split(":")[-1].startswith(f"edg-{kind}-")


def test_postcode_in_ort_becomes_postal_code() -> None:
    (entity,) = normalize_record(record(ort="44309 Dortmund"), CONTEXT)
    assert entity["address"]["value"] == {
        "streetAddress": "Mergelteichstr. 47",
        "postalCode": "44309",
        "addressLocality": "Dortmund",
        "addressCountry": "DE",
    }


def test_without_address_fields_nothing_empty_is_sent() -> None:
    (entity,) = normalize_record(record(adresse=None, ort=""), CONTEXT)
    assert "address" not in entity
    assert entity["name"]["value"] == "Depotcontainer Glas"
    assert entity_problems(entity) == []


def test_whitespace_is_tidied() -> None:
    (entity,) = normalize_record(record(" Depotcontainer   Papier ", adresse="  Ostwall  18 "), CONTEXT)
    assert entity["name"]["value"] == "Depotcontainer Papier, Ostwall 18"


def test_settings_defaults_when_absent() -> None:
    (entity,) = normalize_record(record(), NormalizeContext(tenant="dortmund"))
    assert entity["category"]["value"] == ["ground"]
    assert entity["dataProvider"]["value"] == "EDG Entsorgung Dortmund GmbH"


def test_empty_category_setting_leaves_the_attribute_out() -> None:
    (entity,) = normalize_record(record(), NormalizeContext(tenant="dortmund", settings={"category": []}))
    assert "category" not in entity


# -- skipping and rejecting --------------------------------------------------------------------


@pytest.mark.parametrize(
    "titel",
    [
        "Recyclinghof Hacheney",
        "Recyclingzentrum Dortmund",
        "Wertstoffzentrum - Pottgießerstraße",
        "Deponie Dortmund Nordost",
        "RECYCLINGHOF WAMBEL",
    ],
)
def test_facilities_are_skipped_without_dead_letter(titel: str) -> None:
    facility = record(titel, ort="44265 Dortmund", offnungszeiten=HOURS)
    assert normalize_record(facility, CONTEXT) == []
    entities, rejections = run([facility])
    assert entities == [] and rejections == []


MISSING = object()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"titel": "Depotcontainer Altkleider"}, "unknown container fraction"),
        ({"titel": "Depotcontainer Glas und Papier"}, "names more than one fraction"),
        ({"titel": "Schadstoffmobil"}, "neither a Depotcontainer nor a known facility"),
        ({"titel": None}, "record has no titel"),
        ({"titel": " "}, "record has no titel"),
        ({"geografische_koordinaten": None}, "no coordinates"),
        ({"geografische_koordinaten": MISSING}, "no coordinates"),
        ({"geografische_koordinaten": {"lat": 51.5}}, "lon or lat missing"),
        ({"geografische_koordinaten": {"lon": "x", "lat": 51.5}}, "not numbers"),
        ({"geografische_koordinaten": {"lon": True, "lat": 51.5}}, "not numbers"),
        ({"geografische_koordinaten": {"lon": 7.4, "lat": 97.5}}, "not a WGS84 position"),
        ({"geografische_koordinaten": {"lon": float("nan"), "lat": 51.5}}, "not a WGS84 position"),
    ],
)
def test_rejections_name_the_reason(changes: dict[str, Any], reason: str) -> None:
    broken = {key: value for key, value in record(**changes).items() if value is not MISSING}
    with pytest.raises(RecordRejected, match=reason):
        normalize_record(broken, CONTEXT)


def test_a_bad_record_does_not_stop_the_others() -> None:
    entities, rejections = run([record("Depotcontainer Altkleider"), "Depotcontainer", record()])
    assert [e["storedWasteKind"]["value"] for e in entities] == ["glass"]
    assert len(rejections) == 2
    assert "record is str" in rejections[1]


# -- ids and duplicates ------------------------------------------------------------------------


def test_ids_are_stable_and_deterministic() -> None:
    first = normalize_record(record(), CONTEXT)
    again = normalize_record(json.loads(json.dumps(record())), CONTEXT)
    assert first == again
    # what is no key does not move the id: spelling of the address, title variant, hours
    other_text = record("Depotcontainer Altglas", adresse="Mergelteichstraße 47", offnungszeiten="Mo-Sa 7-20")
    assert local_id_of(other_text) == local_id_of(record()) == "edg-glass-N51.47224-E7.46472"


def test_id_rounds_to_five_decimals_and_names_the_hemispheres() -> None:
    assert local_id_of(record(geografische_koordinaten={"lon": 7.464718, "lat": 51.472243})) == (
        "edg-glass-N51.47224-E7.46472"
    )
    assert local_id_of(record(geografische_koordinaten={"lon": -0.1, "lat": -33.5})) == "edg-glass-S33.50000-W0.10000"
    assert local_id_of(record("Recyclinghof Hacheney")) is None


def test_glass_and_paper_at_one_point_are_two_entities() -> None:
    entities, rejections = run([record(), record("Depotcontainer Papier")])
    assert rejections == []
    assert [e["id"].split(":")[-1] for e in entities] == [
        "edg-glass-N51.47224-E7.46472",
        "edg-paper-N51.47224-E7.46472",
    ]


def test_tenant_is_part_of_the_id() -> None:
    (entity,) = normalize_record(record(), NormalizeContext(tenant="schwerte"))
    assert entity["id"] == "urn:ngsi-ld:WasteContainer:schwerte:edg-glass-N51.47224-E7.46472"


def test_a_verbatim_repeat_is_folded_into_one_entity() -> None:
    entities, rejections = run([record(), record(), record()])
    assert len(entities) == 1 and rejections == []


def test_another_record_on_a_taken_id_is_rejected_naming_the_first() -> None:
    entities, rejections = run([record("Depotcontainer Papier"), record(), record(adresse="Mergelteichstr. 49")])
    assert [e["name"]["value"] for e in entities] == [
        "Depotcontainer Papier, Mergelteichstr. 47",
        "Depotcontainer Glas, Mergelteichstr. 47",
    ]
    (reason,) = rejections
    assert "record 2" in reason and "edg-glass-N51.47224-E7.46472" in reason


def test_duplicates_are_found_in_the_records_response_too() -> None:
    entities, rejections = run({"total_count": 2, "results": [record(), record(ort="44265 Dortmund")]})
    assert len(entities) == 1 and len(rejections) == 1


def test_parse_marks_only_later_records() -> None:
    first, second, _facility, facility_again = parse_payload(
        payload([record(), record(), record("Recyclinghof Hacheney"), record("Recyclinghof Hacheney")])
    )
    assert isinstance(second, EdgRecord) and second.duplicate_of == 1 and second.identical
    assert isinstance(first, EdgRecord) and first.duplicate_of is None
    assert isinstance(facility_again, EdgRecord) and facility_again.duplicate_of is None  # facilities have no id


def test_the_recorded_sample_gives_conforming_unique_entities() -> None:
    result = normalize_payload(SOURCE, WasteAdapter.sample_payload(SOURCE), CONTEXT)
    assert result.records == 26
    assert len(result.entities) == 18
    assert all(entity_problems(e) == [] for e in result.entities)
    assert len({e["id"] for e in result.entities}) == 18
    reasons = [r.reason for r in result.rejections]
    assert len(reasons) == 3
    assert "unknown container fraction" in reasons[0]
    assert "no coordinates" in reasons[1]
    assert "same fraction at the same position" in reasons[2]
    assert {e["storedWasteKind"]["value"] for e in result.entities} == {"glass", "paper"}

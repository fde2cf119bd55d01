"""Tests for adapters.core.lorawan.registry: the recorded Dortmund/Schwerte registry, and every
rule with the ``file:line: column 'value': rule`` message an operator would see."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from adapters.core.lorawan.decoders import MODELS
from adapters.core.lorawan.registry import (
    COLUMNS,
    KIND_COLUMNS,
    KIND_MODELS,
    KINDS,
    REQUIRED_COLUMNS,
    WASTE_KINDS,
    Device,
    DeviceRegistry,
    RegistryError,
)
from adapters.core.lorawan.uplinks import PARSERS, UplinkError, read_ndjson_uplinks

FIXTURES = Path(__file__).parent / "fixtures"
HEADER = list(COLUMNS)

# One valid row per kind; tests change single cells.
GOOD: dict[str, dict[str, str]] = {
    "waste": {
        "dev_eui": "24E124136B502217",
        "model": "milesight-em310-udl",
        "kind": "waste",
        "entity_id": "bin-1",
        "tenant": "dortmund",
        "name": "Bin 1",
        "lon": "7.46528",
        "lat": "51.51386",
        "empty_distance_mm": "2400",
        "full_distance_mm": "400",
        "waste_kind": "glass",
    },
    "parking": {
        "dev_eui": "FCD6BD0000011A01",
        "model": "bosch-tps110",
        "kind": "parking",
        "entity_id": "space-1",
        "tenant": "dortmund",
        "name": "Space 1",
        "lon": "7.46163",
        "lat": "51.51472",
        "parking_site": "hansastrasse",
        "category": "onStreet",
    },
    "indoor": {
        "dev_eui": "A81758FFFE0465B1",
        "model": "elsys-ers-co2",
        "kind": "indoor",
        "entity_id": "room-114",
        "tenant": "dortmund",
        "name": "Room 114",
        "building_id": "school",
        "room": "114",
    },
    "water": {
        "dev_eui": "70B3D57BA00012E7",
        "model": "decentlab-dl-mbx",
        "kind": "water",
        "entity_id": "ruhr",
        "tenant": "schwerte",
        "name": "Ruhr",
        "lon": "7.56648",
        "lat": "51.44306",
        "empty_distance_mm": "4200",
        "alert_level_m": "2.5",
        "danger_level_m": "3.2",
    },
    "soil": {
        "dev_eui": "A840414A91825EB3",
        "model": "dragino-lse01",
        "kind": "soil",
        "entity_id": "tree",
        "tenant": "schwerte",
        "name": "Tree",
    },
}


def row(base: str, /, **changes: str) -> dict[str, str]:
    return {**GOOD[base], **changes}


def write_csv(tmp_path: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> Path:
    """Header on line 1, rows from line 2."""
    columns = header or HEADER
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "devices.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(RegistryError) as caught:
        DeviceRegistry.from_csv(path)
    return caught.value.problems


def only_problem(tmp_path: Path, rows: list[dict[str, str]]) -> str:
    problems = problems_of(write_csv(tmp_path, rows))
    assert len(problems) == 1, problems
    return problems[0]


# --------------------------------------------------------------------------------------------
# The recorded registry


def test_recorded_registry() -> None:
    registry = DeviceRegistry.from_csv(FIXTURES / "devices.csv")
    assert len(registry) == 9
    assert [device.kind for device in registry] == ["waste"] * 2 + ["parking"] * 3 + ["indoor"] * 2 + ["water", "soil"]

    bin_ = registry.get("24e124136b502217")
    assert bin_ == Device(
        dev_eui="24E124136B502217",
        model="milesight-em310-udl",
        kind="waste",
        entity_id="glascontainer-alter-markt-1",
        tenant="dortmund",
        name="Glascontainer Alter Markt",
        lon=7.46528,
        lat=51.51386,
        params={"empty_distance_mm": 2400, "full_distance_mm": 400, "waste_kind": "glass"},
        extra={"installed": "2023-04-12"},
    )
    assert type(bin_.params["empty_distance_mm"]) is int

    paper = registry.get("70B3D57BA00011C4")  # written lowercase in the file
    assert paper is not None and paper.dev_eui == "70B3D57BA00011C4"

    spaces = [device for device in registry if device.kind == "parking"]
    assert [s.params["parking_site"] for s in spaces] == ["hansastrasse", "hansastrasse", None]
    assert spaces[0].name == "Hansastraße Stellplatz 1"
    assert {s.params["category"] for s in spaces} == {"onStreet"}

    room = registry.get("A81758FFFE0465B1")
    assert room is not None
    assert room.name == "Gymnasium an der Schweizer Allee, Raum 114"  # quoted comma
    assert (room.lon, room.lat) == (None, None)
    assert room.params == {"building_id": "gymnasium-an-der-schweizer-allee", "room": "114"}

    water = registry.get("70b3d57ba00012e7")
    assert water is not None
    assert water.params == {"empty_distance_mm": 4200, "alert_level_m": 2.5, "danger_level_m": 3.2}
    assert type(water.params["alert_level_m"]) is float

    tree = registry.get("A840414A91825EB3")
    assert tree is not None
    assert tree.tenant == "schwerte"  # "Schwerte" in the file: tenants are lowercased
    assert tree.params == {}

    assert registry.get("0000000000000000") is None
    assert registry.get(" fcd6bd0000011a03 ") is not None
    assert "FCD6BD0000011A03".lower() in registry
    assert registry.get(12345) is None  # type: ignore[arg-type]


def test_recorded_registry_matches_the_recorded_uplinks() -> None:
    """Every uplink fixture's DevEUI is registered, so end-to-end tests can use them together."""
    registry = DeviceRegistry.from_csv(FIXTURES / "devices.csv")
    heard: set[str] = set()
    for path in sorted([*FIXTURES.glob("*.json"), *FIXTURES.glob("*.ndjson")]):
        parse = PARSERS["tts-v3" if path.name.startswith("tts-v3") else "chirpstack-v4"]
        documents = (
            [json.loads(path.read_bytes())] if path.suffix == ".json" else read_ndjson_uplinks(path.read_bytes())
        )
        for document in documents:
            try:
                heard.add(parse(document).dev_eui)
            except UplinkError:
                continue  # the join-accept, status event and cut-off lines
    assert heard == {device.dev_eui for device in registry}


def test_model_table_is_consistent_with_the_decoders() -> None:
    assert set(KINDS) == set(KIND_COLUMNS)
    for models in KIND_MODELS.values():
        assert models <= set(MODELS)
    assert {"glass", "paper", "organic", "plastic"} <= set(WASTE_KINDS)


def test_device_is_hashable_and_read_only() -> None:
    device = DeviceRegistry.from_rows([GOOD["soil"]], "test").get("A840414A91825EB3")
    assert device is not None
    hash(device)
    with pytest.raises(TypeError):
        device.params["x"] = 1  # type: ignore[index]


# --------------------------------------------------------------------------------------------
# One rule at a time


@pytest.mark.parametrize(
    ("kind", "changes", "expected"),
    [
        ("soil", {"dev_eui": "A840414A91825E"}, "devices.csv:2: dev_eui 'A840414A91825E': must be 16 hex digits"),
        ("soil", {"dev_eui": "A8-40-41-4A-91-82-5E-B3"}, "dev_eui 'A8-40-41-4A-91-82-5E-B3': must be 16 hex digits"),
        ("soil", {"dev_eui": ""}, "devices.csv:2: dev_eui: required"),
        ("soil", {"model": "dragino-lse02"}, "model 'dragino-lse02': unknown model (known: bosch-tps110, "),
        ("soil", {"kind": "air"}, "kind 'air': must be one of waste, parking, indoor, water, soil"),
        (
            "waste",
            {"model": "bosch-tps110"},
            "model 'bosch-tps110': does not measure kind waste "
            "(models for waste: decentlab-dl-mbx, milesight-em310-udl)",
        ),
        ("soil", {"entity_id": "Linde am Markt"}, "entity_id 'Linde am Markt': must be letters, digits, '.', '_', "),
        ("soil", {"entity_id": "urn:ngsi-ld:x"}, "entity_id 'urn:ngsi-ld:x': must be letters"),
        ("soil", {"tenant": "stadt dortmund"}, "tenant 'stadt dortmund': must be 1-50 characters"),
        ("soil", {"tenant": "x" * 51}, "must be 1-50 characters"),
        ("soil", {"name": ""}, "devices.csv:2: name: required"),
        ("soil", {"lon": "7.5"}, "devices.csv:2: lat: lon and lat go together: give both or neither"),
        ("soil", {"lat": "51.4"}, "devices.csv:2: lon: lon and lat go together: give both or neither"),
        (
            "soil",
            {"lon": "7,56", "lat": "51.44"},
            "lon '7,56': must be decimal degrees with a '.' decimal point (WGS84)",
        ),
        ("soil", {"lon": "nan", "lat": "51.44"}, "lon 'nan': must be decimal degrees"),
        ("soil", {"lon": "7.5", "lat": "91"}, "lat '91': must be within -90..90 degrees"),
        ("soil", {"lon": "-180.5", "lat": "51"}, "lon '-180.5': must be within -180..180 degrees"),
        ("waste", {"lon": "", "lat": ""}, "devices.csv:2: lon: lon and lat are required for kind waste"),
        ("parking", {"lon": "", "lat": ""}, "lon and lat are required for kind parking"),
        ("water", {"lon": "", "lat": ""}, "lon and lat are required for kind water"),
        ("waste", {"empty_distance_mm": ""}, "devices.csv:2: empty_distance_mm: required for kind waste"),
        ("waste", {"empty_distance_mm": "1.5"}, "empty_distance_mm '1.5': must be whole millimetres, 1..65535"),
        ("waste", {"empty_distance_mm": "70000"}, "empty_distance_mm '70000': must be whole millimetres"),
        ("waste", {"full_distance_mm": "0"}, "full_distance_mm '0': must be whole millimetres"),
        (
            "waste",
            {"full_distance_mm": "2400"},
            "full_distance_mm '2400': must be less than empty_distance_mm 2400 (the fill line is above the bottom)",
        ),
        ("waste", {"waste_kind": "glas"}, "waste_kind 'glas': must be one of organic, inorganic, glass, "),
        ("waste", {"waste_kind": ""}, "waste_kind: required for kind waste"),
        ("parking", {"category": "street"}, "category 'street': must be one of onStreet, offStreet"),
        ("parking", {"category": ""}, "category: required for kind parking"),
        ("parking", {"parking_site": "Hansa straße"}, "parking_site 'Hansa straße': must be letters"),
        ("indoor", {"building_id": "Schule Nord"}, "building_id 'Schule Nord': must be letters"),
        ("indoor", {"room": ""}, "room: required for kind indoor"),
        ("water", {"empty_distance_mm": ""}, "empty_distance_mm: required for kind water"),
        ("water", {"alert_level_m": "3.2"}, "alert_level_m '3.2': must be less than danger_level_m 3.2"),
        ("water", {"alert_level_m": "2,5"}, "alert_level_m '2,5': must be a decimal number of metres"),
        ("water", {"alert_level_m": "0"}, "alert_level_m '0': must be above 0 m"),
        (
            "water",
            {"alert_level_m": "", "danger_level_m": "4.5"},
            "danger_level_m '4.5': must be below 4.2 m, the highest level the sensor can report "
            "(empty_distance_mm 4200)",
        ),
        ("soil", {"waste_kind": "glass"}, "devices.csv:2: waste_kind 'glass': is not a column of kind soil"),
        ("indoor", {"alert_level_m": "2"}, "alert_level_m '2': is not a column of kind indoor (shifted row?)"),
    ],
)
def test_rule(tmp_path: Path, kind: str, changes: dict[str, str], expected: str) -> None:
    problem = only_problem(tmp_path, [row(kind, **changes)])
    assert problem.startswith(str(tmp_path / "devices.csv:2: "))
    assert expected.replace("devices.csv:2: ", "") in problem


@pytest.mark.parametrize(
    ("kind", "changes", "check"),
    [
        ("waste", {"waste_kind": "Glass", "kind": "WASTE", "model": "Milesight-EM310-UDL"}, ("waste_kind", "glass")),
        ("parking", {"category": "offstreet"}, ("category", "offStreet")),
        ("parking", {"parking_site": ""}, ("parking_site", None)),
        ("water", {"alert_level_m": "", "danger_level_m": ""}, ("alert_level_m", None)),
        ("water", {"alert_level_m": "", "danger_level_m": "4.1"}, ("danger_level_m", 4.1)),
        ("indoor", {"lon": "7.53342", "lat": "51.49103"}, ("room", "114")),
        ("waste", {"empty_distance_mm": " 2400 "}, ("empty_distance_mm", 2400)),
    ],
)
def test_accepted_variants(kind: str, changes: dict[str, str], check: tuple[str, object]) -> None:
    registry = DeviceRegistry.from_rows([row(kind, **changes)], "test")
    (device,) = registry
    key, value = check
    assert device.params[key] == value
    assert device.kind == kind and device.model == device.model.lower()


def test_duplicate_dev_eui_names_both_lines(tmp_path: Path) -> None:
    first = row("soil")
    second = row("soil", dev_eui=first["dev_eui"].lower(), entity_id="tree-2")
    problem = only_problem(tmp_path, [row("water"), first, second])
    assert problem == f"{tmp_path / 'devices.csv'}:4: dev_eui 'a840414a91825eb3': registered twice: also on line 3"


def test_duplicate_entity_in_tenant_and_kind(tmp_path: Path) -> None:
    other = row("soil", dev_eui="A840414A91825EB4")
    problem = only_problem(tmp_path, [row("soil"), other])
    assert problem.endswith(
        ":3: entity_id 'tree': tenant schwerte already has a soil device with this entity_id on line 2"
    )
    # the same entity_id is fine in another tenant, or for another kind
    other_tenant = row("soil", dev_eui="A840414A91825EB4", tenant="dortmund")
    other_kind = row("indoor", entity_id="tree", tenant="schwerte")
    assert len(DeviceRegistry.from_csv(write_csv(tmp_path, [row("soil"), other_tenant, other_kind]))) == 3


def test_all_problems_at_once_with_real_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    good = ",".join(GOOD["soil"].get(c, "") for c in HEADER)
    path.write_text(
        "# registry\n"  # 1
        + ",".join(HEADER)  # 2
        + "\n\n"  # 3 blank
        + good  # 4
        + "\n# comment, with a comma\n"  # 5
        + good.replace("A840414A91825EB3", "XYZ")  # 6
        + "\n"
        + good.replace("dragino-lse01", "bosch-tps110").replace("A840414A91825EB3", "A840414A91825EB5")  # 7
        + "\n"
        + good.replace("schwerte", "")  # 8: dev_eui repeats line 4 as well
        + "\n",
        encoding="utf-8",
    )
    problems = problems_of(path)
    where = str(path)
    assert problems == [
        f"{where}:6: dev_eui 'XYZ': must be 16 hex digits",
        f"{where}:7: model 'bosch-tps110': does not measure kind soil (models for soil: dragino-lse01)",
        f"{where}:8: tenant: required",
    ]
    message = str(RegistryError(problems))
    assert message.startswith("device registry: 3 problems:\n  ")
    assert all(problem in message for problem in problems)


def test_a_multi_line_quoted_value_keeps_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    good = row("soil", name="Tree\non two lines")
    bad = row("soil", dev_eui="nope", entity_id="t2")
    path.write_text("", encoding="utf-8")
    path = write_csv(tmp_path, [good, bad])
    assert problems_of(path) == [f"{path}:4: dev_eui 'nope': must be 16 hex digits"]


# --------------------------------------------------------------------------------------------
# File structure


def test_header_missing_required_columns(tmp_path: Path) -> None:
    header = [c for c in HEADER if c not in ("model", "tenant")]
    problems = problems_of(write_csv(tmp_path, [row("soil")], header))
    assert problems == [f"{tmp_path / 'devices.csv'}:1: header: missing required column(s) model, tenant"]


def test_header_repeated_and_unnamed_columns(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(",".join([*REQUIRED_COLUMNS, "lat", "lat", ""]) + "\n", encoding="utf-8")
    assert problems_of(path) == [
        f"{path}:1: header: column(s) lat appear more than once",
        f"{path}:1: header: column 9 has no name",
    ]


def test_minimal_header_and_extra_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [{**row("soil"), "owner": "Grünflächenamt"}], [*REQUIRED_COLUMNS, "owner"])
    (device,) = DeviceRegistry.from_csv(path)
    assert (device.lon, device.lat) == (None, None)
    assert device.extra == {"owner": "Grünflächenamt"}


def test_minimal_header_still_requires_positions_and_kind_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [row("waste")], list(REQUIRED_COLUMNS))
    where = f"{path}:2"
    assert problems_of(path) == [
        f"{where}: lon: lon and lat are required for kind waste",
        f"{where}: empty_distance_mm: required for kind waste",
        f"{where}: full_distance_mm: required for kind waste",
        f"{where}: waste_kind: required for kind waste",
    ]


def test_wrong_number_of_fields(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(",".join(REQUIRED_COLUMNS) + "\nA840414A91825EB3,dragino-lse01,soil,tree,schwerte\n")
    assert problems_of(path) == [f"{path}:2: 5 fields, the header has 6"]


def test_broken_quoting(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    good = "A840414A91825EB3,dragino-lse01,soil,tree,schwerte,Tree"
    path.write_text(",".join(REQUIRED_COLUMNS) + f'\n{good}\nA840414A91825EB4,dragino-lse01,soil,t2,x,"a"b\n')
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:3: not valid CSV (")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_bytes(",".join(REQUIRED_COLUMNS).encode() + b"\nA840414A91825EB3,dragino-lse01,soil,t,s,Stra\xdfe\n")
    assert problems_of(path) == [f"{path}:2: not UTF-8 (byte 0xdf)"]


def test_excel_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_bytes(
        b"\xef\xbb\xbf" + ",".join(REQUIRED_COLUMNS).encode() + b"\nA840414A91825EB3,dragino-lse01,soil,t,s,T\n"
    )
    assert len(DeviceRegistry.from_csv(path)) == 1


@pytest.mark.parametrize("content", ["", "# only a comment\n\n"])
def test_no_header(tmp_path: Path, content: str) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(content)
    assert problems_of(path) == [f"{path}: no header row (only comments or blank lines)"]


def test_header_only_is_an_empty_registry(tmp_path: Path) -> None:
    assert len(DeviceRegistry.from_csv(write_csv(tmp_path, []))) == 0


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert problems_of(path) == [f"{path}: cannot read: No such file or directory"]


# --------------------------------------------------------------------------------------------
# from_rows


def test_from_rows() -> None:
    registry = DeviceRegistry.from_rows([GOOD[kind] for kind in KINDS], "inline")
    assert len(registry) == 5
    assert [device.kind for device in registry] == list(KINDS)


def test_from_rows_problems_name_the_row() -> None:
    rows = [GOOD["soil"], {"dev_eui": "A840414A91825EB3"}, row("soil", dev_eui="a840414a91825eb3", entity_id="t")]
    with pytest.raises(RegistryError) as caught:
        DeviceRegistry.from_rows(rows, "config [lorawan.devices]")
    assert caught.value.problems == [
        "config [lorawan.devices] row 2: missing column(s) model, kind, entity_id, tenant, name",
        "config [lorawan.devices] row 3: dev_eui 'a840414a91825eb3': registered twice: also on row 1",
    ]


def test_from_rows_accepts_dictreader_output() -> None:
    text = ",".join(REQUIRED_COLUMNS) + "\nA840414A91825EB3,dragino-lse01,soil,t,s,T,surplus\n"
    with pytest.raises(RegistryError, match=r"origin row 1: more fields than columns"):
        DeviceRegistry.from_rows(csv.DictReader(io.StringIO(text)), "origin")

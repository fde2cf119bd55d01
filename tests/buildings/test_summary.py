"""``dos-adapters building show``: the summary (pure), the broker queries, the command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from adapters.buildings import BuildingsAdapter
from adapters.buildings.commands import building
from adapters.buildings.inventory import SOURCE as INVENTORY
from adapters.buildings.meters import SOURCE as METERS
from adapters.buildings.summary import SummaryError, building_urn, query_building, render, summarise
from adapters.core.adapter import NormalizeContext
from adapters.core.broker import BrokerClient
from adapters.core.normalize import normalize_payload
from adapters.testing import BrokerDouble
from adapters.testing.cases import adapter_settings

CONTEXT_URL = "http://context-server/dos-adapters.jsonld"
BERLIN = ZoneInfo("Europe/Berlin")
GYMNASIUM = "urn:ngsi-ld:Building:dortmund:gymnasium-an-der-schweizer-allee"


def sample_entities(source: Any) -> list[dict[str, Any]]:
    settings = adapter_settings(BuildingsAdapter, {"source": source.name})
    resources = BuildingsAdapter.open_resources(settings, base_dir=Path("."), persistent=False)
    try:
        context = NormalizeContext(tenant="dortmund", settings=settings, resources=resources)
        return normalize_payload(source, BuildingsAdapter.sample_payload(source), context).entities
    finally:
        resources.close()


def classroom(local: str, name: str, *, co2: float, temperature: float, humidity: float, at: str) -> dict[str, Any]:
    """An IndoorEnvironmentObserved as the LoRaWAN kind ``indoor`` writes it."""
    return {
        "id": f"urn:ngsi-ld:IndoorEnvironmentObserved:dortmund:{local}",
        "type": "IndoorEnvironmentObserved",
        "name": {"type": "Property", "value": name},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.53338, 51.49108]}},
        "dateObserved": {"type": "Property", "value": at},
        "co2": {"type": "Property", "value": co2, "observedAt": at, "unitCode": "59"},
        "airQualityLevel": {"type": "Property", "value": "ventilate" if co2 >= 1000 else "good", "observedAt": at},
        "temperature": {"type": "Property", "value": temperature, "observedAt": at, "unitCode": "CEL"},
        "relativeHumidity": {"type": "Property", "value": humidity, "observedAt": at, "unitCode": "C62"},
        "refPointOfInterest": {"type": "Relationship", "object": GYMNASIUM},
        "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:dortmund:A81758FFFE0465B1"},
    }


ROOMS = [
    classroom(
        "gsa-raum-209", "Raum 209 (Chemie)", co2=1480.0, temperature=22.9, humidity=0.47, at="2024-11-05T08:10:00Z"
    ),
    classroom("gsa-raum-114", "Raum 114", co2=776.0, temperature=22.6, humidity=0.41, at="2024-11-05T08:05:00Z"),
]
ELSEWHERE = {**classroom("kley-3a", "Klasse 3a", co2=900.0, temperature=21.0, humidity=0.5, at="2024-11-05T08:00:00Z")}
ELSEWHERE["refPointOfInterest"] = {"type": "Relationship", "object": "urn:ngsi-ld:Building:dortmund:grundschule-kley"}


@pytest.fixture(scope="module")
def entities() -> list[dict[str, Any]]:
    return [*sample_entities(INVENTORY), *sample_entities(METERS), *ROOMS, ELSEWHERE]


def test_building_ids() -> None:
    assert building_urn("gymnasium-an-der-schweizer-allee", "dortmund") == GYMNASIUM
    assert building_urn(GYMNASIUM, "dortmund") == GYMNASIUM
    with pytest.raises(SummaryError, match="pass --tenant dortmund"):
        building_urn(GYMNASIUM, "schwerte")
    with pytest.raises(SummaryError, match="not a Building id"):
        building_urn("urn:ngsi-ld:Device:dortmund:x", "dortmund")


def test_summary_of_the_school(entities: list[dict[str, Any]]) -> None:
    summary = summarise(entities, GYMNASIUM, BERLIN)
    assert summary.found and summary.name == "Gymnasium an der Schweizer Allee"
    assert summary.categories == ("school",)
    assert summary.address == "Schweizer Allee 18, 44287 Dortmund"
    assert [(r.name, r.co2, r.temperature) for r in summary.rooms] == [
        ("Raum 114", 776.0, 22.6),
        ("Raum 209 (Chemie)", 1480.0, 22.9),
    ]
    meters = {(m.point, m.medium): m for m in summary.meters}
    electricity = meters[("DO-GSA-STROM-01", "electricity")]
    assert (electricity.reading, electricity.reading_unit, electricity.serial) == (183258.5, "KWH", "1ESY1160512345")
    assert (electricity.day, electricity.consumption, electricity.consumption_unit) == ("2024-11-04", 216.0, "KWH")
    heat = meters[("DO-GSA-WAERME-01", "heat")]
    assert (heat.reading_unit, heat.consumption, heat.consumption_unit) == ("MWH", 795.0, "KWH")
    assert {(t.medium, t.day, t.consumption, t.unit) for t in summary.totals} == {
        ("electricity", "2024-11-04", 216.0, "KWH"),
        ("heat", "2024-11-04", 795.0, "KWH"),
        ("water", "2024-11-04", 5.7, "MTQ"),
    }


def test_table_and_json(entities: list[dict[str, Any]]) -> None:
    summary = summarise(entities, GYMNASIUM, BERLIN)
    table = render(summary, "table")
    lines = table.splitlines()
    assert lines[0] == "Gymnasium an der Schweizer Allee (school), Schweizer Allee 18, 44287 Dortmund"
    assert lines[1] == GYMNASIUM
    room = next(line for line in lines if line.startswith("Raum 209"))
    assert "1480 ppm" in room and "ventilate" in room and "22.9 °C" in room and "47 %" in room
    meter = next(line for line in lines if line.startswith("Strom Hauptzähler"))
    assert "183258.5 kWh" in meter and "2024-11-04" in meter and "216 kWh" in meter
    assert "1205.112 MWh" in table
    assert "heat on 2024-11-04: 795 kWh (1 meter(s))" in lines
    document = json.loads(render(summary, "json"))
    assert document["id"] == GYMNASIUM and len(document["rooms"]) == 2 and len(document["meters"]) == 3


def test_a_building_without_sensors_says_so(entities: list[dict[str, Any]]) -> None:
    table = render(summarise(entities, "urn:ngsi-ld:Building:dortmund:feuerwache-1", BERLIN), "table")
    assert "no room sensors linked" in table and "no meters linked" in table


def test_lagging_meters_are_left_out_of_the_total() -> None:
    from adapters.buildings.summary import MeterRow, _totals

    rows = [
        MeterRow("a", "A", "electricity", None, 1.0, "KWH", None, "2024-11-04", 10.0, "KWH"),
        MeterRow("b", "B", "electricity", None, 1.0, "KWH", None, "2024-11-03", 7.0, "KWH"),
        MeterRow("c", "C", "electricity", None, 1.0, "KWH", None, "2024-11-04", 5.0, "KWH"),
    ]
    (total,) = _totals(rows)
    assert (total.day, total.consumption, total.meters, total.lagging) == ("2024-11-04", 15.0, 2, 1)


# -- against the broker double -----------------------------------------------------------------


@pytest.fixture
def broker(entities: list[dict[str, Any]]) -> Iterator[BrokerDouble]:
    with BrokerDouble() as double:
        client = BrokerClient(double.url, context_url=CONTEXT_URL)
        try:
            result = client.upsert("dortmund", entities)
            assert not result.rejected and not result.pending
        finally:
            client.close()
        yield double


def test_the_broker_answers_with_ids_and_q_page_by_page(broker: BrokerDouble, entities: list[dict[str, Any]]) -> None:
    client = BrokerClient(broker.url, context_url=CONTEXT_URL)
    try:
        found = query_building(client, tenant="dortmund", building=GYMNASIUM, page_size=2)
    finally:
        client.close()
    assert summarise(found, GYMNASIUM, BERLIN) == summarise(entities, GYMNASIUM, BERLIN)
    gets = [r for r in broker.requests if r.method == "GET"]
    assert gets[0].query == {"id": GYMNASIUM, "type": "Building", "limit": "2", "offset": "0"}
    rooms = [r.query for r in gets if r.query.get("type") == "IndoorEnvironmentObserved"]
    assert [q["offset"] for q in rooms] == ["0", "2"]  # two rooms: a full page, then an empty one
    assert rooms[0]["q"] == f'refPointOfInterest=="{GYMNASIUM}"'
    meters = [r.query for r in gets if r.query.get("type") == "DeviceMeasurement"]
    assert meters[0]["q"] == f'refBuilding=="{GYMNASIUM}"'
    assert all(r.headers.get("NGSILD-Tenant") == "dortmund" and r.status == 200 for r in gets)


def test_unknown_tenant_is_an_error(broker: BrokerDouble) -> None:
    client = BrokerClient(broker.url, context_url=CONTEXT_URL)
    with closing(client), pytest.raises(SummaryError, match="tenant 'unna' does not exist"):
        query_building(client, tenant="unna", building=GYMNASIUM)


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"DOS_CONFIG": None, "DOS_BROKER_URL": None, "DOS_BROKER_CONTEXT": CONTEXT_URL}  # type: ignore[dict-item]


def test_show_from_a_file(tmp_path: Path, entities: list[dict[str, Any]], env: dict[str, str]) -> None:
    path = tmp_path / "entities.ndjson"
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entities), encoding="utf-8")
    result = CliRunner().invoke(
        building, ["show", "gymnasium-an-der-schweizer-allee", "--from-file", str(path)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "Raum 209 (Chemie)" in result.stdout and "Strom Hauptzähler" in result.stdout
    assert "2 room(s), 3 meter(s)" in result.stderr


def test_show_from_the_broker(broker: BrokerDouble, env: dict[str, str]) -> None:
    arguments = ["show", GYMNASIUM, "--format", "json"]
    result = CliRunner().invoke(building, arguments, env={**env, "DOS_BROKER_URL": broker.url})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "Gymnasium an der Schweizer Allee"


def test_show_says_when_nothing_is_known(broker: BrokerDouble, env: dict[str, str]) -> None:
    result = CliRunner().invoke(building, ["show", "no-such-building"], env={**env, "DOS_BROKER_URL": broker.url})
    assert result.exit_code == 1
    assert "nothing known about urn:ngsi-ld:Building:dortmund:no-such-building" in result.stderr
    unknown = CliRunner().invoke(building, ["show", "x", "--tenant", "unna"], env={**env, "DOS_BROKER_URL": broker.url})
    assert unknown.exit_code == 1 and "tenant 'unna' does not exist" in unknown.stderr


def test_show_without_broker_or_file_is_a_usage_error(env: dict[str, str]) -> None:
    result = CliRunner().invoke(building, ["show", "rathaus"], env=env)
    assert result.exit_code == 2 and "--from-file" in result.stderr

"""End to end into the broker double: inventory, meters and classroom sensors, and every link followed.

``dos-adapters run --once --offline`` replays the recorded samples of the buildings adapter (both
source kinds) and of the LoRaWAN adapter (both network servers) into the strict broker double, as
a deployment would. Then every ``refPointOfInterest`` (rooms) and ``refBuilding`` (meters) is
followed with ``GET /ngsi-ld/v1/entities/{id}`` to a Building, each room's position must lie in
that building's footprint, and ``building show`` reads the school back from the broker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from click.testing import CliRunner

from adapters.buildings.commands import building
from adapters.buildings.index import BuildingIndex
from adapters.cli import main
from adapters.testing import BrokerDouble

CONTEXT_URL = "http://context.test/ngsi-ld/dos-adapters.jsonld"
LINK = f'<{CONTEXT_URL}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
GYMNASIUM = "urn:ngsi-ld:Building:dortmund:gymnasium-an-der-schweizer-allee"

RUNS = (
    ("buildings", {"DOS_ADAPTERS_BUILDINGS_ENABLED": "true"}),
    ("buildings", {"DOS_ADAPTERS_BUILDINGS_ENABLED": "true", "DOS_ADAPTERS_BUILDINGS_SOURCE": "building-meters"}),
    ("lorawan", {"DOS_ADAPTERS_LORAWAN_ENABLED": "true", "DOS_ADAPTERS_LORAWAN_SOURCE": "tts-v3"}),
    ("lorawan", {"DOS_ADAPTERS_LORAWAN_ENABLED": "true", "DOS_ADAPTERS_LORAWAN_SOURCE": "chirpstack-v4"}),
)


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BrokerDouble]:
    monkeypatch.chdir(tmp_path)
    with BrokerDouble() as double:
        env: dict[str, str | None] = {
            "DOS_CONFIG": None,
            "DOS_BROKER_URL": double.url,
            "DOS_BROKER_CONTEXT": CONTEXT_URL,
            "DOS_OUTBOX_PATH": str(tmp_path / "outbox.sqlite"),
            "DOS_DEAD_LETTER_PATH": str(tmp_path / "dead-letter.ndjson"),
        }
        for adapter, extra in RUNS:
            result = CliRunner().invoke(
                main, ["run", "--once", "--offline", "--adapter", adapter], env={**env, **extra}
            )
            assert result.exit_code == 0, result.output
            assert "entities wait for the broker" not in result.output
        yield double


def follow(broker: BrokerDouble, target: str) -> dict[str, Any]:
    response = requests.get(
        f"{broker.url}/ngsi-ld/v1/entities/{quote(target, safe='')}",
        headers={"NGSILD-Tenant": "dortmund", "Link": LINK, "Accept": "application/json"},
        timeout=5,
    )
    assert response.status_code == 200, f"{target}: {response.status_code} {response.text}"
    entity: dict[str, Any] = response.json()
    return entity


def test_every_room_and_meter_link_leads_to_its_building(broker: BrokerDouble) -> None:
    stored = broker.entities("dortmund")
    buildings = [e for e in stored.values() if e["type"] == "Building"]
    assert len(buildings) == 7  # the sample inventory, without the rejected shelter
    index = BuildingIndex.from_entities(buildings)

    rooms = [e for e in stored.values() if e["type"] == "IndoorEnvironmentObserved"]
    meters = [e for e in stored.values() if e["type"] == "DeviceMeasurement" and "refBuilding" in e]
    assert len(rooms) == 2 and len(meters) == 8
    for room in rooms:
        target = room["refPointOfInterest"]["object"]
        assert follow(broker, target)["type"] == "Building"
        lon, lat = room["location"]["value"]["coordinates"]
        hit = index.building_of(lon, lat, tenant="dortmund")
        assert hit is not None and hit.entity_id == target, f"{room['id']} at {lon}, {lat} is not in {target}"
    targets = {meter["refBuilding"]["object"] for meter in meters}
    assert targets == {GYMNASIUM, "urn:ngsi-ld:Building:dortmund:rathaus"}
    for target in targets:
        assert follow(broker, target)["type"] == "Building"


def test_building_show_reads_the_school_from_the_broker(broker: BrokerDouble) -> None:
    env = {"DOS_CONFIG": None, "DOS_BROKER_URL": broker.url, "DOS_BROKER_CONTEXT": CONTEXT_URL}
    result = CliRunner().invoke(building, ["show", "gymnasium-an-der-schweizer-allee", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [room["name"] for room in summary["rooms"]] == [
        "Gymnasium an der Schweizer Allee, Raum 114",
        "Gymnasium an der Schweizer Allee, Raum 209",
    ]
    assert {(m["medium"], m["day"]) for m in summary["meters"]} == {
        ("electricity", "2024-11-04"),
        ("heat", "2024-11-04"),
        ("water", "2024-11-04"),
    }
    table = CliRunner().invoke(building, ["show", "gymnasium-an-der-schweizer-allee"], env=env)
    assert table.exit_code == 0 and "electricity on 2024-11-04: 216 kWh (1 meter(s))" in table.stdout

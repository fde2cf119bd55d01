"""``dos-adapters query`` against the broker double holding the recorded parking entities."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from platform_support import ROOT, write_config

from adapters.core.broker import BrokerClient
from adapters.platform.commands import query
from adapters.platform.query import parse_near
from adapters.testing import BrokerDouble

CONTEXT = "http://context-server/dos-adapters.jsonld"
GARAGES = ROOT / "adapters" / "parking" / "cases" / "records_response_full" / "expected.ndjson"


def garages() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GARAGES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def seeded(broker: BrokerDouble) -> BrokerDouble:
    client = BrokerClient(broker.url, context_url=CONTEXT)
    try:
        result = client.upsert("dortmund", garages())
    finally:
        client.close()
    assert len(result.delivered) == 23
    return broker


@pytest.fixture
def cfg(tmp_path: Path, seeded: BrokerDouble) -> Path:
    return write_config(tmp_path / "dos.toml", broker={"url": seeded.url, "context": CONTEXT})


def run(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(query, [*args, "--config", str(cfg)], catch_exceptions=False)


def entity_requests(broker: BrokerDouble) -> list[dict[str, str]]:
    return [r.query for r in broker.requests if r.method == "GET" and r.path == "/ngsi-ld/v1/entities"]


def test_csv_of_every_garage_with_the_attributes_asked(cfg: Path, seeded: BrokerDouble) -> None:
    result = run(cfg, "OffStreetParking", "--attrs", "name,availableSpotNumber,location", "--format", "csv")

    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["id", "name", "availableSpotNumber", "location"]
    assert len(rows) == 24
    by_id = {row[0]: row for row in rows[1:]}
    hospital = by_id["urn:ngsi-ld:OffStreetParking:dortmund:107394"]
    assert hospital[1:] == ["St.-Johannes-Hospital", "166", "7.456745,51.51072704"]
    assert "23 OffStreetParking entities of tenant dortmund" in result.stderr
    last = seeded.requests[-1]
    assert last.headers["NGSILD-Tenant"] == "dortmund"
    assert last.headers["Link"].startswith(f"<{CONTEXT}>")


def test_pages_of_at_most_1000_and_a_count_first(cfg: Path, seeded: BrokerDouble) -> None:
    result = run(cfg, "OffStreetParking", "--page-size", "5", "--format", "json")

    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 23
    requests = entity_requests(seeded)
    assert requests[0] == {"type": "OffStreetParking", "count": "true", "limit": "0"}
    pages = requests[1:]
    assert [p["offset"] for p in pages] == ["0", "5", "10", "15", "20"]
    assert all(p["limit"] == "5" for p in pages)
    assert "OffStreetParking" in result.stderr.splitlines()[0]  # the progress bar (no tty: its label only)


def test_default_page_is_the_orion_ld_maximum(cfg: Path, seeded: BrokerDouble) -> None:
    assert run(cfg, "OffStreetParking", "--format", "json").exit_code == 0

    assert {r["limit"] for r in entity_requests(seeded)[1:]} == {"1000"}


def test_limit_caps_the_entities_read(cfg: Path, seeded: BrokerDouble) -> None:
    result = run(cfg, "OffStreetParking", "--limit", "7", "--format", "json")

    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) == 7
    assert entity_requests(seeded)[1]["limit"] == "7"


def test_q_filter_is_sent_and_applied(cfg: Path, seeded: BrokerDouble) -> None:
    result = run(cfg, "OffStreetParking", "--q", "availableSpotNumber>300", "--format", "json")

    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    expected = [g["id"] for g in garages() if g.get("availableSpotNumber", {}).get("value", 0) > 300]
    assert sorted(e["id"] for e in found) == sorted(expected)
    assert expected
    assert entity_requests(seeded)[-1]["q"] == "availableSpotNumber>300"


def test_table_is_aligned_for_people(cfg: Path) -> None:
    result = run(cfg, "OffStreetParking", "--attrs", "name,occupancy", "--limit", "3")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "occupancy"]
    assert len(lines) == 4
    assert len({line.index("occupancy") if i == 0 else None for i, line in enumerate(lines)}) >= 1


def test_near_sends_an_ngsi_ld_geo_query(cfg: Path, seeded: BrokerDouble) -> None:
    """The double does not evaluate geo-queries (it answers 501, as it does for anything it lacks):
    what is checked is the request Orion-LD would get, and that the refusal reaches the user."""
    result = run(cfg, "OffStreetParking", "--near", "7.4653,51.5136,500")

    assert result.exit_code == 1
    assert "501" in result.stderr and "geometry" in result.stderr
    sent = entity_requests(seeded)[-1]
    assert sent["georel"] == "near;maxDistance==500"
    assert sent["geometry"] == "Point"
    assert json.loads(sent["coordinates"]) == [7.4653, 51.5136]
    assert sent["type"] == "OffStreetParking"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7.4,51.5", "expected LON,LAT,METRES"),
        ("51.5,190,100", "longitude first"),
        ("7.4,51.5,-3", "must be positive"),
        ("7.4,north,100", "must be numbers"),
    ],
)
def test_near_is_checked_before_asking(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_near(text)


def test_unknown_tenant_is_reported(cfg: Path) -> None:
    result = run(cfg, "OffStreetParking", "--tenant", "unna")

    assert result.exit_code == 1
    assert "tenant 'unna' does not exist in the broker" in result.stderr


def test_tenant_defaults_to_the_enabled_adapter_that_emits_the_type(tmp_path: Path, seeded: BrokerDouble) -> None:
    cfg = write_config(
        tmp_path / "dos.toml",
        broker={"url": seeded.url, "context": CONTEXT},
        adapters={"waste": {"enabled": True, "tenant": "schwerte"}},
    )

    result = run(cfg, "WasteContainer")

    assert result.exit_code == 1  # nothing was ever written for schwerte
    assert seeded.requests[-1].headers["NGSILD-Tenant"] == "schwerte"
    assert "tenant 'schwerte' does not exist" in result.stderr


def test_a_type_written_for_several_tenants_needs_tenant(tmp_path: Path, seeded: BrokerDouble) -> None:
    cfg = write_config(
        tmp_path / "dos.toml",
        broker={"url": seeded.url, "context": CONTEXT},
        adapters={"waste": {"tenant": "schwerte"}},  # lorawan (dortmund) emits WasteContainer too
    )

    result = run(cfg, "WasteContainer")

    assert result.exit_code == 2
    assert "give --tenant" in result.stderr
    assert entity_requests(seeded) == []


def test_no_broker_configured_is_a_usage_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "dos.toml", broker={"context": CONTEXT})

    result = run(cfg, "OffStreetParking")

    assert result.exit_code == 2
    assert "no [broker] url configured" in result.stderr

"""The collection tour ``dos-adapters waste due``: pure functions, the broker query, the command."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from adapters.cli import main
from adapters.core.broker import MAX_PAGE_SIZE, BrokerClient
from adapters.core.entity_files import latest_entities, read_entity_file
from adapters.core.normalize import normalize_payload
from adapters.core.validation import entity_problems
from adapters.testing import BrokerDouble
from adapters.waste import WasteAdapter
from adapters.waste.due import (
    DueBin,
    DueQueryError,
    due_bins,
    due_query,
    query_due,
    render,
)
from adapters.waste.edg_containers import SOURCE

CONTEXT_URL = "http://context-server/dos-adapters.jsonld"


def bin_entity(
    local_id: str,
    level: float | None,
    *,
    tenant: str = "dortmund",
    observed_at: str = "2024-11-05T08:00:00Z",
    name: str | None = None,
    lon: float = 7.46528,
    lat: float = 51.51386,
    status: str = "ok",
) -> dict[str, Any]:
    """A WasteContainer as the LoRaWAN adapter writes it (kind waste)."""
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:WasteContainer:{tenant}:{local_id}",
        "type": "WasteContainer",
        "name": {"type": "Property", "value": name or f"Container {local_id}"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        "storedWasteKind": {"type": "Property", "value": "glass"},
        "status": {"type": "Property", "value": status, "observedAt": observed_at},
    }
    if level is not None:
        entity["fillingLevel"] = {"type": "Property", "value": level, "observedAt": observed_at, "unitCode": "C62"}
    return entity


def edg_sites() -> list[dict[str, Any]]:
    """The static sites of this adapter: same type, no fillingLevel."""
    from adapters.core.adapter import NormalizeContext

    result = normalize_payload(SOURCE, WasteAdapter.sample_payload(SOURCE), NormalizeContext(tenant="dortmund"))
    return result.entities


FLEET = [
    bin_entity("alter-markt-glas", 0.95, name="Glascontainer Alter Markt"),
    bin_entity("friedensplatz-papier", 0.8, name="Papiercontainer Friedensplatz", lon=7.46595, lat=51.51108),
    bin_entity("hansaplatz-glas", 0.79),
    bin_entity("ostwall-glas", 1.0, observed_at="2024-11-05T06:00:00Z"),
    bin_entity("westpark-papier", 1.0, observed_at="2024-11-05T07:30:00.250Z"),
    bin_entity("kampstrasse-glas", 0.1),
    bin_entity("lid-open", None, status="lidOpen"),
]


def ids(bins: list[DueBin]) -> list[str]:
    return [b.id.rsplit(":", 1)[-1] for b in bins]


# -- pure functions ----------------------------------------------------------------------------


def test_fleet_entities_conform() -> None:
    assert all(entity_problems(e) == [] for e in FLEET)


def test_threshold_is_inclusive_and_sorted_fullest_first() -> None:
    assert ids(due_bins(FLEET, 0.8)) == [
        "ostwall-glas",  # 100 %, full since 06:00
        "westpark-papier",  # 100 %, full since 07:30
        "alter-markt-glas",
        "friedensplatz-papier",  # exactly at the threshold
    ]
    assert ids(due_bins(FLEET, 0.96)) == ["ostwall-glas", "westpark-papier"]
    assert due_bins(FLEET, 1.0)[0].filling_level == 1.0
    assert len(due_bins(FLEET, 0.0)) == 6  # every bin with a level, none without


def test_bins_without_a_level_never_show_up() -> None:
    """The EDG sites share the type but carry no fillingLevel; neither does a lid-open frame alone."""
    assert due_bins(edg_sites(), 0.0) == []
    assert "lid-open" not in ids(due_bins(FLEET, 0.0))


@pytest.mark.parametrize("value", [True, "0.9", None, [0.9], {"x": 1}])
def test_levels_that_are_no_numbers_are_ignored(value: Any) -> None:
    entity = bin_entity("odd", 0.9)
    entity["fillingLevel"]["value"] = value
    assert due_bins([entity], 0.5) == []


def test_other_types_are_ignored() -> None:
    parking = {**bin_entity("x", 0.99), "type": "OffStreetParking", "id": "urn:ngsi-ld:OffStreetParking:dortmund:x"}
    assert due_bins([parking], 0.5) == []


def test_key_values_entities_are_read_too() -> None:
    simplified = {
        "id": "urn:ngsi-ld:WasteContainer:dortmund:kv",
        "type": "WasteContainer",
        "name": "Simplified",
        "fillingLevel": 0.9,
        "location": {"type": "Point", "coordinates": [7.4, 51.5]},
    }
    (due,) = due_bins([simplified], 0.8)
    assert (due.name, due.filling_level, due.observed_at, due.lon, due.lat) == ("Simplified", 0.9, None, 7.4, 51.5)


def test_ties_without_observed_at_come_last_then_by_id() -> None:
    late = bin_entity("b", 0.9)
    del late["fillingLevel"]["observedAt"]
    other = bin_entity("a", 0.9)
    del other["fillingLevel"]["observedAt"]
    timed = bin_entity("c", 0.9)
    assert ids(due_bins([late, other, timed], 0.5)) == ["c", "a", "b"]


def test_tenant_filter_keeps_one_city() -> None:
    fleet = [bin_entity("do", 0.9), bin_entity("sw", 0.9, tenant="schwerte")]
    assert ids(due_bins(fleet, 0.5, tenant="schwerte")) == ["sw"]
    assert ids(due_bins(fleet, 0.5)) == ["do", "sw"]


def test_a_bin_carries_what_the_tour_needs() -> None:
    (due,) = due_bins([FLEET[0]], 0.8)
    assert due == DueBin(
        id="urn:ngsi-ld:WasteContainer:dortmund:alter-markt-glas",
        name="Glascontainer Alter Markt",
        filling_level=0.95,
        observed_at="2024-11-05T08:00:00Z",
        lon=7.46528,
        lat=51.51386,
        stored_waste_kind="glass",
    )


def test_latest_entity_per_id_wins_attribute_by_attribute() -> None:
    morning = bin_entity("a", 0.9, observed_at="2024-11-05T07:00:00Z")
    emptied = bin_entity("a", 0.05, observed_at="2024-11-05T09:00:00Z")
    lid_open = bin_entity("b", None, status="lidOpen", observed_at="2024-11-05T09:00:00Z")
    full_b = bin_entity("b", 0.85, observed_at="2024-11-05T08:00:00Z")
    merged = latest_entities([morning, full_b, emptied, lid_open])
    assert [e["id"].rsplit(":", 1)[-1] for e in merged] == ["a", "b"]
    assert merged[0]["fillingLevel"]["value"] == 0.05  # emptied: not due any more
    assert merged[1]["status"]["value"] == "lidOpen"
    assert merged[1]["fillingLevel"]["value"] == 0.85  # the lid-open frame keeps the last level
    assert ids(due_bins(merged, 0.8)) == ["b"]


def test_entity_files_skip_blank_lines_and_name_bad_ones() -> None:
    assert read_entity_file('\n{"id": "a"}\n\n{"id": "b"}\n') == [{"id": "a"}, {"id": "b"}]
    with pytest.raises(ValueError, match="line 2: not JSON"):
        read_entity_file('{"id": "a"}\n{"id": \n')
    with pytest.raises(ValueError, match="line 1: not a JSON object"):
        read_entity_file('"just a string"\n')
    with pytest.raises(ValueError, match="JSON array holds something else"):
        read_entity_file("[1, 2]\n")
    assert read_entity_file('[{"id": "a"}]') == [{"id": "a"}]


def test_due_query() -> None:
    assert due_query(0.8) == "fillingLevel>=0.8"
    assert due_query(1) == "fillingLevel>=1.0"
    assert due_query(0) == "fillingLevel>=0.0"


def test_render_table() -> None:
    table = render(due_bins(FLEET[:2], 0.8), "table").splitlines()
    assert table[0].split() == ["fill", "name", "observedAt", "lon", "lat"]
    assert table[1].split() == [
        "95",
        "%",
        "Glascontainer",
        "Alter",
        "Markt",
        "2024-11-05T08:00:00Z",
        "7.46528",
        "51.51386",
    ]
    assert table[2].startswith("80 %  Papiercontainer Friedensplatz")
    assert render([], "table").split() == ["fill", "name", "observedAt", "lon", "lat"]


def test_render_json_keeps_the_fraction() -> None:
    (item,) = json.loads(render(due_bins(FLEET[:1], 0.8), "json"))
    assert item == {
        "id": "urn:ngsi-ld:WasteContainer:dortmund:alter-markt-glas",
        "name": "Glascontainer Alter Markt",
        "fillingLevel": 0.95,
        "observedAt": "2024-11-05T08:00:00Z",
        "storedWasteKind": "glass",
        "lon": 7.46528,
        "lat": 51.51386,
    }


def test_render_geojson() -> None:
    nowhere = bin_entity("nowhere", 0.9)
    del nowhere["location"]
    collection = json.loads(render(due_bins([FLEET[0], nowhere], 0.8), "geojson"))
    assert collection["type"] == "FeatureCollection"
    first, second = collection["features"]
    assert first["geometry"] == {"type": "Point", "coordinates": [7.46528, 51.51386]}
    assert first["properties"]["fillingLevel"] == 0.95 and first["id"].endswith("alter-markt-glas")
    assert second["geometry"] is None


# -- against the broker double -----------------------------------------------------------------


def _due(url: str, *, tenant: str, threshold: float, page_size: int = MAX_PAGE_SIZE, **client: Any) -> list[Any]:
    """query_due through a client made the way the command makes it."""
    broker_client = BrokerClient(url, context_url=CONTEXT_URL, **client)
    try:
        return query_due(broker_client, tenant=tenant, threshold=threshold, page_size=page_size)
    finally:
        broker_client.close()


@pytest.fixture
def broker() -> Iterator[BrokerDouble]:
    with BrokerDouble() as double:
        client = BrokerClient(double.url, context_url=CONTEXT_URL)
        try:
            for tenant, entities in (
                ("dortmund", [*FLEET, *edg_sites()]),
                ("schwerte", [bin_entity("markt-glas", 0.99, tenant="schwerte")]),
            ):
                result = client.upsert(tenant, entities)
                assert not result.rejected and not result.pending
        finally:
            client.close()
        yield double


def test_only_the_due_bins_of_the_tenant_are_listed(broker: BrokerDouble) -> None:
    entities = _due(broker.url, tenant="dortmund", threshold=0.8)
    assert ids(due_bins(entities, 0.8)) == [
        "ostwall-glas",
        "westpark-papier",
        "alter-markt-glas",
        "friedensplatz-papier",
    ]
    (request,) = [r for r in broker.requests if r.method == "GET"]
    assert request.path == "/ngsi-ld/v1/entities"
    assert request.query == {"type": "WasteContainer", "q": "fillingLevel>=0.8", "limit": "1000", "offset": "0"}
    assert request.headers.get("NGSILD-Tenant") == "dortmund"
    assert f"<{CONTEXT_URL}>" in (request.headers.get("Link") or "")
    assert request.status == 200


def test_the_broker_filters_with_q(broker: BrokerDouble) -> None:
    """The q filter runs in the broker: the 18 EDG sites and the low bins never travel."""
    entities = _due(broker.url, tenant="dortmund", threshold=0.95)
    assert sorted(e["id"].rsplit(":", 1)[-1] for e in entities) == [
        "alter-markt-glas",
        "ostwall-glas",
        "westpark-papier",
    ]


def test_paging_reads_every_page(broker: BrokerDouble) -> None:
    entities = _due(broker.url, tenant="dortmund", threshold=0.8, page_size=1)
    assert len(entities) == 4
    gets = [r for r in broker.requests if r.method == "GET"]
    assert [(r.query["limit"], r.query["offset"]) for r in gets] == [
        ("1", "0"),
        ("1", "1"),
        ("1", "2"),
        ("1", "3"),
        ("1", "4"),  # the short (empty) page that ends the paging
    ]
    paged = _due(broker.url, tenant="dortmund", threshold=0.8, page_size=3)
    assert due_bins(paged, 0.8) == due_bins(entities, 0.8)


def test_other_tenants_stay_apart(broker: BrokerDouble) -> None:
    entities = _due(broker.url, tenant="schwerte", threshold=0.8)
    assert ids(due_bins(entities, 0.8)) == ["markt-glas"]


def test_unknown_tenant_is_an_error_not_an_empty_tour(broker: BrokerDouble) -> None:
    with pytest.raises(DueQueryError, match="tenant 'unna' does not exist"):
        _due(broker.url, tenant="unna", threshold=0.8)


def test_bearer_token_is_sent() -> None:
    with BrokerDouble(required_token="s3cret-token") as broker:
        client = BrokerClient(broker.url, context_url=CONTEXT_URL, token="s3cret-token")
        try:
            client.upsert("dortmund", FLEET)
        finally:
            client.close()
        with pytest.raises(DueQueryError, match=r"refused the query \(401\)"):
            _due(broker.url, tenant="dortmund", threshold=0.8)
        entities = _due(broker.url, tenant="dortmund", threshold=0.8, token="s3cret-token")
        assert len(entities) == 4
        assert broker.requests[-1].headers.get("Authorization") == "Bearer s3cret-token"


class Canned(requests.adapters.BaseAdapter):
    """Answers every request with one canned response (statuses the broker double does not give on GET)."""

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        super().__init__()
        self.status, self.body, self.content_type = status, body, content_type

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code, response._content = self.status, self.body
        response.headers["Content-Type"] = self.content_type
        response.url, response.request = str(request.url), request
        return response

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "body", "needle"),
    [
        (
            503,
            b'{"type": "x", "title": "Service Unavailable", "detail": "context"}',
            "answered 503: Service Unavailable",
        ),
        (403, b"{}", r"refused the query \(403\)"),
        (404, b'{"type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"}', "broker root"),
        (200, b'{"id": "not a list"}', "something else than an entity list"),
        (200, b"<html>", "without a JSON body"),
    ],
)
def test_broker_answers_that_are_no_tour(status: int, body: bytes, needle: str) -> None:
    session = requests.Session()
    session.mount("http://", Canned(status, body))
    with session, pytest.raises(DueQueryError, match=needle):
        _due("http://broker", tenant="dortmund", threshold=0.8, session=session)


class TokenAndBroker(requests.adapters.BaseAdapter):
    """An OAuth2 token endpoint (POST) and a broker (GET) that wants its token."""

    def __init__(self) -> None:
        super().__init__()
        self.issued: list[str] = []
        self.seen: list[str | None] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.url, response.request = str(request.url), request
        response.headers["Content-Type"] = "application/json"
        if request.method == "POST":
            self.issued.append(f"token-{len(self.issued) + 1}")
            response.status_code = 200
            response._content = json.dumps({"access_token": self.issued[-1], "expires_in": 300}).encode()
            return response
        self.seen.append(request.headers.get("Authorization"))
        fresh = request.headers.get("Authorization") == f"Bearer token-{len(self.issued)}" and len(self.issued) > 1
        response.status_code = 200 if fresh else 401
        response._content = json.dumps([bin_entity("a", 0.9)] if fresh else {"title": "expired"}).encode()
        return response

    def close(self) -> None:
        pass


def test_oauth2_token_is_fetched_and_refreshed_once_on_401() -> None:
    fake = TokenAndBroker()
    session = requests.Session()
    session.mount("http://", fake)
    oauth2 = {"token_url": "http://idp/token", "client_id": "dos", "client_secret": "x"}
    with session:
        entities = _due("http://broker", tenant="dortmund", threshold=0.8, oauth2=oauth2, session=session)
    assert [e["id"] for e in entities] == ["urn:ngsi-ld:WasteContainer:dortmund:a"]
    assert fake.seen == ["Bearer token-1", "Bearer token-2"]


def test_wrong_broker_path(broker: BrokerDouble) -> None:
    with pytest.raises(DueQueryError, match="broker root"):
        _due(broker.url + "/ngsi-ld/v1", tenant="dortmund", threshold=0.8)


def test_unreachable_broker() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DueQueryError, match="unreachable"):
        _due(f"http://127.0.0.1:{port}", tenant="dortmund", threshold=0.8, timeout=2)


def test_page_size_is_checked() -> None:
    with pytest.raises(ValueError, match="page_size"):
        _due("http://127.0.0.1:9", tenant="dortmund", threshold=0.8, page_size=1001)


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    import os

    for name in [n for n in os.environ if n.startswith("DOS_")]:
        monkeypatch.delenv(name)
    return CliRunner()


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_command_against_the_broker(runner: CliRunner, broker: BrokerDouble, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", f'[broker]\nurl = "{broker.url}"\ncontext = "{CONTEXT_URL}"\n')
    result = runner.invoke(main, ["waste", "due", "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["fill", "name", "observedAt", "lon", "lat"]
    assert [line.split()[0] for line in lines[1:]] == ["100", "100", "95", "80"]
    assert "4 bin(s) of tenant dortmund at or above 80 %" in result.stderr


def test_command_threshold_from_config_and_option(runner: CliRunner, broker: BrokerDouble, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        f'[broker]\nurl = "{broker.url}"\ncontext = "{CONTEXT_URL}"\n[adapters.waste]\ndue_threshold = 0.96\n',
    )
    result = runner.invoke(main, ["waste", "due", "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [item["fillingLevel"] for item in json.loads(result.stdout)] == [1.0, 1.0]
    result = runner.invoke(main, ["waste", "due", "--config", str(config), "--format", "json", "--threshold", "0.1"])
    assert len(json.loads(result.stdout)) == 6
    gets = [r for r in broker.requests if r.method == "GET"]
    assert [r.query["q"] for r in gets] == ["fillingLevel>=0.96", "fillingLevel>=0.1"]


def test_command_tenant_option(runner: CliRunner, broker: BrokerDouble, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", f'[broker]\nurl = "{broker.url}"\ncontext = "{CONTEXT_URL}"\n')
    result = runner.invoke(
        main, ["waste", "due", "--config", str(config), "--tenant", "Schwerte", "--format", "geojson"]
    )
    assert result.exit_code == 0, result.output
    (feature,) = json.loads(result.stdout)["features"]
    assert feature["id"] == "urn:ngsi-ld:WasteContainer:schwerte:markt-glas"
    result = runner.invoke(main, ["waste", "due", "--config", str(config), "--tenant", "unna"])
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_command_from_file_latest_wins(runner: CliRunner, tmp_path: Path) -> None:
    emptied = bin_entity("alter-markt-glas", 0.02, observed_at="2024-11-05T10:00:00Z", name="Glascontainer Alter Markt")
    schwerte = bin_entity("markt-glas", 0.99, tenant="schwerte")
    lines = [json.dumps(e) for e in [*FLEET, *edg_sites(), emptied, schwerte]]
    entities = tmp_path / "entities.ndjson"
    entities.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = write_config(tmp_path / "c.toml", "[adapters.waste]\ndue_threshold = 0.9\n")
    result = runner.invoke(
        main, ["waste", "due", "--config", str(config), "--from-file", str(entities), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert [item["id"].rsplit(":", 1)[-1] for item in json.loads(result.stdout)] == ["ostwall-glas", "westpark-papier"]


def test_command_without_broker_or_file_names_the_way_out(runner: CliRunner, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", '[output]\npath = "var/entities.ndjson"\n')
    result = runner.invoke(main, ["waste", "due", "--config", str(config)])
    assert result.exit_code == 2
    assert "--from-file var/entities.ndjson" in result.output


def test_command_unreadable_file(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ndjson"
    broken.write_text('{"id": "a"}\nnot json\n', encoding="utf-8")
    result = runner.invoke(main, ["waste", "due", "--from-file", str(broken)])
    assert result.exit_code == 2
    assert "line 2: not JSON" in result.stderr


def test_command_threshold_out_of_range(runner: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_text("", encoding="utf-8")
    result = runner.invoke(main, ["waste", "due", "--from-file", str(empty), "--threshold", "80"])
    assert result.exit_code == 2
    assert "0<=x<=1" in result.output or "0<=x<=1" in result.stderr

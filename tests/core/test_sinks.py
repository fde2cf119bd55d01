"""adapters.core.sinks: NDJSON file sink, dead-letter entries, and the broker sink over outbox + broker."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from http_recorder import RecordingServer, Reply, json_reply

from adapters.core.broker import BrokerClient
from adapters.core.entities import Entity
from adapters.core.outbox import Outbox, OutboxRow
from adapters.core.sinks import BrokerSink, DeadLetterFile, FileSink

CONTEXT = "http://context-server/dos-adapters.jsonld"


def ent(name: str, tenant: str = "dortmund") -> Entity:
    return {
        "id": f"urn:ngsi-ld:OffStreetParking:{tenant}:{name}",
        "type": "OffStreetParking",
        "name": {"type": "Property", "value": f"Parkhaus {name}"},
    }


def read_ndjson(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def sent_ids(server: RecordingServer) -> list[list[str]]:
    return [[entity["id"] for entity in request.json()] for request in server.requests]


# --- FileSink ------------------------------------------------------------------------------------


def test_file_sink_appends_one_entity_per_line(tmp_path: Path) -> None:
    path = tmp_path / "out" / "entities.ndjson"
    sink = FileSink(path)
    sink.write("dortmund", "parking", [ent("Süd"), ent("Nord")])
    sink.write("dortmund", "parking", [ent("West")])
    sink.write("dortmund", "parking", [])
    assert read_ndjson(path) == [ent("Süd"), ent("Nord"), ent("West")]
    raw = path.read_bytes()
    assert "Parkhaus Süd".encode() in raw  # UTF-8, not \u escapes
    assert b'{"id":"urn:ngsi-ld:OffStreetParking:dortmund:S' in raw  # compact separators
    assert sink.description == f"file {path}"
    report = sink.deliver(force=True)
    assert (report.delivered, report.pending, report.rejected, report.error) == (0, 0, 0, None)
    sink.close()


def test_file_sink_keeps_existing_lines(tmp_path: Path) -> None:
    path = tmp_path / "entities.ndjson"
    path.write_text('{"earlier":true}\n', encoding="utf-8")
    FileSink(path).write("t", "s", [ent("a")])
    assert read_ndjson(path) == [{"earlier": True}, ent("a")]


# --- DeadLetterFile ------------------------------------------------------------------------------


def test_dead_letter_entry_has_time_adapter_source_reason_record(tmp_path: Path) -> None:
    path = tmp_path / "dead-letter.ndjson"
    dead = DeadLetterFile(path)
    before = datetime.now(UTC).replace(microsecond=0)
    dead.reject(adapter="parking", source="garages", reason="occupancy 1.5 > 1", record={"Belegung": 1.5})
    dead.reject(
        adapter="parking",
        source="broker",
        reason="refused",
        entity=ent("a"),
        where="record 3",
        tenant="dortmund",
        problem={"title": "bad", "status": 400},
    )
    first, second = read_ndjson(path)

    assert list(first) == ["time", "adapter", "source", "reason", "record"]
    assert first["adapter"] == "parking"
    assert first["source"] == "garages"
    assert first["reason"] == "occupancy 1.5 > 1"
    assert first["record"] == {"Belegung": 1.5}
    assert first["time"].endswith("Z")
    moment = datetime.fromisoformat(first["time"])
    assert before <= moment <= datetime.now(UTC)

    assert second["tenant"] == "dortmund"
    assert second["where"] == "record 3"
    assert second["problem"] == {"title": "bad", "status": 400}
    assert second["entity"] == ent("a")
    assert "record" not in second


def test_dead_letter_keeps_records_json_cannot_encode_natively(tmp_path: Path) -> None:
    path = tmp_path / "dead-letter.ndjson"
    DeadLetterFile(path).reject(adapter="a", source="s", reason="r", record={"at": datetime(2026, 1, 1, tzinfo=UTC)})
    (entry,) = read_ndjson(path)
    assert entry["record"] == {"at": "2026-01-01 00:00:00+00:00"}


# --- BrokerSink ----------------------------------------------------------------------------------


class Parts:
    def __init__(self, tmp_path: Path, url: str, **client_options: Any) -> None:
        self.outbox_path = tmp_path / "var" / "outbox.sqlite"
        self.dead_path = tmp_path / "out" / "dead-letter.ndjson"
        self.client = BrokerClient(url, context_url=CONTEXT, **client_options)
        self.sink = BrokerSink(self.client, Outbox(self.outbox_path), DeadLetterFile(self.dead_path), max_backoff=600)

    def stored(self) -> list[list[str]]:
        """What another process would find in the outbox file right now, row by row, every tenant."""
        with closing(sqlite3.connect(self.outbox_path)) as db:
            bodies = [body for (body,) in db.execute("SELECT body FROM batches ORDER BY seq")]
        return [[entity["id"].rsplit(":", 1)[1] for entity in json.loads(body)] for body in bodies]


@pytest.fixture
def parts(tmp_path: Path, http_server: RecordingServer) -> Iterator[Parts]:
    made = Parts(tmp_path, http_server.url)
    yield made
    made.sink.close()


def test_write_is_durable_before_any_delivery(parts: Parts, http_server: RecordingServer) -> None:
    parts.sink.write("dortmund", "parking", [ent("a"), ent("b")])
    assert http_server.requests == []  # write never talks to the broker
    assert parts.stored() == [["a", "b"]]

    http_server.script(Reply(204))
    report = parts.sink.deliver()
    assert sent_ids(http_server) == [[ent("a")["id"], ent("b")["id"]]]
    assert http_server.requests[0].headers["ngsild-tenant"] == "dortmund"
    assert (report.delivered, report.pending, report.rejected, report.requests, report.error) == (2, 0, 0, 1, None)
    assert parts.stored() == []


def test_write_splits_into_broker_sized_batches(tmp_path: Path, http_server: RecordingServer) -> None:
    made = Parts(tmp_path, http_server.url, max_batch_entities=2)
    try:
        made.sink.write("dortmund", "parking", [ent(str(n)) for n in range(5)])
        assert made.stored() == [["0", "1"], ["2", "3"], ["4"]]
        http_server.responder = lambda _request: Reply(204)
        report = made.sink.deliver()
        assert [len(ids) for ids in sent_ids(http_server)] == [2, 2, 1]
        assert report.delivered == 5
    finally:
        made.sink.close()


def test_deliver_drains_in_order_one_tenant_per_request(parts: Parts, http_server: RecordingServer) -> None:
    parts.sink.write("dortmund", "parking", [ent("a")])
    parts.sink.write("dortmund", "parking", [ent("b")])
    parts.sink.write("unna", "parking", [ent("c", "unna")])
    parts.sink.write("dortmund", "parking", [ent("d")])
    http_server.responder = lambda _request: Reply(204)

    report = parts.sink.deliver()

    tenants = [request.headers["ngsild-tenant"] for request in http_server.requests]
    assert tenants == ["dortmund", "unna"]  # the oldest row's tenant first; d does not wait for unna
    assert sent_ids(http_server) == [
        [ent("a")["id"], ent("b")["id"], ent("d")["id"]],
        [ent("c", "unna")["id"]],
    ]
    assert (report.delivered, report.requests, report.pending) == (4, 2, 0)
    assert parts.stored() == []


def test_an_interleaved_two_tenant_backlog_drains_in_few_requests_in_order_per_tenant(
    parts: Parts, http_server: RecordingServer
) -> None:
    """After an outage the outbox holds small rows of two tenants in turn (one micro-batch each): they
    drain in requests as large as "one state per entity" allows, each tenant's states in their order."""
    bins = 25
    written: dict[str, list[tuple[str, int]]] = {"dortmund": [], "schwerte": []}
    for reading in range(12):  # 12 states of each of 25 bins per tenant, two bins per row, tenants alternating
        for first in range(0, bins, 2):
            for tenant in written:
                row = []
                for number in range(first, min(first + 2, bins)):
                    entity = ent(f"bin-{number}", tenant)
                    entity["reading"] = {"type": "Property", "value": reading}
                    row.append(entity)
                    written[tenant].append((entity["id"], reading))
                parts.sink.write(tenant, "lorawan", row)
    rows_written = parts.sink.outbox.status().batches
    http_server.responder = lambda _request: Reply(204)

    report = parts.sink.deliver()

    received: dict[str, list[tuple[str, int]]] = {"dortmund": [], "schwerte": []}
    for request in http_server.requests:
        entities = request.json()
        ids = [entity["id"] for entity in entities]
        assert len(ids) == len(set(ids))  # one state per entity per request
        tenant = request.headers["ngsild-tenant"]
        assert all(f":{tenant}:" in entity_id for entity_id in ids)  # one tenant per request
        received[tenant].extend((entity["id"], entity["reading"]["value"]) for entity in entities)
    assert received == written  # nothing lost, repeated or reordered within a tenant
    assert (report.delivered, report.pending) == (600, 0)
    assert rows_written == 312
    # 12 states per entity: at least 12 requests per tenant, and no more are made.
    assert report.requests == len(http_server.requests) == 24
    assert parts.stored() == []


def test_deliver_sends_the_stored_rows_joined_without_encoding_again(
    parts: Parts, http_server: RecordingServer
) -> None:
    parts.sink.write("dortmund", "parking", [ent("a"), ent("b")])
    parts.sink.write("dortmund", "parking", [ent("c")])
    with closing(sqlite3.connect(parts.outbox_path)) as db:
        bodies = [body for (body,) in db.execute("SELECT body FROM batches ORDER BY seq")]
    http_server.responder = lambda _request: Reply(204)

    parts.sink.deliver()

    (request,) = http_server.requests
    assert request.body == ("[" + ",".join(body[1:-1] for body in bodies) + "]").encode()
    assert request.json() == [ent("a"), ent("b"), ent("c")]


def test_a_request_the_broker_takes_whole_never_decodes_the_rows(
    parts: Parts, http_server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts.sink.write("dortmund", "parking", [ent("a"), ent("b")])
    parts.sink.write("dortmund", "parking", [ent("c")])
    http_server.responder = lambda _request: Reply(204)

    def no_decoding(_row: OutboxRow) -> list[Entity]:
        raise AssertionError("entities decoded for a request the broker took whole")

    monkeypatch.setattr(OutboxRow, "entities", property(no_decoding))
    report = parts.sink.deliver()

    assert (report.delivered, report.pending, report.requests) == (3, 0, 1)
    assert sent_ids(http_server) == [[ent("a")["id"], ent("b")["id"], ent("c")["id"]]]


def test_rows_with_the_same_entity_go_in_separate_requests(parts: Parts, http_server: RecordingServer) -> None:
    """Two readings of one entity in one request would be merged by Orion-LD (QuantumLeap sees one)."""
    first, second = ent("a"), {**ent("a"), "name": {"type": "Property", "value": "later"}}
    parts.sink.write("dortmund", "parking", [first])
    parts.sink.write("dortmund", "parking", [second, ent("b")])
    http_server.responder = lambda _request: Reply(204)

    report = parts.sink.deliver()

    assert [request.json() for request in http_server.requests] == [[first], [second, ent("b")]]
    assert (report.delivered, report.pending) == (3, 0)


def test_outage_keeps_rows_and_backs_off_until_forced(parts: Parts, http_server: RecordingServer) -> None:
    parts.sink.base_backoff = 60.0
    parts.sink.write("dortmund", "parking", [ent("a")])
    parts.sink.write("unna", "parking", [ent("b", "unna")])
    http_server.script(Reply(503, b"down"))

    first = parts.sink.deliver()
    assert len(http_server.requests) == 1  # unna waits behind the pending dortmund row
    assert (first.delivered, first.pending) == (0, 2)
    assert first.error is not None
    assert "503" in first.error
    assert parts.stored() == [["a"], ["b"]]
    assert 30.0 <= parts.sink.backoff_remaining() <= 60.0

    second = parts.sink.deliver()  # inside the backoff: no request at all
    assert len(http_server.requests) == 1
    assert second.pending == 2
    assert second.error is not None
    assert second.error.startswith("backing off")

    http_server.responder = lambda _request: Reply(204)
    forced = parts.sink.deliver(force=True)
    assert sent_ids(http_server)[1:] == [[ent("a")["id"]], [ent("b", "unna")["id"]]]
    assert (forced.delivered, forced.pending, forced.error) == (2, 0, None)
    assert parts.sink.backoff_remaining() == 0.0  # success resets the backoff
    assert parts.sink.outbox.status().batches == 0


def test_retry_after_lengthens_the_backoff(parts: Parts, http_server: RecordingServer) -> None:
    parts.sink.base_backoff = 0.01
    parts.sink.write("dortmund", "parking", [ent("a")])
    http_server.script(Reply(429, b"", {"Retry-After": "120"}))
    parts.sink.deliver()
    assert 110.0 <= parts.sink.backoff_remaining() <= 120.0


def test_backoff_grows_and_is_capped(parts: Parts, http_server: RecordingServer) -> None:
    parts.sink.base_backoff = 100.0
    parts.sink.max_backoff = 250.0
    parts.sink.write("dortmund", "parking", [ent("a")])
    http_server.responder = lambda _request: Reply(503)
    ceilings = [100.0, 200.0, 250.0, 250.0]
    for ceiling in ceilings:
        parts.sink.deliver(force=True)
        assert ceiling / 2 - 1 <= parts.sink.backoff_remaining() <= ceiling
    assert len(http_server.requests) == len(ceilings)


def test_success_resets_the_backoff_growth(parts: Parts, http_server: RecordingServer) -> None:
    parts.sink.base_backoff = 100.0
    parts.sink.write("dortmund", "parking", [ent("a")])
    http_server.script(Reply(503), Reply(503), Reply(204), Reply(503))
    parts.sink.deliver(force=True)
    parts.sink.deliver(force=True)
    assert parts.sink.backoff_remaining() > 100.0 - 1  # second failure: ceiling 200
    assert parts.sink.deliver(force=True).delivered == 1
    parts.sink.write("dortmund", "parking", [ent("b")])
    parts.sink.deliver(force=True)
    assert parts.sink.backoff_remaining() <= 100.0  # the first failure after a success starts again at base


def test_partial_207_dead_letters_rejects_and_keeps_pending(parts: Parts, http_server: RecordingServer) -> None:
    entities = [ent("ok"), ent("bad"), ent("later")]
    problem = {
        "type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
        "title": "Bad",
        "detail": "no",
        "status": 400,
    }
    http_server.script(
        json_reply(
            207,
            {
                "success": [entities[0]["id"]],
                "errors": [
                    {"entityId": entities[1]["id"], "error": problem},
                    {"entityId": entities[2]["id"], "error": {"title": "context", "status": 503}},
                ],
            },
        )
    )
    parts.sink.write("dortmund", "parking", entities)

    report = parts.sink.deliver()

    assert (report.delivered, report.rejected, report.pending) == (1, 1, 1)
    assert parts.stored() == [["later"]]
    (entry,) = read_ndjson(parts.dead_path)
    assert entry["adapter"] == "parking"
    assert entry["source"] == "broker"
    assert entry["tenant"] == "dortmund"
    assert entry["entity"] == entities[1]
    assert entry["problem"] == problem
    assert entities[1]["id"] in entry["reason"]
    assert "Bad" in entry["reason"]


def test_config_error_keeps_rows_and_records_last_error(parts: Parts, http_server: RecordingServer) -> None:
    parts.sink.write("dortmund", "parking", [ent("a"), ent("b")])
    http_server.script(json_reply(401, {"title": "Unauthorized"}))

    report = parts.sink.deliver()

    assert report.error is not None
    assert "401" in report.error
    assert (report.delivered, report.pending) == (0, 2)
    assert parts.stored() == [["a", "b"]]
    status = parts.sink.outbox.status()
    assert status.last_error is not None
    assert "401" in status.last_error
    assert parts.sink.outbox.head(1000, 10**9)[0].attempts == 1
    assert parts.sink.backoff_remaining() > 0
    assert not parts.dead_path.exists()  # a config problem is not the entities' fault


def test_broker_unreachable_keeps_everything(tmp_path: Path, closed_port_url: str) -> None:
    made = Parts(tmp_path, closed_port_url)
    try:
        made.sink.write("dortmund", "parking", [ent("a")])
        report = made.sink.deliver()
        assert (report.delivered, report.pending) == (0, 1)
        assert report.error is not None
        assert "unreachable" in report.error
        assert made.stored() == [["a"]]
    finally:
        made.sink.close()


def test_rows_written_before_a_restart_are_delivered_after_it(tmp_path: Path, http_server: RecordingServer) -> None:
    first = Parts(tmp_path, http_server.url)
    first.sink.write("dortmund", "parking", [ent("a")])
    first.sink.close()  # the process stops before delivering

    second = Parts(tmp_path, http_server.url)
    try:
        http_server.script(Reply(204))
        assert second.sink.deliver().delivered == 1
        assert sent_ids(http_server) == [[ent("a")["id"]]]
    finally:
        second.sink.close()


def test_description_names_broker_and_outbox(parts: Parts, http_server: RecordingServer) -> None:
    assert http_server.url in parts.sink.description
    assert str(parts.outbox_path) in parts.sink.description


def test_a_refused_entity_is_dead_lettered_under_the_adapter_that_wrote_it(
    parts: Parts, http_server: RecordingServer
) -> None:
    """Rows of two adapters of one tenant travel in one request; the dead letter names the right one."""
    parts.sink.write("dortmund", "parking", [ent("garage")])
    parts.sink.write("dortmund", "lorawan", [ent("bin")])
    problem = {"title": "Bad", "detail": "no", "status": 400}
    http_server.script(
        json_reply(
            207, {"success": [ent("garage")["id"]], "errors": [{"entityId": ent("bin")["id"], "error": problem}]}
        )
    )

    report = parts.sink.deliver()

    assert (report.requests, report.delivered, report.rejected) == (1, 1, 1)
    (entry,) = read_ndjson(parts.dead_path)
    assert (entry["adapter"], entry["entity"]["id"]) == ("lorawan", ent("bin")["id"])

"""adapters.core.outbox: write-ahead durability, strict order per tenant, one tenant per head, all-or-nothing writes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from adapters.core.entities import Entity
from adapters.core.outbox import Outbox, OutboxError


def ent(name: str, *, padding: str = "") -> Entity:
    entity: Entity = {"id": f"urn:ngsi-ld:Device:t:{name}", "type": "Device"}
    if padding:
        entity["description"] = {"type": "Property", "value": padding}
    return entity


def names(entities: list[Entity]) -> list[str]:
    return [entity["id"].rsplit(":", 1)[1] for entity in entities]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "var" / "outbox.sqlite")
    yield box
    box.close()


def test_new_outbox_is_empty_and_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "outbox.sqlite"
    box = Outbox(path)
    try:
        assert path.exists()
        assert box.head(1000, 1_000_000) == []
        assert box.pending_entities() == 0
        status = box.status()
        assert (status.batches, status.entities, status.oldest, status.last_error, status.tenants) == (
            0,
            0,
            None,
            None,
            {},
        )
    finally:
        box.close()


def test_append_then_head_returns_rows_in_order(outbox: Outbox) -> None:
    outbox.append("dortmund", "parking", [[ent("a"), ent("b")], [ent("c")]])
    outbox.append("dortmund", "parking", [[ent("d")]])
    rows = outbox.head(1000, 1_000_000)
    assert [names(row.entities) for row in rows] == [["a", "b"], ["c"], ["d"]]
    assert [row.seq for row in rows] == sorted(row.seq for row in rows)
    assert all((row.tenant, row.source, row.attempts) == ("dortmund", "parking", 0) for row in rows)
    assert outbox.pending_entities() == 4


def test_empty_batches_are_not_stored(outbox: Outbox) -> None:
    outbox.append("dortmund", "parking", [[], [ent("a")], []])
    outbox.append("dortmund", "parking", [])
    assert [names(row.entities) for row in outbox.head(1000, 1_000_000)] == [["a"]]


def test_head_never_mixes_tenants_and_passes_over_other_tenants_rows(outbox: Outbox) -> None:
    outbox.append("dortmund", "parking", [[ent("a")], [ent("b")]])
    outbox.append("unna", "parking", [[ent("c")]])
    outbox.append("dortmund", "parking", [[ent("d")]])
    outbox.append("unna", "parking", [[ent("e")]])

    # The oldest row's tenant first, with all its later rows: unna's row in between does not split it.
    first = outbox.head(1000, 1_000_000)
    assert [(row.tenant, names(row.entities)) for row in first] == [
        ("dortmund", ["a"]),
        ("dortmund", ["b"]),
        ("dortmund", ["d"]),
    ]
    outbox.settle(first, [], None)

    second = outbox.head(1000, 1_000_000)
    assert [(row.tenant, names(row.entities)) for row in second] == [("unna", ["c"]), ("unna", ["e"])]
    outbox.settle(second, [], None)
    assert outbox.head(1000, 1_000_000) == []


def test_head_stops_at_a_row_naming_an_entity_already_in_the_request(outbox: Outbox) -> None:
    """One state per entity per request, and nothing of the tenant after that row may go ahead of it."""
    outbox.append("dortmund", "s", [[ent("a"), ent("b")]])
    outbox.append("unna", "s", [[ent("a")]])  # another tenant's entity of the same name: no conflict
    outbox.append("dortmund", "s", [[ent("c")], [ent("a")], [ent("d")]])
    assert [names(row.entities) for row in outbox.head(1000, 1_000_000)] == [["a", "b"], ["c"]]


def test_pending_rows_keep_their_tenants_place_while_another_tenant_drains(outbox: Outbox) -> None:
    outbox.append("dortmund", "s", [[ent("a")]])
    outbox.append("unna", "s", [[ent("u1")]])
    outbox.append("dortmund", "s", [[ent("b")]])
    rows = outbox.head(1000, 1_000_000)
    outbox.settle(rows, [ent("b")], "503")  # a delivered, b still pending
    after = outbox.head(1000, 1_000_000)
    assert [(row.tenant, names(row.entities)) for row in after] == [("dortmund", ["b"])]  # still the oldest
    outbox.settle(after, [], None)
    assert [(row.tenant, names(row.entities)) for row in outbox.head(1000, 1_000_000)] == [("unna", ["u1"])]


def test_head_respects_the_entity_limit(outbox: Outbox) -> None:
    outbox.append("t", "s", [[ent("a"), ent("b"), ent("c")], [ent("d"), ent("e")], [ent("f")]])
    assert [names(row.entities) for row in outbox.head(5, 1_000_000)] == [["a", "b", "c"], ["d", "e"]]
    assert [names(row.entities) for row in outbox.head(4, 1_000_000)] == [["a", "b", "c"]]


def test_head_returns_at_least_one_row_even_above_the_limits(outbox: Outbox) -> None:
    outbox.append("t", "s", [[ent(str(n)) for n in range(10)], [ent("x")]])
    (row,) = outbox.head(3, 10)
    assert len(row.entities) == 10


def test_head_respects_the_byte_limit_in_utf8_bytes(outbox: Outbox) -> None:
    # Each row holds one entity of about 400 characters but 800 bytes (ü is two bytes in UTF-8).
    outbox.append("t", "s", [[ent(str(n), padding="ü" * 390)] for n in range(6)])
    rows_body_bytes = [
        len(json.dumps(row.entities, ensure_ascii=False, separators=(",", ":")).encode()) for row in outbox.head(1, 10)
    ]
    (one_row,) = rows_body_bytes
    assert one_row > 780
    limit = 2 * one_row + 10
    rows = outbox.head(1000, limit)
    assert len(rows) == 2
    request_bytes = len(
        json.dumps([e for row in rows for e in row.entities], ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert request_bytes <= limit


def test_settle_without_pending_deletes_the_rows(outbox: Outbox) -> None:
    outbox.append("t", "s", [[ent("a")], [ent("b")], [ent("c")]])
    rows = outbox.head(2, 1_000_000)
    assert [names(row.entities) for row in rows] == [["a"], ["b"]]
    outbox.settle(rows, [], None)
    assert [names(row.entities) for row in outbox.head(1000, 1_000_000)] == [["c"]]
    assert outbox.pending_entities() == 1


def test_settle_puts_pending_at_the_first_rows_place_and_nothing_overtakes(outbox: Outbox) -> None:
    outbox.append("t", "s", [[ent("a"), ent("b")], [ent("c")], [ent("d"), ent("e")]])
    outbox.append("t", "s", [[ent("late")]])
    rows = outbox.head(5, 1_000_000)
    assert [names(row.entities) for row in rows] == [["a", "b"], ["c"], ["d", "e"]]
    first_seq = rows[0].seq

    # a delivered, c rejected (dead-lettered elsewhere); b, d, e still pending
    outbox.settle(rows, [ent("b"), ent("d"), ent("e")], "503: unavailable")
    outbox.append("t", "s", [[ent("later")]])

    after = outbox.head(1000, 1_000_000)
    assert [names(row.entities) for row in after] == [["b", "d", "e"], ["late"], ["later"]]
    assert after[0].seq == first_seq
    assert after[0].attempts == 1
    assert outbox.pending_entities() == 5
    status = outbox.status()
    assert status.last_error == "503: unavailable"
    assert status.batches == 3


def test_head_reads_ids_from_their_column_and_settle_keeps_them_with_the_pending_body(outbox: Outbox) -> None:
    outbox.append("t", "s", [[ent("a"), ent("b")], [ent("c")]])
    rows = outbox.head(1000, 1_000_000)
    assert [row.ids for row in rows] == [[ent("a")["id"], ent("b")["id"]], [ent("c")["id"]]]
    outbox.settle(rows, [ent("b"), ent("c")], "503: unavailable")
    (row,) = outbox.head(1000, 1_000_000)
    assert row.ids == [ent("b")["id"], ent("c")["id"]]
    assert names(row.entities) == ["b", "c"]


def test_an_outbox_of_the_previous_version_without_ids_is_read_and_extended(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(
            """
            CREATE TABLE batches (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, source TEXT NOT NULL,
                entity_count INTEGER NOT NULL, body TEXT NOT NULL, enqueued_at TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT
            );
            CREATE INDEX batches_by_tenant ON batches (tenant, seq);
            """
        )
        db.execute(
            "INSERT INTO batches (tenant, source, entity_count, body, enqueued_at) VALUES (?, ?, ?, ?, ?)",
            ("t", "s", 2, json.dumps([ent("a"), ent("b")]), "2026-01-01T00:00:00+00:00"),
        )
        db.commit()
    box = Outbox(path)
    try:
        box.append("t", "s", [[ent("a")]])
        rows = box.head(1000, 1_000_000)
        assert [row.ids for row in rows] == [[ent("a")["id"], ent("b")["id"]]]  # a is named again: not joined
        box.settle(rows, [], None)
        assert [names(row.entities) for row in box.head(1000, 1_000_000)] == [["a"]]
    finally:
        box.close()


def test_settle_nothing_is_a_no_op(outbox: Outbox) -> None:
    outbox.append("t", "s", [[ent("a")]])
    outbox.settle([], [], None)
    assert outbox.pending_entities() == 1


def test_record_error_counts_attempts_and_keeps_rows(outbox: Outbox) -> None:
    outbox.append("t", "s", [[ent("a")], [ent("b")]])
    rows = outbox.head(1000, 1_000_000)
    outbox.record_error(rows, "401 from broker")
    outbox.record_error(rows, "401 again")
    after = outbox.head(1000, 1_000_000)
    assert [row.attempts for row in after] == [2, 2]
    assert [names(row.entities) for row in after] == [["a"], ["b"]]
    assert outbox.status().last_error == "401 again"


def test_status_summarises_the_backlog(outbox: Outbox) -> None:
    before = datetime.now().astimezone()
    outbox.append("unna", "s", [[ent("a"), ent("b")]])
    outbox.append("dortmund", "s", [[ent("c")], [ent("d"), ent("e"), ent("f")]])
    status = outbox.status()
    assert status.path == str(outbox.path)
    assert status.batches == 3
    assert status.entities == 6
    assert status.tenants == {"dortmund": 4, "unna": 2}
    assert status.last_error is None
    assert status.oldest is not None
    oldest = datetime.fromisoformat(status.oldest)
    assert oldest.utcoffset() is not None  # stored with its zone
    assert abs((oldest - before).total_seconds()) < 60


def test_rows_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    box.append("dortmund", "parking", [[ent("a"), ent("ä-umlaut")], [ent("b")]])
    box.settle(box.head(1, 1_000_000), [ent("ä-umlaut")], "timeout")
    box.close()

    reopened = Outbox(path)
    try:
        rows = reopened.head(1000, 1_000_000)
        assert [names(row.entities) for row in rows] == [["ä-umlaut"], ["b"]]
        assert rows[0].attempts == 1
        assert reopened.status().last_error == "timeout"
        reopened.append("dortmund", "parking", [[ent("c")]])
        assert [names(row.entities) for row in reopened.head(1000, 1_000_000)] == [["ä-umlaut"], ["b"], ["c"]]
    finally:
        reopened.close()


def test_outbox_uses_wal_and_full_sync(outbox: Outbox) -> None:
    # synchronous is per connection: FULL (2) on the outbox's own one is what survives power loss.
    (synchronous,) = outbox._db.execute("PRAGMA synchronous").fetchone()
    assert synchronous == 2
    with closing(sqlite3.connect(outbox.path)) as probe:
        (mode,) = probe.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


# --- failures ------------------------------------------------------------------------------------


def _fail_inserts_of(path: Path, tenant: str) -> None:
    """Make the database refuse rows of one tenant, as a full disk refuses a write half-way."""
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON batches WHEN NEW.source = '{tenant}'"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )


def test_failed_append_keeps_nothing_partial(outbox: Outbox) -> None:
    outbox.append("t", "ok", [[ent("before")]])
    _fail_inserts_of(outbox.path, "bad")
    with pytest.raises(OutboxError, match="nothing was accepted"):
        # three batches in one call; the second one fails: the first must not stay either
        outbox.append("t", "bad", [[ent("x")], [ent("y")]])
    assert [names(row.entities) for row in outbox.head(1000, 1_000_000)] == [["before"]]
    # the outbox stays usable after the failure
    outbox.append("t", "ok", [[ent("after")]])
    assert [names(row.entities) for row in outbox.head(1000, 1_000_000)] == [["before"], ["after"]]


def test_failed_settle_keeps_every_row(outbox: Outbox) -> None:
    outbox.append("t", "s", [[ent("a")], [ent("b")], [ent("c")]])
    rows = outbox.head(1000, 1_000_000)
    with closing(sqlite3.connect(outbox.path)) as db:
        db.execute("CREATE TRIGGER refuse BEFORE UPDATE ON batches BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    with pytest.raises(OutboxError):
        outbox.settle(rows, [ent("c")], "boom")  # deletes a, b then updates -> the update fails
    assert [names(row.entities) for row in outbox.head(1000, 1_000_000)] == [["a"], ["b"], ["c"]]


def test_append_to_a_full_database_raises_outbox_error(outbox: Outbox) -> None:
    # max_page_count is per connection, so it has to be set on the outbox's own one: a disk almost full.
    outbox._db.execute("PRAGMA max_page_count = 8")
    with pytest.raises(OutboxError, match="nothing was accepted"):
        outbox.append("t", "s", [[ent(str(n), padding="x" * 4000)] for n in range(20)])
    assert outbox.pending_entities() == 0


def test_unopenable_path_raises_outbox_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(OutboxError, match="cannot open"):
        Outbox(blocker / "outbox.sqlite")


def test_a_directory_in_place_of_the_file_raises_outbox_error(tmp_path: Path) -> None:
    (tmp_path / "outbox.sqlite").mkdir()
    with pytest.raises(OutboxError, match="cannot open"):
        Outbox(tmp_path / "outbox.sqlite")


# --- kill -9 -------------------------------------------------------------------------------------


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from adapters.core.outbox import Outbox

    box = Outbox(Path(sys.argv[1]))
    for n in range(5):
        box.append("dortmund", "parking", [[{"id": f"urn:ngsi-ld:Device:dortmund:{n}", "type": "Device"}]])
    print("appended", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no atexit, no flush of anything
    """
)


def test_committed_rows_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.strip() == "appended"
    box = Outbox(path)
    try:
        rows = box.head(1000, 1_000_000)
        assert [row.entities[0]["id"] for row in rows] == [f"urn:ngsi-ld:Device:dortmund:{n}" for n in range(5)]
        assert box.pending_entities() == 5
    finally:
        box.close()

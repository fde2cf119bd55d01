"""Durable outbox: every entity is committed here before the broker sees it (write-ahead).

SQLite in WAL mode with ``synchronous=FULL``: a committed row survives ``kill -9`` and power loss.
Each tenant's rows are delivered strictly in ``seq`` order; what the broker did not take goes back
into the position of the first row of the attempt, so nothing of that tenant overtakes it. Tenants
are independent of each other (separate stores in the broker), so one tenant's rows never wait for
another's: a backlog in which two tenants alternate still drains in few large requests.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adapters.core.broker import encode_json
from adapters.core.entities import Entity

__all__ = ["Outbox", "OutboxError", "OutboxRow", "OutboxStatus"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    entity_count INTEGER NOT NULL,
    body TEXT NOT NULL,
    enqueued_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    ids TEXT
);
CREATE INDEX IF NOT EXISTS batches_by_tenant ON batches (tenant, seq);
"""


class OutboxError(Exception):
    """The outbox file cannot be written (disk full, read-only, corrupt): nothing was accepted."""


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    tenant: str
    source: str
    ids: list[Any]
    """The entities' ids, in order."""
    attempts: int
    body: str
    """The entities as stored: a compact JSON array, ready to be sent."""

    @property
    def entities(self) -> list[Entity]:
        """Decoded anew on each call: a request the broker takes whole needs the ids only, and a
        backlog's decoded entities held through the request were most of the deliverer's memory."""
        # orjson reads integers beyond 64 bits as floats (json keeps them): no sensor value comes near.
        entities: list[Entity] = orjson.loads(self.body)
        return entities


@dataclass(frozen=True)
class OutboxStatus:
    path: str
    batches: int
    entities: int
    oldest: str | None
    last_error: str | None
    tenants: dict[str, int]


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # Rows are written once and read once, in order: 512 KiB of page cache do (default 2 MiB).
            self._db.execute("PRAGMA cache_size=-512")
            self._db.executescript(_SCHEMA)
            columns = {name for _, name, *_ in self._db.execute("PRAGMA table_info(batches)")}
            if "ids" not in columns:  # an outbox of an earlier version: its rows' ids are read from the body
                self._db.execute("ALTER TABLE batches ADD COLUMN ids TEXT")
        except (OSError, sqlite3.Error) as error:
            raise OutboxError(f"outbox {path}: cannot open: {error}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statements: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Run statements in one transaction; on failure nothing of them is kept."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    self._db.execute(sql, params)
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise OutboxError(f"outbox {self.path}: write failed ({error}); nothing was accepted") from None

    def append(self, tenant: str, source: str, batches: Sequence[Sequence[Entity]]) -> None:
        self.append_encoded(
            tenant,
            source,
            [([entity.get("id") for entity in batch], encode_json(list(batch)).decode("utf-8")) for batch in batches],
        )

    def append_encoded(self, tenant: str, source: str, batches: Sequence[tuple[Sequence[Any], str]]) -> None:
        """``append`` for batches already encoded: (the entities' ids, the batch as a compact JSON array).

        The ids are stored beside the body so that ``head`` need not decode the body to find them."""
        now = datetime.now(UTC).isoformat()
        self._write(
            [
                (
                    "INSERT INTO batches (tenant, source, entity_count, body, enqueued_at, ids)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (tenant, source, len(ids), body, now, encode_json(list(ids)).decode("utf-8")),
                )
                for ids, body in batches
                if ids
            ]
        )

    def head(self, max_entities: int, max_bytes: int) -> list[OutboxRow]:
        """The rows of the next request (at least one row): the oldest row, then the later rows of its
        tenant, in order, as long as they fit and name no entity already in the request.

        Rows of other tenants in between are passed over, not waited for: they go in a request of their
        own. Within the tenant nothing is skipped, so its order holds; and one request carries at most
        one state per entity (Orion-LD would merge the others into one notification).
        """
        rows: list[OutboxRow] = []
        ids: set[Any] = set()
        total_entities = 0
        total_bytes = 2
        with self._lock:
            oldest = self._db.execute("SELECT tenant FROM batches ORDER BY seq LIMIT 1").fetchone()
            if oldest is None:
                return rows
            (tenant,) = oldest
            cursor = self._db.execute(
                "SELECT seq, source, entity_count, body, attempts, ids FROM batches"
                " WHERE tenant = ? ORDER BY seq LIMIT 1000",
                (tenant,),
            )
            for seq, source, count, body, attempts, stored_ids in cursor:
                size = len(body.encode("utf-8"))  # the limit is in bytes; umlauts take two
                if rows and (total_entities + count > max_entities or total_bytes + size > max_bytes):
                    break
                row_ids = orjson.loads(stored_ids) if stored_ids is not None else None
                if row_ids is None or len(row_ids) != count:  # a row of an earlier version
                    row_ids = [entity.get("id") for entity in orjson.loads(body)]
                if rows and not ids.isdisjoint(row_ids):
                    break
                rows.append(OutboxRow(seq, tenant, source, row_ids, attempts, body))
                ids.update(row_ids)
                total_entities += count
                total_bytes += size
            cursor.close()
        return rows

    def settle(self, rows: Sequence[OutboxRow], pending: Sequence[Entity], error: str | None) -> None:
        """Remove delivered rows; what is still pending takes the place of the first row."""
        if not rows:
            return
        first, *others = rows
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("DELETE FROM batches WHERE seq = ?", (row.seq,)) for row in others
        ]
        if pending:
            statements.append(
                (
                    "UPDATE batches SET body = ?, entity_count = ?, ids = ?, attempts = attempts + 1,"
                    " last_error = ? WHERE seq = ?",
                    (
                        encode_json(list(pending)).decode("utf-8"),
                        len(pending),
                        encode_json([entity.get("id") for entity in pending]).decode("utf-8"),
                        error,
                        first.seq,
                    ),
                )
            )
        else:
            statements.append(("DELETE FROM batches WHERE seq = ?", (first.seq,)))
        self._write(statements)

    def record_error(self, rows: Sequence[OutboxRow], error: str) -> None:
        self._write(
            [
                ("UPDATE batches SET attempts = attempts + 1, last_error = ? WHERE seq = ?", (error, row.seq))
                for row in rows
            ]
        )

    def pending_entities(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COALESCE(SUM(entity_count), 0) FROM batches").fetchone()
        return int(count)

    def oldest_age(self) -> float | None:
        """Seconds the oldest waiting batch has been in the outbox; None when it is empty."""
        with self._lock:
            (oldest,) = self._db.execute("SELECT MIN(enqueued_at) FROM batches").fetchone()
        if oldest is None:
            return None
        return (datetime.now(UTC) - datetime.fromisoformat(oldest)).total_seconds()

    def status(self) -> OutboxStatus:
        with self._lock:
            batches, entities, oldest = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(entity_count), 0), MIN(enqueued_at) FROM batches"
            ).fetchone()
            last_error = self._db.execute(
                "SELECT last_error FROM batches WHERE last_error IS NOT NULL ORDER BY seq LIMIT 1"
            ).fetchone()
            tenants = dict(
                self._db.execute(
                    "SELECT tenant, SUM(entity_count) FROM batches GROUP BY tenant ORDER BY tenant"
                ).fetchall()
            )
        return OutboxStatus(str(self.path), batches, entities, oldest, last_error[0] if last_error else None, tenants)

"""Per metering point memory of the meter readings, across polls (SQLite, or in memory).

Two tables: ``meters`` (the last accepted reading, the stretch without gaps, the days being
filled, a rejected reading that may become the new baseline) and ``readings`` (the accepted
readings of the last ``keep_days`` days, so that rows an overlapping export repeats are
recognised and skipped). Changes are staged and written only after the entities they produced are
safe in the sink (``commit``), as :mod:`adapters.core.lorawan.state` does for uplinks: a failed
delivery must not make the re-read rows look already applied. Within a payload the entities a
metering point produced are held until its newest row (``hold``/``flush``), so each id is sent once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

from adapters.buildings.meters import MeterMemory, MeterReading
from adapters.core.entities import Entity

__all__ = ["DEFAULT_KEEP_DAYS", "MeterState"]

DEFAULT_KEEP_DAYS = 40
"""Long enough for a monthly export that re-sends the whole month."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meters (key TEXT PRIMARY KEY, memory TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    key TEXT NOT NULL, time TEXT NOT NULL, serial TEXT NOT NULL, kind TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (key, time, serial, kind)
);
"""

_ReadingKey = tuple[str, str, str, str]


def _reading_key(key: str, reading: MeterReading) -> _ReadingKey:
    return (key, reading.time.isoformat(), reading.serial or "", reading.kind)


class MeterState:
    """SQLite-backed (``path=None``: in memory); one writer at a time."""

    def __init__(self, path: Path | None, *, keep_days: int = DEFAULT_KEEP_DAYS) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(":memory:" if path is None else path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self.keep_days = keep_days
        self._staged: dict[str, MeterMemory] = {}
        self._staged_readings: dict[_ReadingKey, float] = {}
        self._held: dict[str, dict[str, Entity]] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def memory(self, key: str) -> MeterMemory | None:
        with self._lock:
            if key in self._staged:
                return self._staged[key]
            row = self._db.execute("SELECT memory FROM meters WHERE key = ?", (key,)).fetchone()
        return None if row is None else MeterMemory(**json.loads(row[0]))

    def seen(self, key: str, reading: MeterReading) -> float | None:
        """The value of an accepted reading with the same point, time, serial and kind, if any."""
        wanted = _reading_key(key, reading)
        with self._lock:
            if wanted in self._staged_readings:
                return self._staged_readings[wanted]
            row = self._db.execute(
                "SELECT value FROM readings WHERE key = ? AND time = ? AND serial = ? AND kind = ?", wanted
            ).fetchone()
        return None if row is None else float(row[0])

    def stage(self, key: str, memory: MeterMemory, accepted: MeterReading | None) -> None:
        with self._lock:
            self._staged[key] = memory
            if accepted is not None:
                self._staged_readings[_reading_key(key, accepted)] = accepted.value

    def hold(self, key: str, entity: Entity) -> None:
        """Keep an entity of a metering point until the point's newest row of the payload; a later
        entity of the same id replaces it."""
        with self._lock:
            self._held.setdefault(key, {})[entity["id"]] = entity

    def flush(self, key: str) -> list[Entity]:
        """The held entities of a metering point, in the order first held; forgotten afterwards."""
        with self._lock:
            return list(self._held.pop(key, {}).values())

    def commit(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key, memory in self._staged.items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO meters (key, memory) VALUES (?, ?)",
                        (key, json.dumps(asdict(memory), sort_keys=True)),
                    )
                    horizon = (datetime.fromisoformat(memory.time) - timedelta(days=self.keep_days)).isoformat()
                    self._db.execute("DELETE FROM readings WHERE key = ? AND time < ?", (key, horizon))
                for (key, moment, serial, kind), value in self._staged_readings.items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO readings (key, time, serial, kind, value) VALUES (?, ?, ?, ?, ?)",
                        (key, moment, serial, kind, value),
                    )
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
            self._staged.clear()
            self._staged_readings.clear()
            self._held.clear()

    def rollback(self) -> None:
        with self._lock:
            self._staged.clear()
            self._staged_readings.clear()
            self._held.clear()

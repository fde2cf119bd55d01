"""Per-device memory of the LoRaWAN pipeline: what was seen, when, and what each kind keeps.

Used for three rules: a re-delivered uplink (same deduplication key) is dropped; an uplink older
than the device's current state does not overwrite it; an unknown device is dead-lettered once,
then only counted. Changes are staged and written only after the entities they produced are safe
in the outbox (``commit``), so a failed commit cannot make the redelivery look like a duplicate.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

__all__ = ["DeviceMemory", "UplinkState"]

RECENT_KEYS = 64
"""Dedup keys remembered per device: far more than the redeliveries a network server makes."""

CACHED_DEVICES = 1024
"""Committed memories kept in RAM, so most uplinks need no SQLite read (about 10 % of an uplink's
CPU). A device with all its keys takes about 6 KB: this caps the cache near 6 MB."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (dev_eui TEXT PRIMARY KEY, memory TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS unknown_devices (
    dev_eui TEXT PRIMARY KEY, first_seen TEXT NOT NULL, uplinks INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class DeviceMemory:
    observed_at: str | None = None
    """ISO time of the newest uplink applied."""
    recent_keys: tuple[str, ...] = ()
    kind_state: Mapping[str, Any] = field(default_factory=dict)

    def seen(self, key: str) -> bool:
        return key in self.recent_keys

    def after(self, key: str, observed_at: datetime, kind_state: Mapping[str, Any] | None) -> DeviceMemory:
        keys = (*self.recent_keys, key)[-RECENT_KEYS:]
        newest = observed_at
        if self.observed_at is not None:
            newest = max(newest, datetime.fromisoformat(self.observed_at))
        return DeviceMemory(newest.isoformat(), keys, dict(kind_state) if kind_state is not None else self.kind_state)


def _encode(memory: DeviceMemory) -> str:
    document = {
        "observed_at": memory.observed_at,
        "recent_keys": list(memory.recent_keys),
        "kind_state": dict(memory.kind_state),
    }
    try:
        return orjson.dumps(document).decode("utf-8")
    except TypeError:  # what orjson refuses and json takes: non-string keys, integers beyond 64 bits
        return json.dumps(document)


class UplinkState:
    """SQLite-backed (or in memory with ``path=None``); one writer at a time."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(":memory:" if path is None else path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._staged: dict[str, DeviceMemory] = {}
        self._committed: dict[str, DeviceMemory] = {}
        """What is in the file, for the devices seen last."""
        self._data_version = self._file_version()
        self._cache_checked = False
        """Whether the cache was checked against the file since the last commit or rollback."""
        self._staged_unknown: dict[str, str] = {}
        self._unknown_counts: dict[str, int] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def memory(self, dev_eui: str) -> DeviceMemory:
        with self._lock:
            if dev_eui in self._staged:
                return self._staged[dev_eui]
            if not self._cache_checked:
                self._check_cache()
            if dev_eui in self._committed:
                return self._committed[dev_eui]
            row = self._db.execute("SELECT memory FROM devices WHERE dev_eui = ?", (dev_eui,)).fetchone()
            if row is None:
                return DeviceMemory()
            stored = json.loads(row[0])
            memory = DeviceMemory(
                stored.get("observed_at"), tuple(stored.get("recent_keys", ())), stored.get("kind_state", {})
            )
            self._remember(dev_eui, memory)
            return memory

    def _file_version(self) -> int:
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        return int(version)

    def _check_cache(self) -> None:
        """Drop the cache if another process (a replica on the same file) committed since it was filled;
        checked once per batch, so a batch sees the file as it was when the batch began."""
        version = self._file_version()
        if version != self._data_version:
            self._committed.clear()
            self._data_version = version
        self._cache_checked = True

    def _remember(self, dev_eui: str, memory: DeviceMemory) -> None:
        self._committed.pop(dev_eui, None)  # re-inserted last: the oldest entries go first
        self._committed[dev_eui] = memory
        while len(self._committed) > CACHED_DEVICES:
            del self._committed[next(iter(self._committed))]

    def stage(self, dev_eui: str, memory: DeviceMemory) -> None:
        with self._lock:
            self._staged[dev_eui] = memory

    def note_unknown(self, dev_eui: str, now: datetime) -> bool:
        """Count an uplink of an unregistered device; True only the first time it is ever seen."""
        with self._lock:
            self._unknown_counts[dev_eui] = self._unknown_counts.get(dev_eui, 0) + 1
            if dev_eui in self._staged_unknown:
                return False
            known = self._db.execute("SELECT 1 FROM unknown_devices WHERE dev_eui = ?", (dev_eui,)).fetchone()
            if known is not None:
                return False
            self._staged_unknown[dev_eui] = now.isoformat()
            return True

    def unknown_devices(self) -> dict[str, int]:
        """DevEUI -> uplinks received from it (persisted totals plus this run's staged ones)."""
        with self._lock:
            totals = dict(self._db.execute("SELECT dev_eui, uplinks FROM unknown_devices").fetchall())
            for dev_eui, count in self._unknown_counts.items():
                totals[dev_eui] = totals.get(dev_eui, 0) + count
        return totals

    def commit(self) -> None:
        with self._lock:
            # Encoded before the transaction: a value that cannot be encoded must not leave it open.
            memories = [(dev_eui, _encode(memory)) for dev_eui, memory in self._staged.items()]
            unknown = [(eui, self._staged_unknown.get(eui, ""), count) for eui, count in self._unknown_counts.items()]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO devices (dev_eui, memory) VALUES (?, ?)", memories)
                self._db.executemany(
                    "INSERT INTO unknown_devices (dev_eui, first_seen, uplinks) VALUES (?, ?, ?)"
                    " ON CONFLICT(dev_eui) DO UPDATE SET uplinks = uplinks + excluded.uplinks",
                    unknown,
                )
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
            for dev_eui, memory in self._staged.items():
                self._remember(dev_eui, memory)
            self._staged.clear()
            self._staged_unknown.clear()
            self._unknown_counts.clear()
            self._cache_checked = False

    def rollback(self) -> None:
        with self._lock:
            self._staged.clear()
            self._staged_unknown.clear()
            self._unknown_counts.clear()
            self._cache_checked = False

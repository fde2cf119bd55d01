"""Threshold alerts with hysteresis, published as Smart Data Models ``Alert`` entities (dataModel.Alert).

A measured quantity (a river's water level, a sensor's PM10) is watched against a *warning* and an
*alarm* threshold. The level rises as soon as a threshold is reached, but falls back only once the
value is below the threshold by the *hysteresis*: a value wobbling around a threshold raises one
alert, not one per poll. Only changes are published, so subscribers (the city app, warning
channels) get one notification per change:

* ``normal`` -> ``warning`` / ``alarm``: a new ``Alert`` (one entity per episode), severity
  ``medium`` / ``high``, ``validFrom`` = ``dateIssued`` = the measurement time;
* ``warning`` <-> ``alarm``: the same entity, the new severity, ``dateIssued`` = the measurement time;
* back to ``normal``: the same entity, severity ``informational`` and ``validTo`` = the measurement
  time. The official model has no status attribute; ``validTo`` in the past is how an alert ends.

The level of every watched quantity survives restarts in a small SQLite file. Changes are staged
and written only by ``commit``, after the entities they produced are safe in the outbox, so a
failed delivery re-raises the same alert (same id) on the next poll instead of losing it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from adapters.core.entities import Attribute, Entity, make_entity, prop, relationship, utc_iso

__all__ = [
    "SEVERITY",
    "THRESHOLDS_SCHEMA",
    "AlertStore",
    "AlertSubject",
    "Level",
    "Thresholds",
    "check_thresholds",
    "next_level",
    "thresholds_from_settings",
]

Level = Literal["normal", "warning", "alarm"]
_RANK: Mapping[Level, int] = {"normal": 0, "warning": 1, "alarm": 2}
SEVERITY: Mapping[Level, str] = {"normal": "informational", "warning": "medium", "alarm": "high"}

THRESHOLDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "warning": {"type": "number", "exclusiveMinimum": 0, "description": "Warning from this value on."},
        "alarm": {"type": "number", "exclusiveMinimum": 0, "description": "Alarm from this value on."},
        "hysteresis": {
            "type": "number",
            "minimum": 0,
            "description": "A level is left only below its threshold minus this (default: the adapter's).",
        },
    },
    "anyOf": [{"required": ["warning"]}, {"required": ["alarm"]}],
}
"""Config schema of one watched quantity's thresholds (``warning``, ``alarm``, ``hysteresis``)."""


@dataclass(frozen=True)
class Thresholds:
    warning: float | None
    alarm: float | None
    hysteresis: float

    def of(self, level: Level) -> float | None:
        return self.alarm if level == "alarm" else self.warning if level == "warning" else None


def thresholds_from_settings(table: Mapping[str, Any], default_hysteresis: float, where: str) -> Thresholds:
    """One ``[...alerts.<station>]`` table; ValueError names the key when the numbers contradict each other."""
    warning, alarm = table.get("warning"), table.get("alarm")
    thresholds = Thresholds(
        warning=None if warning is None else float(warning),
        alarm=None if alarm is None else float(alarm),
        hysteresis=float(table.get("hysteresis", default_hysteresis)),
    )
    if thresholds.warning is not None and thresholds.alarm is not None and thresholds.alarm <= thresholds.warning:
        raise ValueError(f"{where}: alarm {thresholds.alarm:g} must be above warning {thresholds.warning:g}")
    lowest = thresholds.warning if thresholds.warning is not None else thresholds.alarm
    if lowest is not None and thresholds.hysteresis >= lowest:
        # The value could never fall below threshold - hysteresis (<= 0): the alert would never end.
        raise ValueError(f"{where}: hysteresis {thresholds.hysteresis:g} must be below the lowest threshold {lowest:g}")
    return thresholds


def check_thresholds(tables: Iterable[tuple[str, Mapping[str, Any]]], default_hysteresis: float) -> None:
    """Every configured thresholds table, checked at start; ValueError lists all problems at once."""
    problems = []
    for where, table in tables:
        try:
            thresholds_from_settings(table, default_hysteresis, where)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise ValueError("; ".join(problems))


def _reached(value: float, thresholds: Thresholds) -> Level:
    if thresholds.alarm is not None and value >= thresholds.alarm:
        return "alarm"
    if thresholds.warning is not None and value >= thresholds.warning:
        return "warning"
    return "normal"


def next_level(current: Level, value: float, thresholds: Thresholds) -> Level:
    """Rising takes effect at the threshold; falling only below threshold - hysteresis (no flapping)."""
    reached = _reached(value, thresholds)
    if _RANK[reached] >= _RANK[current]:
        return reached
    for level in ("alarm", "warning"):
        threshold = thresholds.of(level)
        # Rounded: 3.0 - 0.1 must be the 2.9 a person configured, not 2.8999999999999995.
        if (
            _RANK[level] <= _RANK[current]
            and threshold is not None
            and value >= round(threshold - thresholds.hysteresis, 9)
        ):
            return level
    return "normal"


@dataclass(frozen=True)
class AlertSubject:
    """What is watched: the quantity of one observed entity, and how an alert about it reads."""

    key: str
    """Stable, unique within the tenant, e.g. ``waterLevel-<station uuid>``; the alert ids start with it."""
    source_id: str
    """Entity id of the observation (``alertSource``)."""
    label: str
    """Where, for people: ``HATTINGEN (RUHR)``."""
    quantity: str
    """Attribute name of the watched value, e.g. ``waterLevel``."""
    quantity_label: str
    unit_code: str
    unit_text: str
    category: str
    sub_category: str
    location: Attribute


@dataclass(frozen=True)
class _Memory:
    level: Level = "normal"
    observed_at: str | None = None
    """ISO time of the newest measurement applied: an older one never changes the level."""
    episode: str | None = None
    """ISO time the current alert began (its ``validFrom`` and part of its id); None while normal."""
    issued: str | None = None
    """ISO time of the newest change of severity (``dateIssued``)."""


_SCHEMA = "CREATE TABLE IF NOT EXISTS alert_levels (key TEXT PRIMARY KEY, memory TEXT NOT NULL);"


class AlertStore:
    """The level of every watched quantity: SQLite-backed, or in memory with ``path=None``.

    It is the adapter's ``Resources``: the runner calls ``commit`` once the poll's entities are in
    the outbox, ``rollback`` when they are not, and ``close`` after either.
    """

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(":memory:" if path is None else path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.RLock()
        self._staged: dict[str, _Memory] = {}

    def _memory(self, key: str) -> _Memory:
        with self._lock:
            if key in self._staged:
                return self._staged[key]
            row = self._db.execute("SELECT memory FROM alert_levels WHERE key = ?", (key,)).fetchone()
        return _Memory() if row is None else _Memory(**json.loads(row[0]))

    def level(self, tenant: str, subject_key: str) -> Level:
        """The current level of a watched quantity (staged changes included)."""
        return self._memory(f"{tenant}:{subject_key}").level

    def observe(
        self,
        subject: AlertSubject,
        value: float,
        observed_at: datetime,
        thresholds: Thresholds,
        *,
        tenant: str,
        data_provider: str,
    ) -> Entity | None:
        """Apply one measurement; the ``Alert`` entity to upsert when the level changed, else None."""
        if not math.isfinite(value):
            return None
        key = f"{tenant}:{subject.key}"
        memory = self._memory(key)
        stamp = utc_iso(observed_at)
        if memory.observed_at is not None and datetime.fromisoformat(memory.observed_at) >= observed_at:
            return None  # the same measurement polled again, or an older one arriving late
        level = next_level(memory.level, value, thresholds)
        if level == memory.level:
            self._stage(key, replace(memory, observed_at=stamp))
            return None
        if memory.level == "normal":
            after = _Memory(level, stamp, stamp, stamp)
        elif level == "normal":
            after = _Memory(level, stamp, None, None)
        else:
            after = _Memory(level, stamp, memory.episode, stamp)
        self._stage(key, after)
        episode = memory.episode if level == "normal" else after.episode
        issued = memory.issued if level == "normal" else after.issued
        assert episode is not None and issued is not None  # a change always has or starts an episode
        return _alert_entity(
            subject,
            tenant=tenant,
            level=level,
            previous=memory.level,
            value=value,
            thresholds=thresholds,
            observed_at=observed_at,
            episode=episode,
            issued=issued,
            data_provider=data_provider,
        )

    def _stage(self, key: str, memory: _Memory) -> None:
        with self._lock:
            self._staged[key] = memory

    def commit(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key, memory in self._staged.items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO alert_levels (key, memory) VALUES (?, ?)",
                        (key, json.dumps(memory.__dict__)),
                    )
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
            self._staged.clear()

    def rollback(self) -> None:
        with self._lock:
            self._staged.clear()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _number(value: float) -> str:
    return f"{value:.2f}"


def _description(subject: AlertSubject, level: Level, previous: Level, value: float, thresholds: Thresholds) -> str:
    """One sentence for people (app notification, warning channel), numbers with their unit."""
    measured = f"{subject.quantity_label} {_number(value)} {subject.unit_text} at {subject.label}"
    if level == "normal":
        lowest: Level = "warning" if thresholds.warning is not None else "alarm"
        threshold = thresholds.of(lowest) or 0.0
        return (
            f"{measured} is back below the {lowest} level {_number(threshold)} {subject.unit_text} "
            f"(by more than the hysteresis {_number(thresholds.hysteresis)} {subject.unit_text}): alert ended."
        )
    threshold = thresholds.of(level) or 0.0
    verb = "reached" if _RANK[level] > _RANK[previous] else "fell back to"
    return f"{measured} {verb} the {level} level {_number(threshold)} {subject.unit_text}."


def _alert_entity(
    subject: AlertSubject,
    *,
    tenant: str,
    level: Level,
    previous: Level,
    value: float,
    thresholds: Thresholds,
    observed_at: datetime,
    episode: str,
    issued: str,
    data_provider: str,
) -> Entity:
    started = datetime.fromisoformat(episode)
    # No key of the NGSI-LD core @context (value, unitCode, ...): a compound value's keys are terms too.
    data: dict[str, Any] = {"quantity": subject.quantity, "measured": value, "unit": subject.unit_code}
    if thresholds.warning is not None:
        data["warningLevel"] = thresholds.warning
    if thresholds.alarm is not None:
        data["alarmLevel"] = thresholds.alarm
    data["hysteresis"] = thresholds.hysteresis
    attributes: dict[str, Attribute] = {
        "category": prop(subject.category),
        "subCategory": prop(subject.sub_category),
        "severity": prop(SEVERITY[level], observed_at=observed_at),
        "alertSource": relationship(subject.source_id),
        "dateIssued": prop(issued),
        "validFrom": prop(episode),
    }
    if level == "normal":
        attributes["validTo"] = prop(utc_iso(observed_at))
    attributes["location"] = subject.location
    attributes["description"] = prop(_description(subject, level, previous, value, thresholds), observed_at=observed_at)
    attributes["data"] = prop(data, observed_at=observed_at)
    attributes["dataProvider"] = prop(data_provider)
    return make_entity("Alert", tenant, f"{subject.key}-{started:%Y%m%dT%H%M%SZ}", attributes)

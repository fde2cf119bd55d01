"""Figures of the fault-injection tests, for ``scripts/fault_table.py`` (docs/reliability.md).

A fault test calls :func:`record_fault` with what it counted. Nothing happens unless the environment
variable ``FAULT_TABLE_FILE`` names a file: then one JSON line per fault is appended to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["record_fault"]


def record_fault(
    fault: str,
    *,
    sent: int,
    delivered: int,
    dead_lettered: int,
    duplicates: int,
    unit: str = "readings",
    seconds: float | None = None,
    note: str = "",
) -> int:
    """Append one row of the fault table; returns the readings lost (sent - delivered - dead-lettered)."""
    lost = sent - delivered - dead_lettered
    target = os.environ.get("FAULT_TABLE_FILE")
    if target:
        row = {
            "fault": fault,
            "unit": unit,
            "sent": sent,
            "delivered": delivered,
            "dead_lettered": dead_lettered,
            "duplicates": duplicates,
            "lost": lost,
            "seconds": None if seconds is None else round(seconds, 2),
            "note": note,
        }
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")
    return lost

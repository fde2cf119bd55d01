#!/usr/bin/env python3
"""The fault table of docs/reliability.md: runs the fault-injection tests and prints what they counted.

Each fault is a test under tests/e2e (parking, over HTTP) or tests/e2e_lorawan (LoRaWAN uplinks over
a real mosquitto); each counts what went in and what came out and, when ``FAULT_TABLE_FILE`` is set,
appends its figures there (``adapters.testing.fault_log.record_fault``). This script runs those tests
with pytest (bounded: about 1.5 minutes), then prints the table as markdown and the figures as one
JSON object. Exit status 1 if a test failed or a fault lost anything.

    .venv/bin/python scripts/fault_table.py                 # markdown, then JSON
    .venv/bin/python scripts/fault_table.py --json-file faults.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/e2e/test_e2e_faults.py",
    "tests/e2e_lorawan/test_mqtt_crash.py",
    "tests/e2e_lorawan/test_mqtt_faults.py",
]
COLUMNS = ["fault", "unit", "sent", "delivered", "dead_lettered", "duplicates", "lost", "seconds", "note"]
HEADERS = ["fault", "unit", "sent", "delivered", "dead-lettered", "duplicates", "lost", "wall s", "note"]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, object]:
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "cpu": _cpu(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def markdown(rows: list[dict[str, object]]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows:
        cells = ["" if row.get(key) is None else str(row[key]) for key in COLUMNS]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json-file", type=Path, help="also write the JSON object to this file")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fault-table-") as scratch:
        figures = Path(scratch) / "faults.ndjson"
        env = dict(os.environ, FAULT_TABLE_FILE=str(figures))
        started_machine = machine()
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )
        elapsed = time.monotonic() - started
        rows = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []

    report = {
        "machine": started_machine,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "pytest_exit": result.returncode,
        "wall_seconds": round(elapsed, 1),
        "faults": rows,
        "total_lost": sum(int(row["lost"]) for row in rows),
    }
    print(markdown(rows))
    print()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if arguments.json_file:
        arguments.json_file.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if result.returncode != 0:
        print(result.stdout[-5000:], file=sys.stderr)
    return 0 if result.returncode == 0 and report["total_lost"] == 0 and rows else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The fault table of docs/reliability.md: runs the fault-injection tests and prints what they counted.

Each fault is a test under tests/e2e (parking, over HTTP) or tests/e2e_lorawan (LoRaWAN uplinks over
a real mosquitto); each counts what went in and what came out and, when ``FAULT_TABLE_FILE`` is set,
appends its figures there (``adapters.testing.fault_log.record_fault``). This script runs those tests
with pytest, the two folders in two pytest processes side by side (each holds one 30 s broker outage,
and nothing is shared between them but the CPU), bounded at 10 minutes, about one in practice. It then
prints the table as markdown and the figures as one JSON object. Exit status 1 if a test failed or a
fault lost anything.

    .venv/bin/python scripts/fault_table.py                 # markdown, then JSON
    .venv/bin/python scripts/fault_table.py --json-file faults.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Groups of test files, one pytest process each, run side by side; the table keeps this order.
TEST_GROUPS = [
    ["tests/e2e/test_e2e_faults.py"],
    ["tests/e2e_lorawan/test_mqtt_crash.py", "tests/e2e_lorawan/test_mqtt_faults.py"],
]
TIMEOUT_SECONDS = 600
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
        cells[COLUMNS.index("lost")] = f"**{row['lost']}**"  # the column that must be 0
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def run_groups(scratch: Path) -> tuple[list[int], list[str], list[dict[str, Any]]]:
    """Run the test groups side by side; their exit codes, the output tail of each failed group, the rows.

    Each pytest runs in a session of its own, so a timeout ends it together with the adapters,
    brokers and mosquittos it started (killed as one process group).
    """
    runs = []
    try:
        for number, tests in enumerate(TEST_GROUPS):
            output = (scratch / f"pytest-{number}.log").open("w+", encoding="utf-8")
            figures = scratch / f"faults-{number}.ndjson"
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                cwd=ROOT,
                env=dict(os.environ, FAULT_TABLE_FILE=str(figures)),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            runs.append((process, output, figures))
        deadline = time.monotonic() + TIMEOUT_SECONDS
        exits: list[int] = []
        failures: list[str] = []
        rows: list[dict[str, Any]] = []
        for process, output, figures in runs:
            try:
                exits.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                exits.append(process.wait())
            if exits[-1] != 0:
                output.seek(0)
                failures.append(output.read()[-5000:])
            if figures.exists():
                rows.extend(json.loads(line) for line in figures.read_text().splitlines())
        return exits, failures, rows
    finally:
        for process, output, _ in runs:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            output.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json-file", type=Path, help="also write the JSON object to this file")
    arguments = parser.parse_args()

    started_machine = machine()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fault-table-") as scratch:
        exits, failures, rows = run_groups(Path(scratch))
    elapsed = time.monotonic() - started

    report = {
        "machine": started_machine,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "pytest_exits": exits,
        "wall_seconds": round(elapsed, 1),
        "faults": rows,
        "total_lost": sum(int(row["lost"]) for row in rows),
    }
    print(markdown(rows))
    print()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if arguments.json_file:
        arguments.json_file.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 0 if not failures and report["total_lost"] == 0 and rows else 1


if __name__ == "__main__":
    sys.exit(main())

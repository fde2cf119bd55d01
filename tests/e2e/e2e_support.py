"""End-to-end machinery: a fake Opendatasoft portal, a watched broker double, configs, the real CLI.

Everything talks real HTTP on 127.0.0.1: the installed ``dos-adapters`` console script runs as a
subprocess against a fake open-data portal (:class:`adapters.testing.fake_source.FakeSource`) serving
the recorded parking payload, or a live feed made from it, and against the broker double. Every wait
is a poll loop with a deadline; every server and process is stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest

import adapters.parking
from adapters.core.adapter import discover_adapters
from adapters.testing import BrokerDouble, RecordedRequest
from adapters.testing.config_toml import config_toml
from adapters.testing.fake_source import FakeSource
from adapters.testing.waiting import wait_until as wait_until  # re-exported for the tests

SAMPLES = Path(adapters.parking.__file__).parent / "samples"
RECORDS_PAYLOAD = SAMPLES / "parkhauser-records.json"
EXPORT_PAYLOAD = SAMPLES / "parkhauser-export.json"
RECORDS_PATH = "/api/explore/v2.1/catalog/datasets/parkhauser/records"
EXPORT_PATH = "/api/explore/v2.1/catalog/datasets/parkhauser/exports/json"
CONTEXT_URL = "http://context.test/ngsi-ld/dos-adapters.jsonld"

#: What the recorded payload holds: 24 garages, one of them (101099) without coordinates.
RECORDS_IN = 24
VALID_GARAGES = 23
GARAGE_WITHOUT_COORDINATES = "101099"

LOCAL_TIME = ZoneInfo("Europe/Berlin")  # the feed's ``stand``

CLI = shutil.which("dos-adapters", path=os.path.dirname(sys.executable))
CLI_TIMEOUT = 30.0


def garage_id(tenant: str, feed_id: str) -> str:
    return f"urn:ngsi-ld:OffStreetParking:{tenant}:{feed_id}"


def expected_ids(tenant: str) -> set[str]:
    records = json.loads(RECORDS_PAYLOAD.read_bytes())["results"]
    return {garage_id(tenant, r["id"]) for r in records if r["id"] != GARAGE_WITHOUT_COORDINATES}


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for a server the adapter process opens itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------ fake Opendatasoft portal


class FakeOpendatasoft(FakeSource):
    """The Explore API v2.1 of open-data.dortmund.de for dataset ``parkhauser``, from the recorded payloads.

    Sends a strong ``ETag`` per document and answers ``If-None-Match`` with 304, as Opendatasoft does.
    """

    def __init__(self) -> None:
        super().__init__(
            {RECORDS_PATH: RECORDS_PAYLOAD.read_bytes(), EXPORT_PATH: EXPORT_PAYLOAD.read_bytes()},
            content_type="application/json; charset=utf-8",
            name="fake-opendatasoft",
        )

    @property
    def records_url(self) -> str:
        return self.url(RECORDS_PATH)

    @property
    def export_url(self) -> str:
        return self.url(EXPORT_PATH)


#: The first poll's time in :class:`LiveParkhauser`; each later poll is one minute on.
LIVE_START = datetime(2026, 11, 23, 6, 0, 0, tzinfo=UTC)


class LiveParkhauser:
    """The recorded garages as a live feed: a document for :class:`FakeOpendatasoft` that is a new
    state of every garage at each request, so each poll is new for the broker and for QuantumLeap.

    Poll ``n`` (from 0) stamps every garage with ``LIVE_START + n`` minutes (``zeitstempel``, and ``stand``
    in local time) and gives each garage with a capacity a new free count. ``polls`` holds what each
    served document said: (garage entity id, observed time) per record, in the order served.
    """

    def __init__(self, tenant: str = "dortmund") -> None:
        self._records: list[dict[str, Any]] = json.loads(RECORDS_PAYLOAD.read_bytes())["results"]
        self._tenant = tenant
        self._lock = threading.Lock()
        self.polls: list[list[tuple[str, datetime]]] = []

    def __call__(self) -> bytes:
        with self._lock:
            poll = len(self.polls)
            moment = LIVE_START + timedelta(minutes=poll)
            records = []
            for index, recorded in enumerate(self._records):
                record = dict(recorded, zeitstempel=moment.isoformat(), zeitstempel_status="Daten aktuell")
                record["stand"] = moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M:%S")
                if record["capacity"]:
                    record["frei"] = (7 * poll + 13 * index) % (record["capacity"] + 1)
                records.append(record)
            self.polls.append([(garage_id(self._tenant, r["id"]), moment) for r in records])
        return json.dumps({"total_count": len(records), "results": records}).encode()

    def states(self) -> set[tuple[str, datetime]]:
        """Every garage state served so far."""
        with self._lock:
            return {state for poll in self.polls for state in poll}


# ---------------------------------------------------------------------------------- broker


class ArrivalWatchingDouble(BrokerDouble):
    """The broker double, telling when a request has *arrived* (its request log fills only once a
    request is answered, and a delayed answer is what the crash tests need to interrupt)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrived = threading.Event()

    def _answer(self, request: Any, too_large: bool) -> Any:
        self.arrived.set()
        return super()._answer(request, too_large)


UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"


def upserts(double: BrokerDouble) -> list[RecordedRequest]:
    """The batch upserts the double received, oldest first, whatever it answered."""
    return [r for r in double.requests if r.method == "POST" and r.path == UPSERT_PATH]


def delivered_ids(double: BrokerDouble) -> Counter[str]:
    """How often each entity id was in an upsert the double took whole (201 or 204).

    A 207 is left out: which of its entities failed is in the response, not in the request log.
    """
    counts: Counter[str] = Counter()
    for request in upserts(double):
        if request.status in (201, 204):
            counts.update(entity["id"] for entity in request.json())
    return counts


# ------------------------------------------------------------------------------ configuration


@dataclass
class Site:
    """One deployment directory: its config file, outbox, output and dead-letter files."""

    root: Path
    config: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "dos-adapters.toml"

    @property
    def outbox(self) -> Path:
        return self.root / "var" / "outbox.sqlite"

    @property
    def output(self) -> Path:
        return self.root / "out" / "entities.ndjson"

    @property
    def dead_letter(self) -> Path:
        return self.root / "out" / "dead-letter.ndjson"

    def write_config(
        self,
        *,
        broker_url: str | None,
        source_url: str,
        broker: Mapping[str, Any] | None = None,
        parking: Mapping[str, Any] | None = None,
        **sections: Mapping[str, Any],
    ) -> Path:
        """A complete config: broker (if any) with the test @context, files in this site, parking
        polling ``source_url`` hourly without jitter; ``broker`` and ``parking`` add or override keys,
        ``sections`` add or override keys of other sections (``outbox={...}``, ``metrics={...}``)."""
        document: dict[str, dict[str, Any]] = {
            "broker": {
                **({"url": broker_url} if broker_url else {}),
                "context": CONTEXT_URL,
                "timeout": 10,
                **(broker or {}),
            },
            "outbox": {"path": self.outbox, "max_backoff": 5},
            "output": {"path": self.output},
            "dead_letter": {"path": self.dead_letter},
            "log": {"level": "INFO"},
            "adapters.parking": {"url": source_url, "interval": 3600, "jitter": 0, "timeout": 10, **(parking or {})},
            # Only the slice under test runs, whatever other adapters are installed and on by default.
            **{f"adapters.{name}": {"enabled": False} for name in discover_adapters() if name != "parking"},
        }
        for name, keys in sections.items():
            document[name] = {**document.get(name, {}), **keys}
        self.config.write_text(config_toml(document), encoding="utf-8")
        return self.config


# ---------------------------------------------------------------------------------- the CLI


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def cli_env(**overrides: str) -> dict[str, str]:
    """The test runner's environment without any DOS_* setting, plus ``overrides``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DOS_")}
    env.update(overrides)
    return env


class Cli:
    """Runs the installed ``dos-adapters`` script; processes still running at teardown are killed."""

    def __init__(self, cwd: Path) -> None:
        if CLI is None:
            pytest.fail(f"dos-adapters console script not found next to {sys.executable}: pip install -e .")
        self.cwd = cwd
        self._processes: list[subprocess.Popen[str]] = []

    def start(self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [str(CLI), *args],
            cwd=cwd or self.cwd,
            env=dict(env) if env is not None else cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
        )
        self._processes.append(process)
        return process

    def start_logged(self, *args: str, log: Path) -> subprocess.Popen[str]:
        """Like :meth:`start`, for a long run: stdout and stderr go to the file ``log``, as a pipe
        that nobody reads while the process runs would fill up and block it."""
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(CLI), *args],
                cwd=self.cwd,
                env=cli_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                encoding="utf-8",
            )
        self._processes.append(process)
        return process

    @staticmethod
    def finish(process: subprocess.Popen[str], timeout: float = CLI_TIMEOUT) -> CliResult:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            pytest.fail(f"{process.args} did not finish within {timeout:.0f} s\nstdout:\n{stdout}\nstderr:\n{stderr}")
        return CliResult(process.returncode, stdout, stderr)

    def __call__(
        self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT
    ) -> CliResult:
        return self.finish(self.start(*args, cwd=cwd, env=env), timeout)

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            if process.stdout is not None and not process.stdout.closed:
                process.communicate()  # drains and closes its pipes
            process.wait()


# ------------------------------------------------------------------------------ CLI output

_SUMMARY = re.compile(
    r"^(?P<adapter>\S+) \[(?P<source>\S+) -> tenant (?P<tenant>\S+)\]: (?P<records>\d+) records read, "
    r"(?P<entities>\d+) entities written, (?P<rejected>\d+) rejected \((?P<state>[^)]*)\)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Summary:
    """One adapter's line of the ``run --once`` summary."""

    adapter: str
    source: str
    tenant: str
    records: int
    entities: int
    rejected: int
    state: str


def summaries(stdout: str) -> list[Summary]:
    return [
        Summary(
            m["adapter"],
            m["source"],
            m["tenant"],
            int(m["records"]),
            int(m["entities"]),
            int(m["rejected"]),
            m["state"],
        )
        for m in _SUMMARY.finditer(stdout)
    ]


def outbox_status(cli: Cli, site: Site) -> dict[str, Any]:
    """``dos-adapters outbox status`` of the site, parsed."""
    result = cli("outbox", "status", "--config", str(site.config))
    assert result.returncode == 0, result.stderr
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def record_parking_fault(fault: str, double: BrokerDouble, site: Site, *, note: str = "") -> int:
    """One row of the fault table for a parking run: the 24 records in, garages in the broker, dead
    letters (by record or by entity), repeats of a garage in accepted upserts; returns the lost."""
    from adapters.testing.fault_log import record_fault

    repeats = sum(count - 1 for count in delivered_ids(double).values())
    return record_fault(
        fault,
        sent=RECORDS_IN,
        delivered=len(double.entities("dortmund")),
        dead_lettered=len(read_ndjson(site.dead_letter)),
        duplicates=repeats,
        unit="records",
        note=note,
    )

"""End-to-end machinery for the environment adapters: fake PEGELONLINE / sensor.community / Bright Sky
on 127.0.0.1, a deployment directory with its config, and the installed ``dos-adapters`` script.

The fake sources are one :class:`adapters.testing.fake_source.FakeSource` serving the recorded payloads
with a strong ``ETag`` (and 304 on ``If-None-Match``); a test can queue faults per path (``Fault``): an
error status with ``Retry-After``, a slow answer, a truncated body.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from adapters.core.adapter import discover_adapters
from adapters.testing import BrokerDouble, RecordedRequest
from adapters.testing.config_toml import config_toml
from adapters.testing.fake_source import FakeSource
from adapters.testing.fake_source import Fault as Fault  # re-exported for the tests

ROOT = Path(__file__).resolve().parents[2] / "adapters"
PEGELONLINE_PATH = "/webservices/rest-api/v2/stations.json"
SENSOR_COMMUNITY_PATH = "/airrohr/v1/filter/area=51.48,7.515,16"
BRIGHTSKY_PATH = "/current_weather"
PAYLOADS = {
    PEGELONLINE_PATH: ROOT / "waterlevel" / "samples" / "pegelonline-stations.json",
    SENSOR_COMMUNITY_PATH: ROOT / "airquality" / "samples" / "sensor-community-area.json",
    BRIGHTSKY_PATH: ROOT / "weather" / "samples" / "brightsky-current-weather.json",
}
CONTEXT_URL = "http://context.test/ngsi-ld/dos-adapters.jsonld"
CLI = shutil.which("dos-adapters", path=os.path.dirname(sys.executable))
CLI_TIMEOUT = 30.0
UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"


class FakeSources(FakeSource):
    """The three public endpoints on one local server, each path serving its recorded payload."""

    def __init__(self) -> None:
        super().__init__({path: file.read_bytes() for path, file in PAYLOADS.items()}, name="fake-sources")


# ------------------------------------------------------------------------------ deployment


@dataclass
class Site:
    """One deployment directory: config, outbox, output, dead letters and the adapters' state files."""

    root: Path

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def config(self) -> Path:
        return self.root / "dos-adapters.toml"

    @property
    def dead_letter(self) -> Path:
        return self.root / "out" / "dead-letter.ndjson"

    def write_config(self, broker_url: str, adapters: Mapping[str, Mapping[str, Any]]) -> Path:
        """The broker with the test @context; ``adapters`` enabled with the given keys, every other
        installed adapter off, so only the slice under test runs."""
        sections: dict[str, Mapping[str, Any]] = {
            "broker": {"url": broker_url, "context": CONTEXT_URL, "timeout": 10},
            "outbox": {"path": self.root / "var" / "outbox.sqlite", "max_backoff": 5},
            "output": {"path": self.root / "out" / "entities.ndjson"},
            "dead_letter": {"path": self.dead_letter},
            **{f"adapters.{name}": {"enabled": False} for name in discover_adapters() if name not in adapters},
        }
        for name, keys in adapters.items():
            sections[f"adapters.{name}"] = {"enabled": True, "interval": 3600, "jitter": 0, "timeout": 5, **keys}
        self.config.write_text(config_toml(sections), encoding="utf-8")
        return self.config


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path, timeout: float = CLI_TIMEOUT) -> CliResult:
    """The installed script, without any DOS_* variable of the test runner's environment."""
    if CLI is None:
        pytest.fail(f"dos-adapters console script not found next to {sys.executable}: pip install -e .")
    env = {name: value for name, value in os.environ.items() if not name.startswith("DOS_")}
    process = subprocess.Popen(
        [CLI, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        encoding="utf-8", errors="replace",
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{args} did not finish within {timeout:.0f} s\nstdout:\n{stdout}\nstderr:\n{stderr}")
    return CliResult(process.returncode, stdout, stderr)


_SUMMARY = re.compile(
    r"^(?P<adapter>\S+) \[(?P<source>\S+) -> tenant (?P<tenant>\S+)\]: (?P<records>\d+) records read, "
    r"(?P<entities>\d+) entities written, (?P<rejected>\d+) rejected \((?P<state>.*)\)$",
    re.MULTILINE,
)


def summaries(stdout: str) -> dict[str, tuple[int, int, int, str]]:
    """Adapter -> (records read, entities written, rejected, state) from the ``run --once`` summary."""
    return {
        m["adapter"]: (int(m["records"]), int(m["entities"]), int(m["rejected"]), m["state"])
        for m in _SUMMARY.finditer(stdout)
    }


def upserts(broker: BrokerDouble) -> list[RecordedRequest]:
    return [r for r in broker.requests if r.method == "POST" and r.path == UPSERT_PATH]


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

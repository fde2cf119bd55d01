"""End-to-end machinery of the LoRaWAN push intake: a real mosquitto, uplinks in the network servers'
real formats, a QoS 1 publisher, the adapter as a subprocess, and what the broker double received.

Everything is real except Orion-LD: mosquitto on 127.0.0.1, the installed ``dos-adapters`` script,
SQLite, the webhook over HTTP. Every wait is a poll loop with a deadline; every process started here
is stopped by whoever started it (fixtures), never by name.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.core.adapter import discover_adapters
from adapters.core.outbox import Outbox
from adapters.testing import BrokerDouble
from adapters.testing.config_toml import config_toml
from adapters.testing.waiting import wait_until as wait_until  # re-exported for the tests

CLI = shutil.which("dos-adapters", path=os.path.dirname(sys.executable))
#: Debian/Ubuntu install the broker as /usr/sbin/mosquitto, outside an ordinary user's PATH.
MOSQUITTO = os.environ.get("MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CONTEXT_URL = "http://context.test/ngsi-ld/dos-adapters.jsonld"
UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
BASE_TIME = datetime(2024, 11, 5, 6, 0, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------ mosquitto


class Mosquitto:
    """One mosquitto process on 127.0.0.1 with a generated config; restartable on the same port.

    ``max_inflight`` is mosquitto's ``max_inflight_messages``: QoS 1 messages sent to one client and
    not yet PUBACKed (default 20, 0 = unlimited). The adapter PUBACKs only after the outbox commit,
    so this window decides how many uplinks can be in one micro-batch.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        persistence: bool = False,
        max_inflight: int = 0,
        max_queued: int = 100_000,
    ) -> None:
        if not os.access(MOSQUITTO, os.X_OK):
            pytest.fail(
                f"mosquitto not found at {MOSQUITTO}: install it (Debian: apt-get install mosquitto) "
                "or set MOSQUITTO to its path"
            )
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.persistence = persistence
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # Started as root (containers), mosquitto would switch to the user 'mosquitto', which
            # cannot write the persistence file here; ignored when not started as root.
            f"user {getpass.getuser()}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"max_inflight_messages {self.max_inflight}",
            f"max_queued_messages {self.max_queued}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start(self) -> Mosquitto:
        self._write_config()
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 10
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mosquitto did not start on port {self.port}:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.02)
        return self

    def stop(self) -> int | None:
        """SIGTERM (mosquitto saves its persistence file on the way out); the exit code."""
        return self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def restart(self) -> None:
        """Stop and start again on the same port, with the same config."""
        self.stop()
        self.start()


# ---------------------------------------------------------------------------------- sensors


@dataclass(frozen=True)
class Sensor:
    """A waste-bin fill-level sensor as the device registry lists it."""

    dev_eui: str
    model: str  # milesight-em310-udl | decentlab-dl-mbx
    entity_id: str
    tenant: str
    name: str
    lon: float
    lat: float
    empty_mm: int
    full_mm: int
    waste_kind: str

    @property
    def container_id(self) -> str:
        return f"urn:ngsi-ld:WasteContainer:{self.tenant}:{self.entity_id}"

    @property
    def device_id(self) -> str:
        return f"urn:ngsi-ld:Device:{self.tenant}:{self.dev_eui.upper()}"

    @property
    def f_port(self) -> int:
        return 85 if self.model == "milesight-em310-udl" else 1

    def distance_for(self, percent: int) -> int:
        """The distance (mm) that means exactly ``percent`` % full for this bin's geometry."""
        span = self.empty_mm - self.full_mm
        assert span % 100 == 0, "geometry chosen so every whole percent is a whole mm"
        return self.empty_mm - span // 100 * percent


REGISTRY_COLUMNS = "dev_eui,model,kind,entity_id,tenant,name,lon,lat,empty_distance_mm,full_distance_mm,waste_kind"


def fleet(per_tenant: int = 10, tenants: Sequence[str] = ("dortmund", "schwerte")) -> list[Sensor]:
    """EM310-UDL and DL-MBX bins, alternating, ``per_tenant`` in each tenant (DevEUIs as the vendors
    assign them: Milesight 24E124…, Decentlab 70B3D57BA…)."""
    sensors = []
    towns = {"dortmund": (7.465, 51.514), "schwerte": (7.566, 51.443)}
    for t, tenant in enumerate(tenants):
        lon, lat = towns.get(tenant, (7.5, 51.5))
        for i in range(per_tenant):
            number = t * 1000 + i
            if i % 2 == 0:
                sensors.append(
                    Sensor(
                        f"24E1241{number:09X}",
                        "milesight-em310-udl",
                        f"glascontainer-{tenant}-{i:03d}",
                        tenant,
                        f"Glascontainer {tenant.title()} {i}",
                        round(lon + i * 0.001, 5),
                        round(lat + i * 0.0005, 5),
                        2400,
                        400,
                        "glass",
                    )
                )
            else:
                sensors.append(
                    Sensor(
                        f"70b3d57ba{number:07x}",  # lowercase on purpose: the registry takes any case
                        "decentlab-dl-mbx",
                        f"papiercontainer-{tenant}-{i:03d}",
                        tenant,
                        f"Papiercontainer {tenant.title()} {i}",
                        round(lon - i * 0.001, 5),
                        round(lat - i * 0.0005, 5),
                        1600,
                        300,
                        "paper",
                    )
                )
    return sensors


def registry_csv(sensors: Iterable[Sensor]) -> str:
    rows = ["# Waste bins of the end-to-end tests (generated).", REGISTRY_COLUMNS]
    rows.extend(
        f"{s.dev_eui},{s.model},waste,{s.entity_id},{s.tenant},{s.name},{s.lon},{s.lat},{s.empty_mm},{s.full_mm},"
        f"{s.waste_kind}"
        for s in sensors
    )
    return "\n".join(rows) + "\n"


def em310_payload(distance_mm: int, battery: int = 92, tilt: bool = False) -> bytes:
    """Milesight EM310-UDL, fPort 85: battery ``01 75``, distance ``03 82`` (uint16 LE, mm), position ``04 00``."""
    return bytes([0x01, 0x75, battery, 0x03, 0x82]) + distance_mm.to_bytes(2, "little") + bytes([0x04, 0x00, tilt])


def mbx_payload(distance_mm: int, battery_mv: int = 2993, device_id: int = 303) -> bytes:
    """Decentlab DL-MBX protocol 2, fPort 1: id, flags 0x0003, [distance mm, valid samples], [battery mV], BE."""
    words = [device_id, 0x0003, distance_mm, 1, battery_mv]
    return bytes([2]) + b"".join(w.to_bytes(2, "big") for w in words)


@dataclass(frozen=True)
class Reading:
    """One uplink of one sensor: frame counter, time and fill level are what the tests trace."""

    sensor: Sensor
    f_cnt: int
    time: datetime
    percent: int

    @property
    def distance_mm(self) -> int:
        return self.sensor.distance_for(self.percent)

    @property
    def payload(self) -> bytes:
        if self.sensor.model == "milesight-em310-udl":
            return em310_payload(self.distance_mm, battery=90 + self.f_cnt % 10)
        return mbx_payload(self.distance_mm)

    @property
    def level(self) -> float:
        return self.percent / 100

    @property
    def observed_at(self) -> str:
        """As the adapter writes it: UTC, ``Z``, milliseconds only when there are any."""
        timespec = "milliseconds" if self.time.microsecond else "seconds"
        return self.time.isoformat(timespec=timespec).replace("+00:00", "Z")

    @property
    def dedup_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chirpstack-up:{self.sensor.dev_eui}:{self.f_cnt}"))

    def pairs(self) -> set[tuple[str, str]]:
        """(entity id, observedAt) of the two entities this uplink must produce."""
        return {(self.sensor.container_id, self.observed_at), (self.sensor.device_id, self.observed_at)}


def readings(sensors: Sequence[Sensor], count: int, *, start: int = 0, first_f_cnt: int = 1) -> list[Reading]:
    """``count`` uplinks round-robin over ``sensors``, one second apart, each with its own frame
    counter, time and fill level (so every one can be traced through to the broker)."""
    out = []
    for n in range(start, start + count):
        sensor = sensors[n % len(sensors)]
        out.append(
            Reading(sensor, first_f_cnt + n // len(sensors), BASE_TIME + timedelta(seconds=n), percent=(n * 7) % 101)
        )
    return out


APP_ID = "c2a9e417-5d03-4b6f-8e21-7a4c9d0b3f58"
TTS_APP = "dortmund-abfall@ttn"


def _nanos(moment: datetime) -> str:
    """The network servers' RFC 3339 with nanoseconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000"


def chirpstack_up(reading: Reading, *, app_id: str = APP_ID, dedup_id: str | None = None) -> dict[str, Any]:
    """A ChirpStack v4 ``up`` event as its MQTT integration publishes it (JSON mode)."""
    sensor = reading.sensor
    return {
        "deduplicationId": dedup_id or reading.dedup_id,
        "time": _nanos(reading.time) + "+00:00",
        "deviceInfo": {
            "tenantId": "3f6c2a1e-8b47-4d9a-a2c5-0e91b7d4f613",
            "tenantName": f"Stadt {sensor.tenant.title()}",
            "applicationId": app_id,
            "applicationName": "Abfallbehaelter",
            "deviceProfileId": "0a7c3e59-91d2-4b8f-a6e4-3d5b7f2c9e01",
            "deviceProfileName": "Milesight EM310-UDL" if sensor.f_port == 85 else "Decentlab DL-MBX",
            "deviceName": sensor.entity_id,
            "devEui": sensor.dev_eui.lower(),
        },
        "devAddr": "01b4e209",
        "adr": True,
        "dr": 3,
        "fCnt": reading.f_cnt,
        "fPort": sensor.f_port,
        "data": base64.b64encode(reading.payload).decode(),
        "rxInfo": [
            {
                "gatewayId": "0016c001f1500a7e",
                "uplinkId": 1893344172 + reading.f_cnt,
                "rssi": -97,
                "snr": 7.25,
                "channel": 1,
                "context": "Bq3Xyg==",
                "metadata": {"region_name": "eu868", "region_common_name": "EU868"},
            }
        ],
        "txInfo": {
            "frequency": 868100000,
            "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 9, "codeRate": "CR_4_5"}},
        },
    }


def chirpstack_topic(dev_eui: str, event: str = "up", *, app_id: str = APP_ID) -> str:
    return f"application/{app_id}/device/{dev_eui.lower()}/event/{event}"


def tts_up(reading: Reading, *, app: str = TTS_APP) -> dict[str, Any]:
    """A The Things Stack v3 ApplicationUp with ``uplink_message`` (MQTT / webhook)."""
    sensor = reading.sensor
    received = _nanos(reading.time) + "Z"
    return {
        "end_device_ids": {
            "device_id": sensor.entity_id,
            "application_ids": {"application_id": app.split("@")[0]},
            "dev_eui": sensor.dev_eui.upper(),
            "join_eui": "70B3D57ED0000000",
            "dev_addr": "260B4F1A",
        },
        "correlation_ids": [f"as:up:{reading.dedup_id}"],
        "received_at": received,
        "uplink_message": {
            "session_key_id": "AZL7n0bQ8xYq3mZ1c2VkZQ==",
            "f_port": sensor.f_port,
            "f_cnt": reading.f_cnt,
            "frm_payload": base64.b64encode(reading.payload).decode(),
            "rx_metadata": [
                {
                    "gateway_ids": {"gateway_id": "dortmund-rathaus", "eui": "B827EBFFFE7A1C3D"},
                    "rssi": -97,
                    "channel_rssi": -97,
                    "snr": 7.25,
                    "channel_index": 2,
                }
            ],
            "settings": {
                "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}},
                "frequency": "868500000",
            },
            "received_at": received,
            "consumed_airtime": "0.205824s",
        },
    }


def tts_topic(sensor: Sensor, message: str = "up", *, app: str = TTS_APP) -> str:
    return f"v3/{app}/devices/{sensor.entity_id}/{message}"


# ---------------------------------------------------------------------------------- publisher


class Publisher:
    """A QoS 1 publisher (the network server's side); ``publish_all`` returns once mosquitto PUBACKed all."""

    def __init__(self, port: int, *, client_id: str, protocol: int = mqtt.MQTTv5) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._sent: list[mqtt.MQTTMessageInfo] = []
        self._client.on_connect = lambda *args: self._connected.set()
        self._client.connect("127.0.0.1", port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(10):
            self.close()
            pytest.fail(f"publisher could not connect to mosquitto on port {port}")

    def publish(self, topic: str, payload: Mapping[str, Any] | bytes) -> mqtt.MQTTMessageInfo:
        data = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        info = self._client.publish(topic, data, qos=1)
        with self._lock:
            self._sent.append(info)
        return info

    @property
    def published(self) -> int:
        """Messages handed to the client so far (PUBACKed or not)."""
        with self._lock:
            return len(self._sent)

    def wait_published(self, timeout: float = 20) -> int:
        """Until mosquitto PUBACKed everything published so far; how many that is."""
        with self._lock:
            infos = list(self._sent)
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.01, deadline - time.monotonic()))
            if not info.is_published():
                pytest.fail(f"mosquitto did not PUBACK all {len(infos)} messages within {timeout:.0f} s")
        return len(infos)

    def publish_all(self, messages: Iterable[tuple[str, Mapping[str, Any] | bytes]], timeout: float = 20) -> int:
        """Publish, then wait for mosquitto's PUBACKs; how many were published by this call."""
        infos = [self.publish(topic, payload) for topic, payload in messages]
        self.wait_published(timeout)
        return len(infos)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._client.disconnect()
        self._client.loop_stop()


# ---------------------------------------------------------------------------- site and adapter


@dataclass
class Site:
    """One deployment directory (cwd of the adapter): config, device registry, outbox, state, files."""

    root: Path
    sensors: Sequence[Sensor] = ()
    config: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "dos-adapters.toml"
        (self.root / "devices.csv").write_text(registry_csv(self.sensors), encoding="utf-8")

    @property
    def outbox(self) -> Path:
        return self.root / "var" / "outbox.sqlite"

    @property
    def dead_letter(self) -> Path:
        return self.root / "out" / "dead-letter.ndjson"

    def outbox_entities(self) -> int:
        """Entities waiting in the outbox, read from the file (the adapter may be running: WAL)."""
        if not self.outbox.exists():
            return 0
        outbox = Outbox(self.outbox)
        try:
            return outbox.status().entities
        finally:
            outbox.close()

    def dead_letters(self) -> list[dict[str, Any]]:
        if not self.dead_letter.exists():
            return []
        return [json.loads(line) for line in self.dead_letter.read_text(encoding="utf-8").splitlines() if line]

    def write_config(
        self,
        *,
        broker_url: str,
        source: str = "chirpstack-v4",
        mqtt: Mapping[str, Any] | None = None,
        webhook: Mapping[str, Any] | None = None,
        lorawan: Mapping[str, Any] | None = None,
    ) -> Path:
        sections: dict[str, Mapping[str, Any]] = {
            "broker": {"url": broker_url, "context": CONTEXT_URL, "timeout": 5},
            "outbox": {"path": "var/outbox.sqlite", "max_backoff": 1},
            "output": {"path": "out/entities.ndjson"},
            "dead_letter": {"path": "out/dead-letter.ndjson"},
            "log": {"level": "INFO"},
            # Only lorawan runs: every other installed adapter (parking, ...) is switched off.
            **{f"adapters.{name}": {"enabled": False} for name in discover_adapters() if name != "lorawan"},
            "adapters.lorawan": {
                "enabled": True,
                "source": source,
                "devices": "devices.csv",
                "state_path": "var/lorawan-state.sqlite",
                **(lorawan or {}),
            },
            "adapters.lorawan.mqtt": {"enabled": mqtt is not None, **(mqtt or {})},
            "adapters.lorawan.webhook": {"enabled": webhook is not None, **(webhook or {})},
        }
        self.config.write_text(config_toml(sections), encoding="utf-8")
        return self.config


def cli_env() -> dict[str, str]:
    """The test runner's environment without any DOS_* setting."""
    return {name: value for name, value in os.environ.items() if not name.startswith("DOS_")}


_COUNTERS = re.compile(
    r"lorawan: (?P<messages>\d+) messages received, (?P<ignored>\d+) ignored, (?P<rejected>\d+) rejected, "
    r"(?P<entities>\d+) entities committed in (?P<commits>\d+) commits"
)


class AdapterProcess:
    """``dos-adapters run --config …`` with the site as cwd; its log goes to a file in the site."""

    def __init__(self, site: Site, *, name: str = "adapter") -> None:
        if CLI is None:
            pytest.fail(f"dos-adapters console script not found next to {sys.executable}: pip install -e .")
        self.site = site
        self.log_path = site.root / f"{name}.log"
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "run", "--config", str(site.config)],
                cwd=site.root,
                env=cli_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    @property
    def log(self) -> str:
        """This run's log (the file is shared by restarts of the same adapter)."""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            return log.read().decode("utf-8", "replace")

    def wait_for_log(self, text: str, timeout: float = 15) -> None:
        def seen() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"adapter exited with {self.process.returncode}:\n{self.log}")
            return text in self.log

        wait_until(seen, timeout, f"{text!r} in the adapter log")

    def wait_subscribed(self, timeout: float = 15) -> None:
        """Until mosquitto confirmed the subscription (SUBACK): publishing earlier could miss it."""
        self.wait_for_log("MQTT subscription granted", timeout)

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, wait for the exit; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"adapter did not stop within {timeout:.0f} s of SIGTERM:\n{self.log}")

    def stop_cleanly(self) -> dict[str, int]:
        """SIGTERM; asserts exit code 0 and returns the counters it logs on the way out."""
        code = self.terminate()
        assert code == 0, f"adapter exited with {code}:\n{self.log}"
        match = _COUNTERS.search(self.log)
        assert match is not None, f"no counters in the adapter log:\n{self.log}"
        return {key: int(value) for key, value in match.groupdict().items()}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()


# ------------------------------------------------------------------------- what the broker saw


def upsert_bodies(double: BrokerDouble) -> list[list[dict[str, Any]]]:
    """The entity arrays of the batch upserts the double took (2xx), oldest first."""
    return [r.json() for r in double.requests if r.method == "POST" and r.path == UPSERT_PATH and 200 <= r.status < 300]


def observed_pairs(double: BrokerDouble) -> Counter[tuple[str, str]]:
    """How often each (entity id, observedAt) was in an accepted upsert body.

    observedAt of a WasteContainer is its ``status`` time, of a Device its ``dateLastValueReported``.
    """
    pairs: Counter[tuple[str, str]] = Counter()
    for body in upsert_bodies(double):
        for entity in body:
            attribute = entity.get("status") or entity.get("dateLastValueReported") or {}
            pairs[(entity["id"], attribute.get("observedAt", ""))] += 1
    return pairs


def delivered_ids(double: BrokerDouble) -> Counter[str]:
    return Counter(entity["id"] for body in upsert_bodies(double) for entity in body)


def expected_pairs(uplinks: Iterable[Reading]) -> set[tuple[str, str]]:
    return {pair for reading in uplinks for pair in reading.pairs()}


def newest_per_sensor(uplinks: Iterable[Reading]) -> dict[Sensor, Reading]:
    newest: dict[Sensor, Reading] = {}
    for reading in uplinks:
        if reading.sensor not in newest or reading.time > newest[reading.sensor].time:
            newest[reading.sensor] = reading
    return newest


def tally(double: BrokerDouble, site: Site, uplinks: Sequence[Reading]) -> tuple[int, int, int]:
    """(uplinks whose two entity states reached the broker, dead letters, repeated entity states)."""
    pairs = observed_pairs(double)
    seen = set(pairs)
    delivered = sum(1 for reading in uplinks if reading.pairs() <= seen)
    return delivered, len(site.dead_letters()), sum(count - 1 for count in pairs.values())


def record_uplink_fault(
    fault: str, double: BrokerDouble, site: Site, uplinks: Sequence[Reading], *, seconds: float | None = None,
    note: str = ""
) -> int:
    """One row of the fault table (``scripts/fault_table.py``) for an MQTT stream; returns the lost."""
    from adapters.testing.fault_log import record_fault

    delivered, dead, repeats = tally(double, site, uplinks)
    return record_fault(
        fault, sent=len(uplinks), delivered=delivered, dead_lettered=dead, duplicates=repeats, unit="uplinks",
        seconds=seconds, note=note,
    )

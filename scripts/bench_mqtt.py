#!/usr/bin/env python3
"""Benchmark of the LoRaWAN push path over a real MQTT broker (figures, not a pass/fail test).

    network server (paho, QoS 1) -> mosquitto -> dos-adapters run (subprocess) -> broker double (subprocess)

Scenarios, each with a fresh adapter, site and broker double:

* ``full_speed``  M uplinks published as fast as one paho client can (default 20,000);
* ``paced``       uplinks offered at a fixed rate (default 1,000/s for 10 s);
* ``window_1``    mosquitto with ``max_inflight_messages 1``: the worst case for PUBACK-after-commit
                  micro-batching (each batch holds one uplink and waits ``batch_max_delay``).

Figures per scenario: uplinks/s end to end (first publish to the broker's receipt of the last
uplink), broker requests per 100 uplinks, request body bytes per uplink, latency p50/p95/p99 from
publish to the broker's receipt, the adapter's peak RSS (``VmHWM``) and CPU seconds (from ``/proc``),
mosquitto's and the double's CPU, and the 1-minute load average before and after (the machine may be
shared: compare CPU per uplink rather than wall-clock rates).

How latency is measured: every uplink carries its publish time as its network-server time
(ChirpStack ``time``, taken from the wall clock right before ``publish``); the adapter turns it into
the entity's ``observedAt`` (millisecond resolution). The broker double runs in its own process
(the ``adapters.testing`` double, plus a recorder) and writes, for every upsert it receives, its
arrival time (same host, same clock) and the ``observedAt`` of each WasteContainer in the body.
Latency = arrival - observedAt, one sample per uplink, so nothing in the adapter is instrumented.
1,000 sensors take turns, so a sensor's uplinks are far apart in time (no stale rejections).

Prints ONE JSON object. Needs mosquitto (``MOSQUITTO`` or PATH or /usr/sbin/mosquitto).

    .venv/bin/python scripts/bench_mqtt.py                 # about a minute
    .venv/bin/python scripts/bench_mqtt.py --uplinks 5000 --rate 500 --seconds 5
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MOSQUITTO = os.environ.get("MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CLI = shutil.which("dos-adapters", path=os.path.dirname(sys.executable))
APP_ID = "c2a9e417-5d03-4b6f-8e21-7a4c9d0b3f58"
UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
TIME_MARK = b"@@PUBLISHED_AT@@"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------- the recording broker double


def serve_double(port: int, record: Path) -> int:
    """The broker double in this (separate) process, recording each upsert's arrival."""
    import orjson  # the recorder's parse should not weigh on the double's CPU figure

    from adapters.testing.broker_double import BrokerDouble

    out = record.open("a", encoding="utf-8")
    lock = threading.Lock()

    class RecordingDouble(BrokerDouble):
        def _answer(self, request: Any, too_large: bool) -> Any:
            arrived = time.time()
            response = super()._answer(request, too_large)
            if request.method == "POST" and request.path == UPSERT_PATH:
                observed = []
                for entity in orjson.loads(request.body or b"[]"):
                    if entity.get("type") == "WasteContainer":
                        observed.append(entity["status"]["observedAt"])
                line = {
                    "arrived": arrived,
                    "status": response.status if response else 0,
                    "bytes": len(request.body),
                    "observed": observed,
                }
                with lock:
                    out.write(json.dumps(line) + "\n")
                    out.flush()
            return response

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    double = RecordingDouble("127.0.0.1", port).start()
    print(double.url, flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        double.stop()
        out.close()
    return 0


# ---------------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(sorted_values: Sequence[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


class Mosquitto:
    def __init__(self, workdir: Path, max_inflight: int) -> None:
        self.port = free_port()
        config = workdir / f"mosquitto-{self.port}.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\npersistence false\n"
            f"max_inflight_messages {max_inflight}\nmax_queued_messages 1000000\nlog_type error\n",
            encoding="utf-8",
        )
        with (workdir / f"mosquitto-{self.port}.log").open("ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=log)

        def accepting() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(accepting, 10, "mosquitto")


# ------------------------------------------------------------------------------ the scenarios


def registry(sensors: int) -> tuple[str, list[str]]:
    rows = ["dev_eui,model,kind,entity_id,tenant,name,lon,lat,empty_distance_mm,full_distance_mm,waste_kind"]
    euis = []
    for n in range(sensors):
        tenant = "dortmund" if n % 2 == 0 else "schwerte"
        eui = f"24e1241{n:09x}"
        euis.append(eui)
        rows.append(
            f"{eui},milesight-em310-udl,waste,bin-{n:05d},{tenant},Bin {n},7.4{n % 10},51.5{n % 7},2400,400,glass"
        )
    return "\n".join(rows) + "\n", euis


def uplink_template(eui: str, n: int) -> bytes:
    """A ChirpStack v4 up event whose ``time`` is filled in at publish time."""
    distance = 400 + (n * 37) % 2000
    payload = bytes([0x01, 0x75, 90, 0x03, 0x82]) + distance.to_bytes(2, "little") + bytes([0x04, 0x00, 0x00])
    document = {
        "deduplicationId": f"00000000-0000-4000-8000-{n:012d}",
        "time": TIME_MARK.decode(),
        "deviceInfo": {
            "tenantId": "3f6c2a1e-8b47-4d9a-a2c5-0e91b7d4f613",
            "tenantName": "Stadt Dortmund",
            "applicationId": APP_ID,
            "applicationName": "Abfallbehaelter",
            "deviceProfileName": "Milesight EM310-UDL",
            "deviceName": f"bin-{eui}",
            "devEui": eui,
        },
        "devAddr": "01b4e209",
        "dr": 3,
        "fCnt": n + 1,
        "fPort": 85,
        "data": base64.b64encode(payload).decode(),
        "rxInfo": [{"gatewayId": "0016c001f1500a7e", "rssi": -97, "snr": 7.25}],
        "txInfo": {"frequency": 868100000},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def run_scenario(
    name: str,
    workdir: Path,
    *,
    uplinks: int,
    rate: float | None,
    max_inflight: int,
    batch_max_messages: int,
    sensors: int = 1000,
) -> dict[str, Any]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from adapters.core.adapter import discover_adapters

    site = workdir / name
    site.mkdir()
    csv, euis = registry(sensors)
    (site / "devices.csv").write_text(csv, encoding="utf-8")
    record = site / "double.ndjson"
    record.touch()
    mosquitto = Mosquitto(site, max_inflight)
    double = subprocess.Popen(
        [sys.executable, __file__, "--serve-double", "--port", "0", "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    adapter = None
    try:
        assert double.stdout is not None
        broker_url = double.stdout.readline().strip()
        others = "".join(f"[adapters.{a}]\nenabled = false\n" for a in discover_adapters() if a != "lorawan")
        (site / "dos-adapters.toml").write_text(
            f'[broker]\nurl = "{broker_url}"\ncontext = "http://context.test/ctx.jsonld"\n'
            '[outbox]\npath = "var/outbox.sqlite"\n[dead_letter]\npath = "out/dead-letter.ndjson"\n'
            f'[log]\nlevel = "INFO"\n{others}'
            '[adapters.lorawan]\nenabled = true\nsource = "chirpstack-v4"\ndevices = "devices.csv"\n'
            f'state_path = "var/lorawan-state.sqlite"\nbatch_max_messages = {batch_max_messages}\n'
            f'[adapters.lorawan.mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\nclient_id = "bench-{name}"\n',
            encoding="utf-8",
        )
        log_path = site / "adapter.log"
        started = time.monotonic()
        with log_path.open("ab") as log:
            adapter = subprocess.Popen(
                [str(CLI), "run", "--config", "dos-adapters.toml"],
                cwd=site,
                stdout=log,
                stderr=log,
                env={k: v for k, v in os.environ.items() if not k.startswith("DOS_")},
            )
        wait_for(lambda: "MQTT subscription granted" in log_path.read_text(errors="replace"), 60, "the subscription")
        startup = time.monotonic() - started
        load_before = os.getloadavg()[0]
        cpu_before = cpu_seconds(adapter.pid)
        mosquitto_cpu_before = cpu_seconds(mosquitto.process.pid)
        double_cpu_before = cpu_seconds(double.pid)

        templates = [uplink_template(euis[n % sensors], n) for n in range(uplinks)]
        topics = [f"application/{APP_ID}/device/{euis[n % sensors]}/event/up" for n in range(uplinks)]
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-ns-{name}", protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(0)  # unlimited: the network server's side is not what is measured
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        infos = []
        first_publish = time.time()
        for n in range(uplinks):
            if rate:
                delay = first_publish + n / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            now = datetime.now(UTC)
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000+00:00"
            infos.append(client.publish(topics[n], templates[n].replace(TIME_MARK, stamp.encode()), qos=1))
        publish_seconds = time.time() - first_publish
        for info in infos:
            info.wait_for_publish(60)

        def received() -> list[dict[str, Any]]:
            text = record.read_text()
            complete = text[: text.rfind("\n") + 1]  # the double may be half way through a line
            return [json.loads(line) for line in complete.splitlines() if line]

        def all_in() -> bool:
            return sum(len(r["observed"]) for r in received() if 200 <= r["status"] < 300) >= uplinks

        wait_for(all_in, 60 + uplinks / 50, f"{uplinks} uplinks at the broker")
        cpu = cpu_seconds(adapter.pid) - cpu_before
        rss = peak_rss_mib(adapter.pid)
        mosquitto_cpu = cpu_seconds(mosquitto.process.pid) - mosquitto_cpu_before
        double_cpu = cpu_seconds(double.pid) - double_cpu_before
        load_after = os.getloadavg()[0]
        client.disconnect()
        client.loop_stop()
        code = stop(adapter)

        requests = [r for r in received() if 200 <= r["status"] < 300]
        latencies = sorted(
            (r["arrived"] - datetime.fromisoformat(o.replace("Z", "+00:00")).timestamp()) * 1000
            for r in requests
            for o in r["observed"]
        )
        last_arrival = max(r["arrived"] for r in requests)
        log_text = log_path.read_text(errors="replace")
        counters = next((line for line in log_text.splitlines() if "messages received" in line), "")
        return {
            "uplinks": uplinks,
            "offered_rate_per_s": rate or round(uplinks / publish_seconds),
            "mosquitto_max_inflight_messages": max_inflight,
            "uplinks_per_s_end_to_end": round(uplinks / (last_arrival - first_publish)),
            "seconds_end_to_end": round(last_arrival - first_publish, 2),
            "broker_requests": len(requests),
            "broker_requests_per_100_uplinks": round(100 * len(requests) / uplinks, 2),
            "entities_per_request_mean": round(2 * uplinks / len(requests), 1),
            "body_bytes_per_uplink": round(sum(r["bytes"] for r in requests) / uplinks),
            "latency_ms": {
                "p50": round(percentile(latencies, 0.50), 1),
                "p95": round(percentile(latencies, 0.95), 1),
                "p99": round(percentile(latencies, 0.99), 1),
                "max": round(latencies[-1], 1),
                "samples": len(latencies),
            },
            "adapter_cpu_seconds": round(cpu, 2),
            "adapter_cpu_ms_per_uplink": round(1000 * cpu / uplinks, 3),
            "adapter_peak_rss_mib": round(rss, 1),
            "adapter_startup_seconds": round(startup, 2),
            "adapter_exit_code": code,
            "adapter_counters": counters.split("lorawan: ", 1)[-1],
            "mosquitto_cpu_seconds": round(mosquitto_cpu, 2),
            "broker_double_cpu_seconds": round(double_cpu, 2),
            "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        }
    finally:
        if adapter is not None:
            stop(adapter, signal.SIGKILL)
        stop(double)
        if double.stdout is not None:
            double.stdout.close()
        stop(mosquitto.process)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uplinks", type=int, default=20_000, help="uplinks of the full-speed scenario")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered uplinks/s of the paced scenario")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the paced scenario")
    parser.add_argument("--window-uplinks", type=int, default=50, help="uplinks of the window_1 scenario (0: skip)")
    parser.add_argument("--batch-max-messages", type=int, default=500, help="the adapter's batch_max_messages")
    parser.add_argument("--serve-double", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_double:
        return serve_double(args.port, args.record)
    if not os.access(MOSQUITTO, os.X_OK):
        print(f"mosquitto not found at {MOSQUITTO}; set MOSQUITTO", file=sys.stderr)
        return 2
    if CLI is None:
        print("dos-adapters is not installed next to this Python", file=sys.stderr)
        return 2
    version = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, check=False).stdout.splitlines()
    result: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "mosquitto": version[0] if version else "?",
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        },
        "adapter_settings": {"batch_max_messages": args.batch_max_messages, "batch_max_delay": 0.2, "sensors": 1000},
    }
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as work:
        workdir = Path(work)
        batch = args.batch_max_messages
        result["full_speed"] = run_scenario(
            "full_speed", workdir, uplinks=args.uplinks, rate=None, max_inflight=0, batch_max_messages=batch
        )
        result["paced"] = run_scenario(
            "paced",
            workdir,
            uplinks=round(args.rate * args.seconds),
            rate=args.rate,
            max_inflight=0,
            batch_max_messages=batch,
        )
        if args.window_uplinks:
            result["window_1"] = run_scenario(
                "window_1", workdir, uplinks=args.window_uplinks, rate=None, max_inflight=1, batch_max_messages=batch
            )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

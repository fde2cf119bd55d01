#!/usr/bin/env python3
"""Benchmark of the LoRaWAN push path, end to end (figures, not a pass/fail test).

    network server (paho, QoS 1) -> mosquitto -> dos-adapters run (subprocess) -> broker double (subprocess)
    network server (HTTP clients, keep-alive) -> webhook -> dos-adapters run (subprocess) -> broker double

Scenarios, each with a fresh adapter, site and broker double:

* ``full_speed``  M uplinks published as fast as one paho client can (default 20,000);
* ``paced``       uplinks offered at a fixed rate (default 1,000/s for 10 s);
* ``window_1``    mosquitto with ``max_inflight_messages 1``: the worst case for PUBACK-after-commit
                  micro-batching (each batch holds one uplink and waits ``batch_max_delay``);
* ``webhook_full_speed`` / ``webhook_paced`` (``--webhook``): the same uplinks as ChirpStack's HTTP
                  integration posts them (``POST /uplink?event=up`` with the shared-secret header), from
                  ``--webhook-clients`` keep-alive connections, each waiting for its 202 (answered
                  after the outbox commit) before it sends the next uplink; paced: uplinks are offered
                  at the rate to whichever connection is free, and wait for one when none is.

Figures per scenario: uplinks/s end to end (first publish to the broker's receipt of the last
uplink), broker requests per 100 uplinks, request body bytes per uplink, latency p50/p95/p99 from
publish to the broker's receipt, the adapter's peak RSS (``VmHWM``) and CPU seconds (from ``/proc``),
mosquitto's and the double's CPU, and the 1-minute load average before and after (the machine may be
shared: compare CPU per uplink rather than wall-clock rates). Webhook scenarios add the HTTP answers
by status and the network server's view: latency from sending to the 202.

How latency is measured: every uplink carries its publish time as its network-server time
(ChirpStack ``time``, taken from the wall clock right before ``publish``; for the paced webhook, at
the moment it is offered, so time spent waiting for a free connection counts); the adapter turns it into
the entity's ``observedAt`` (millisecond resolution). The broker double runs in its own process
(the ``adapters.testing`` double, plus a recorder) and writes, for every upsert it receives, its
arrival time (same host, same clock) and the ``observedAt`` of each WasteContainer in the body.
Latency = arrival - observedAt, one sample per uplink, so nothing in the adapter is instrumented.
1,000 sensors take turns, so a sensor's uplinks are far apart in time (no stale rejections).

With ``--replicas N`` the MQTT scenarios run N adapters (own directory, outbox and state each) on one
MQTT 5 shared subscription; CPU is their sum, RSS the largest. Mosquitto hands a device's uplinks
to either replica, so per-device order and deduplication hold per replica only.

Prints ONE JSON object. Needs mosquitto (``MOSQUITTO`` or PATH or /usr/sbin/mosquitto) for MQTT.

    .venv/bin/python scripts/bench_mqtt.py                 # about a minute
    .venv/bin/python scripts/bench_mqtt.py --uplinks 5000 --rate 500 --seconds 5
    .venv/bin/python scripts/bench_mqtt.py --webhook --no-mqtt --webhook-clients 64 256
    .venv/bin/python scripts/bench_mqtt.py --protocol 3.1.1 # the adapter's MQTT protocol
    .venv/bin/python scripts/bench_mqtt.py --replicas 2     # two adapters on one shared subscription
"""

from __future__ import annotations

import argparse
import asyncio
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
WEBHOOK_PATH = "/uplink"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"
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


def stamp_now() -> bytes:
    """The wall clock as ChirpStack writes ``time`` (nanosecond digits)."""
    now = datetime.now(UTC)
    return (now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000+00:00").encode()


def publish_mqtt(
    port: int, name: str, topics: Sequence[str], templates: Sequence[bytes], rate: float | None
) -> tuple[float, float, dict[str, Any]]:
    """Publish every uplink with QoS 1; (first send, seconds spent sending, extra figures)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-ns-{name}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(0)  # unlimited: the network server's side is not what is measured
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = []
    first_publish = time.time()
    for n, template in enumerate(templates):
        if rate:
            delay = first_publish + n / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        infos.append(client.publish(topics[n], template.replace(TIME_MARK, stamp_now()), qos=1))
    publish_seconds = time.time() - first_publish
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    return first_publish, publish_seconds, {}


async def _post_all(
    port: int, templates: Sequence[bytes], rate: float | None, clients: int
) -> tuple[float, float, dict[str, Any]]:
    """ChirpStack's HTTP integration, ``clients`` connections at a time: each connection sends one
    uplink, waits for the answer, then takes the next (raw HTTP/1.1 over asyncio: a client library
    would cost the shared CPU more than the adapter's webhook does)."""
    pending: asyncio.Queue[tuple[int, bytes | None]] = asyncio.Queue()
    answers: dict[int, int] = {}
    answer_ms: list[float] = []
    retries = 0
    head = (
        f"POST {WEBHOOK_PATH}?event=up HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"X-Webhook-Secret: {WEBHOOK_SECRET}\r\nContent-Type: application/json\r\n"
    ).encode()

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        for _ in range(50):
            try:
                return await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
        raise ConnectionError(f"webhook 127.0.0.1:{port} refuses connections")

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> tuple[int, bool]:
        writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        header = await reader.readuntil(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        await reader.readexactly(int(fields.get("content-length", "0")))
        return int(lines[0].split()[1]), fields.get("connection", "").lower() == "close"

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal retries
        while True:
            n, body = await pending.get()
            if n < 0:
                break
            if body is None:  # full speed: the uplink is received by the network server now
                body = templates[n].replace(TIME_MARK, stamp_now())
            for attempt in range(10):
                sent = time.monotonic()
                try:
                    status, close = await exchange(reader, writer, body)
                except (OSError, asyncio.IncompleteReadError):
                    status, close = 0, True
                answers[status] = answers.get(status, 0) + 1
                if close:
                    writer.close()
                    reader, writer = await connect()
                if status == 202:
                    answer_ms.append((time.monotonic() - sent) * 1000)
                    break
                retries += 1  # not stored: a network server retries later
                await asyncio.sleep(0.05 * (attempt + 1))
        writer.close()

    connections = [await connect() for _ in range(clients)]
    first_send = time.time()
    workers = [asyncio.create_task(worker(reader, writer)) for reader, writer in connections]
    for n, template in enumerate(templates):
        if rate:
            delay = first_send + n / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.put_nowait((n, template.replace(TIME_MARK, stamp_now())))
        else:
            pending.put_nowait((n, None))
    send_seconds = time.time() - first_send
    for _ in workers:
        pending.put_nowait((-1, None))
    await asyncio.gather(*workers)
    answer_ms.sort()
    http = {
        "clients": clients,
        "answers": {str(status): count for status, count in sorted(answers.items())},
        "retries": retries,
        "answer_ms": {
            "p50": round(percentile(answer_ms, 0.50), 1),
            "p95": round(percentile(answer_ms, 0.95), 1),
            "p99": round(percentile(answer_ms, 0.99), 1),
        },
    }
    return first_send, send_seconds, {"http": http}


def run_scenario(
    name: str,
    workdir: Path,
    *,
    uplinks: int,
    rate: float | None,
    batch_max_messages: int,
    intake: str = "mqtt",
    max_inflight: int = 0,
    protocol: str = "5",
    clients: int = 64,
    replicas: int = 1,
    sensors: int = 1000,
) -> dict[str, Any]:
    """Fresh adapters (``replicas`` > 1: MQTT 5 shared subscription, each its own directory, outbox and
    state), site and broker double; ``intake`` is "mqtt" or "webhook"."""
    from adapters.core.adapter import discover_adapters

    site = workdir / name
    site.mkdir()
    homes = [site] if replicas == 1 else [site / f"replica-{i}" for i in range(replicas)]
    csv, euis = registry(sensors)
    for home in homes:
        home.mkdir(exist_ok=True)
        (home / "devices.csv").write_text(csv, encoding="utf-8")
    record = site / "double.ndjson"
    record.touch()
    mosquitto = Mosquitto(site, max_inflight) if intake == "mqtt" else None
    double = subprocess.Popen(
        [sys.executable, __file__, "--serve-double", "--port", "0", "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    adapters: list[subprocess.Popen[bytes]] = []
    try:
        assert double.stdout is not None
        broker_url = double.stdout.readline().strip()
        others = "".join(f"[adapters.{a}]\nenabled = false\n" for a in discover_adapters() if a != "lorawan")
        if mosquitto is not None:
            intake_config = (
                f'[adapters.lorawan.mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\nprotocol = "{protocol}"\n'
                + ('shared_group = "bench"\n' if replicas > 1 else "")
            )
        else:
            webhook_port = free_port()
            intake_config = (
                "[adapters.lorawan.mqtt]\nenabled = false\n"
                f'[adapters.lorawan.webhook]\nenabled = true\nhost = "127.0.0.1"\nport = {webhook_port}\n'
                f'path = "{WEBHOOK_PATH}"\nsecret = "{WEBHOOK_SECRET}"\n'
            )
        started = time.monotonic()
        for i, home in enumerate(homes):
            client_id = f'client_id = "bench-{name}-{i}"\n' if mosquitto is not None else ""
            (home / "dos-adapters.toml").write_text(
                f'[broker]\nurl = "{broker_url}"\ncontext = "http://context.test/ctx.jsonld"\n'
                '[outbox]\npath = "var/outbox.sqlite"\n[dead_letter]\npath = "out/dead-letter.ndjson"\n'
                f'[log]\nlevel = "INFO"\n{others}'
                '[adapters.lorawan]\nenabled = true\nsource = "chirpstack-v4"\ndevices = "devices.csv"\n'
                f'state_path = "var/lorawan-state.sqlite"\nbatch_max_messages = {batch_max_messages}\n'
                f"{intake_config}{client_id}",
                encoding="utf-8",
            )
            with (home / "adapter.log").open("ab") as log:
                adapters.append(
                    subprocess.Popen(
                        [str(CLI), "run", "--config", "dos-adapters.toml"],
                        cwd=home,
                        stdout=log,
                        stderr=log,
                        env={k: v for k, v in os.environ.items() if not k.startswith("DOS_")},
                    )
                )

        def ready() -> bool:
            if mosquitto is not None:
                return all(
                    "MQTT subscription granted" in (home / "adapter.log").read_text(errors="replace") for home in homes
                )
            try:
                with socket.create_connection(("127.0.0.1", webhook_port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(ready, 60, "the adapter's intake")
        startup = time.monotonic() - started
        load_before = os.getloadavg()[0]
        cpu_before = sum(cpu_seconds(adapter.pid) for adapter in adapters)
        mosquitto_cpu_before = cpu_seconds(mosquitto.process.pid) if mosquitto is not None else 0.0
        double_cpu_before = cpu_seconds(double.pid)

        templates = [uplink_template(euis[n % sensors], n) for n in range(uplinks)]
        if mosquitto is not None:
            topics = [f"application/{APP_ID}/device/{euis[n % sensors]}/event/up" for n in range(uplinks)]
            first_send, send_seconds, extra = publish_mqtt(mosquitto.port, name, topics, templates, rate)
        else:
            first_send, send_seconds, extra = asyncio.run(_post_all(webhook_port, templates, rate, clients))

        def received() -> list[dict[str, Any]]:
            text = record.read_text()
            complete = text[: text.rfind("\n") + 1]  # the double may be half way through a line
            return [json.loads(line) for line in complete.splitlines() if line]

        def all_in() -> bool:
            return sum(len(r["observed"]) for r in received() if 200 <= r["status"] < 300) >= uplinks

        wait_for(all_in, 60 + uplinks / 50, f"{uplinks} uplinks at the broker")
        cpu = sum(cpu_seconds(adapter.pid) for adapter in adapters) - cpu_before
        rss = [round(peak_rss_mib(adapter.pid), 1) for adapter in adapters]
        mosquitto_cpu = cpu_seconds(mosquitto.process.pid) - mosquitto_cpu_before if mosquitto is not None else None
        double_cpu = cpu_seconds(double.pid) - double_cpu_before
        load_after = os.getloadavg()[0]
        codes = [stop(adapter) for adapter in adapters]

        requests = [r for r in received() if 200 <= r["status"] < 300]
        latencies = sorted(
            (r["arrived"] - datetime.fromisoformat(o.replace("Z", "+00:00")).timestamp()) * 1000
            for r in requests
            for o in r["observed"]
        )
        last_arrival = max(r["arrived"] for r in requests)
        counters = [
            next((line for line in log.splitlines() if "messages received" in line), "").split("lorawan: ", 1)[-1]
            for log in ((home / "adapter.log").read_text(errors="replace") for home in homes)
        ]
        figures: dict[str, Any] = {
            "intake": intake if mosquitto is None else f"mqtt {protocol}",
            "uplinks": uplinks,
            "offered_rate_per_s": rate or round(uplinks / send_seconds),
        }
        if mosquitto is not None:
            figures["mosquitto_max_inflight_messages"] = max_inflight
        figures.update(
            {
                "uplinks_per_s_end_to_end": round(uplinks / (last_arrival - first_send)),
                "seconds_end_to_end": round(last_arrival - first_send, 2),
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
                **extra,
                "adapter_cpu_seconds": round(cpu, 2),
                "adapter_cpu_ms_per_uplink": round(1000 * cpu / uplinks, 3),
                "adapter_peak_rss_mib": max(rss),
                "adapter_startup_seconds": round(startup, 2),
                "adapter_exit_code": max(codes, key=abs),
                "adapter_counters": " | ".join(counters),
                "broker_double_cpu_seconds": round(double_cpu, 2),
                "load_average_1min": [round(load_before, 2), round(load_after, 2)],
            }
        )
        if mosquitto_cpu is not None:
            figures["mosquitto_cpu_seconds"] = round(mosquitto_cpu, 2)
        if replicas > 1:
            figures["replicas"] = {"count": replicas, "peak_rss_mib": rss, "exit_codes": codes}
        return figures
    finally:
        for adapter in adapters:
            stop(adapter, signal.SIGKILL)
        stop(double)
        if double.stdout is not None:
            double.stdout.close()
        if mosquitto is not None:
            stop(mosquitto.process)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uplinks", type=int, default=20_000, help="uplinks of the full-speed scenarios")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered uplinks/s of the paced scenarios")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the paced scenarios")
    parser.add_argument("--window-uplinks", type=int, default=50, help="uplinks of the window_1 scenario (0: skip)")
    parser.add_argument("--batch-max-messages", type=int, default=500, help="the adapter's batch_max_messages")
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5", help="the adapter's MQTT protocol")
    parser.add_argument("--no-mqtt", action="store_true", help="skip the MQTT scenarios")
    parser.add_argument(
        "--replicas", type=int, default=1, help="adapter replicas on one MQTT 5 shared subscription (MQTT scenarios)"
    )
    parser.add_argument("--webhook", action="store_true", help="run the webhook scenarios too")
    parser.add_argument(
        "--webhook-clients",
        type=int,
        nargs="+",
        default=[64, 512],
        help="concurrent keep-alive connections, one full-speed scenario each; the paced one uses the most",
    )
    parser.add_argument("--serve-double", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_double:
        return serve_double(args.port, args.record)
    if args.replicas > 1 and args.protocol != "5":
        parser.error("--replicas needs MQTT 5 (shared subscriptions)")
    if not args.no_mqtt and not os.access(MOSQUITTO, os.X_OK):
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
    batch = args.batch_max_messages
    paced_uplinks = round(args.rate * args.seconds)
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as work:
        workdir = Path(work)
        if not args.no_mqtt:
            mqtt = {"batch_max_messages": batch, "protocol": args.protocol, "replicas": args.replicas}
            result["full_speed"] = run_scenario("full_speed", workdir, uplinks=args.uplinks, rate=None, **mqtt)
            result["paced"] = run_scenario("paced", workdir, uplinks=paced_uplinks, rate=args.rate, **mqtt)
            if args.window_uplinks:
                result["window_1"] = run_scenario(
                    "window_1", workdir, uplinks=args.window_uplinks, rate=None, max_inflight=1, **mqtt
                )
        if args.webhook:
            for clients in args.webhook_clients:
                result[f"webhook_full_speed_{clients}_clients"] = run_scenario(
                    f"webhook_full_speed_{clients}",
                    workdir,
                    intake="webhook",
                    uplinks=args.uplinks,
                    rate=None,
                    batch_max_messages=batch,
                    clients=clients,
                )
            result["webhook_paced"] = run_scenario(
                "webhook_paced",
                workdir,
                intake="webhook",
                uplinks=paced_uplinks,
                rate=args.rate,
                batch_max_messages=batch,
                clients=max(args.webhook_clients),
            )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

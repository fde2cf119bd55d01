#!/usr/bin/env python3
"""Benchmarks of the adapter pipeline that print figures (not timed pass/fail tests).

Prints ONE JSON object (or, with ``--markdown``, a table for docs/performance.md):

* ``machine``      Python, CPU count, platform, date, and the garbage collector's setting: by default the
                   one ``dos-adapters run`` and ``normalize`` set after start-up (tune_garbage_collector:
                   import-time objects frozen, young threshold 10,000), so the in-process figures are
                   those of the adapter process; ``--gc default`` keeps CPython's (700, 10, 10).
* ``normalize``    normalize_payload of the parking source over a synthetic payload (the recorded
                   sample records replicated with distinct ids), one core; and the pieces called
                   directly: parse only, normalise without validation, validation only (and its
                   JSON-Schema part), so the cost of each is visible.
* ``normalize_kinds`` the same for every source kind the installed adapters register: records (LoRaWAN:
                   uplinks through the pipeline ``dos-adapters normalize tts-v3`` uses, with a registry
                   replicated to match) and entities per CPU second, and the split parse / normalise /
                   validate per record; for poll kinds also the chunked walk ``run`` streams
                   (normalize_chunks, entities dropped per chunk). Best of two runs in process time.
* ``encoding``     the JSON encoding of the entities as the outbox and the broker client do it (orjson,
                   ``encode_entities``), and the stdlib json with the same options for comparison.
* ``broker_sink``  BrokerSink (fresh SQLite outbox in a temp dir + deliver) into the broker double
                   running in its own process (``python -m adapters.testing``), so the double's CPU
                   does not count against the adapter: entities/s, requests, bytes per entity and the
                   per-write latency from write() until the deliver() that sent it returns.
* ``file_sink``    FileSink, the same entities and write size, for comparison.
* ``process``      one ``dos-adapters run --once`` process against the double and a local HTTP server
                   serving a large synthetic payload: wall time, CPU seconds and peak RSS (the kernel's
                   rusage of exactly that child); start-up time (``dos-adapters list``) and the RSS of
                   ``dos-adapters run --once --offline`` with the small recorded sample.

Everything binds 127.0.0.1, runs in temporary directories that are removed at the end, and stops the
servers it started. The default run takes under three minutes; ``--quick`` about twenty seconds.

    .venv/bin/python scripts/bench.py            # JSON on stdout
    .venv/bin/python scripts/bench.py --markdown # the table for docs/performance.md
    .venv/bin/python scripts/bench.py --only normalize_kinds,process   # some sections only
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import gc
import io
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import requests

from adapters.cli import tune_garbage_collector
from adapters.core.adapter import Adapter, NormalizeContext, RecordRejected, Resources, SourceKind, discover_adapters
from adapters.core.broker import BrokerClient, encode_entities, encoded_batches
from adapters.core.config import load_config
from adapters.core.entities import Entity, EntityError
from adapters.core.normalize import normalize_chunks
from adapters.core.outbox import Outbox
from adapters.core.runner import normalize_payload
from adapters.core.sinks import BrokerSink, DeadLetterFile, FileSink
from adapters.core.validation import _validator, entity_problems, to_key_values
from adapters.lorawan import LorawanAdapter
from adapters.parking import ParkingAdapter

LOOPBACK = "127.0.0.1"
TENANT = "dortmund"
ADAPTER = "parking"
SOURCE_KIND = "dortmund-parkhaeuser"


# ----------------------------------------------------------------------------------------- helpers


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (fraction in (0, 1])."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def best_of(repeat: int, action: Callable[[], Any]) -> tuple[float, float, Any]:
    """The least CPU time and the least wall time of ``repeat`` runs of ``action``, and the last result.

    CPU time (this process) is what the single-core rates are computed from: on a shared machine it
    hardly moves when another process takes the CPU for a while, wall time does.
    """
    cpu, wall, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        result = action()
        wall = min(wall, time.perf_counter() - wall_start)
        cpu = min(cpu, time.process_time() - cpu_start)
    return cpu, wall, result


def maxrss_mib(kib_or_bytes: int) -> float:
    """ru_maxrss is KiB on Linux and bytes on macOS."""
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024
    return round(kib_or_bytes / divisor, 1)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of another (running) process, from /proc; None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)


def gc_setting() -> str:
    """The collector's setting as the figures were taken (``dos-adapters run`` sets it: tune_garbage_collector)."""
    if not gc.isenabled():
        return "off"
    frozen = gc.get_freeze_count()
    return f"thresholds {gc.get_threshold()}" + (f", {frozen:,} objects frozen" if frozen else ", nothing frozen")


def machine() -> dict[str, Any]:
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    versions: dict[str, str | None] = {}
    for package in ("dos-adapters", "jsonschema", "requests", "orjson"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": cpu_model or platform.processor() or None,
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_1min_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "packages": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def clean_environment(**overrides: str) -> dict[str, str]:
    """The environment without the caller's DOS_* settings, plus ``overrides``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DOS_")}
    env.update(overrides)
    return env


def console_script() -> list[str]:
    """``dos-adapters`` next to the running interpreter (the venv's), else the same via ``-c``."""
    script = Path(sys.executable).with_name("dos-adapters")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from adapters.cli import main; sys.exit(main())"]


# -------------------------------------------------------------------------------- synthetic data


def parking_source() -> SourceKind:
    return ParkingAdapter.source(SOURCE_KIND)


def parking_settings() -> dict[str, Any]:
    """The parking adapter's settings with every default filled, as a deployment without a file has them."""
    config = load_config(None, {ADAPTER: ParkingAdapter.section_schema()}, environ={})
    return dict(config["adapters"][ADAPTER])


def broker_defaults() -> dict[str, Any]:
    config = load_config(None, {ADAPTER: ParkingAdapter.section_schema()}, environ={})
    return dict(config["broker"])


def synthetic_records(count: int) -> list[dict[str, Any]]:
    """The recorded sample records, replicated with distinct ids, in a fixed order (deterministic)."""
    sample = json.loads(ParkingAdapter.sample_payload(parking_source()))["results"]
    records = []
    for index in range(count):
        copy_number, position = divmod(index, len(sample))
        record = copy.deepcopy(sample[position])
        record["id"] = f"{record['id']}-{copy_number}"
        records.append(record)
    return records


def synthetic_payload(count: int) -> bytes:
    """An Opendatasoft records response with ``count`` records, as the live endpoint sends it."""
    return json.dumps({"total_count": count, "results": synthetic_records(count)}, ensure_ascii=False).encode()


def synthetic_entities(count: int) -> list[Entity]:
    """``count`` valid OffStreetParking entities with distinct ids (from normalising synthetic records)."""
    sample = len(json.loads(ParkingAdapter.sample_payload(parking_source()))["results"])
    records = count + count // max(1, sample - 1) + sample  # a few sample records are rejected
    result = normalize_payload(
        parking_source(), synthetic_payload(records), NormalizeContext(TENANT, parking_settings())
    )
    if len(result.entities) < count:
        raise RuntimeError(f"only {len(result.entities)} entities from {records} records")
    return result.entities[:count]


# ----------------------------------------------------------------------------- 1. normalisation


def bench_normalize(records: int, schema_sample: int = 10_000) -> tuple[dict[str, Any], list[Entity]]:
    """Figures, and the valid entities (reused by the sink benchmarks). Rates are per CPU second."""
    source = parking_source()
    payload = synthetic_payload(records)
    context = NormalizeContext(tenant=TENANT, settings=parking_settings())

    full_cpu, full_wall, result = best_of(1, lambda: normalize_payload(source, payload, context, origin="bench"))
    parse_cpu, parse_wall, parsed = best_of(3, lambda: list(source.parse(payload)))  # parse may stream

    def normalise_only() -> tuple[list[Entity], int]:
        entities: list[Entity] = []
        rejected = 0
        for record in parsed:
            try:
                entities.extend(source.normalize(record, context))
            except (RecordRejected, EntityError):
                rejected += 1
        return entities, rejected

    normalise_cpu, normalise_wall, (entities, rejected) = best_of(1, normalise_only)
    validation_cpu, validation_wall, problems = best_of(1, lambda: [entity_problems(entity) for entity in entities])
    validator = _validator("OffStreetParking")
    assert validator is not None
    sample = entities[:schema_sample]

    def schema_only() -> int:
        return sum(1 for entity in sample for _ in validator.iter_errors(to_key_values(entity)))

    schema_cpu, schema_wall, schema_errors = best_of(1, schema_only)

    def piece(count: int, cpu: float, wall: float, unit: str) -> dict[str, Any]:
        return {
            "cpu_seconds": round(cpu, 3),
            "wall_seconds": round(wall, 3),
            f"{unit}_per_s": rate(count, cpu),
            "us_per_" + {"records": "record", "entities": "entity"}[unit]: round(cpu / count * 1e6, 1),
        }

    figures = {
        "records": records,
        "payload_bytes": len(payload),
        "entities": len(result.entities),
        "rejected": len(result.rejections),
        "full": piece(records, full_cpu, full_wall, "records")
        | {"entities_per_s": rate(len(result.entities), full_cpu)},
        "parse_only": piece(records, parse_cpu, parse_wall, "records"),
        "normalize_without_validation": piece(records, normalise_cpu, normalise_wall, "records")
        | {"entities_per_s": rate(len(entities), normalise_cpu), "rejected": rejected},
        "validation_only": piece(len(entities), validation_cpu, validation_wall, "entities")
        | {"valid": sum(1 for found in problems if not found)},
        "validation_json_schema_part": piece(len(sample), schema_cpu, schema_wall, "entities")
        | {"sample": len(sample), "errors": schema_errors},
        "validation_share_of_full": round(validation_cpu / full_cpu, 3),
    }
    return figures, result.entities


# ------------------------------------------------------------------- 1b. every source kind, one core
#
# Each installed source kind gets its recorded sample replicated to N records with distinct ids (a
# replicator per native format, below), then normalize_payload and its three pieces are timed in CPU
# time. Stateful kinds (LoRaWAN dedup and ordering, meter counters) get fresh resources for every run,
# opened outside the timing, so no run sees the state another one left.

Replicator = Callable[[bytes, int, Path], "Replica"]


@dataclass
class Replica:
    """A synthetic input: the payloads (one-record formats get one payload per record) and extra settings."""

    payloads: list[bytes]
    how: str
    settings: dict[str, Any] = field(default_factory=dict)


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def _copies(items: Sequence[Any], count: int, mutate: Callable[[Any, int], None]) -> list[Any]:
    """``count`` deep copies of ``items`` in turn; ``mutate(copy, copy_number)`` makes each one distinct."""
    result = []
    for index in range(count):
        copy_number, position = divmod(index, len(items))
        item = copy.deepcopy(items[position])
        mutate(item, copy_number)
        result.append(item)
    return result


def _replicate_parking(sample: bytes, count: int, _: Path) -> Replica:
    def mutate(record: dict[str, Any], n: int) -> None:
        record["id"] = f"{record['id']}-{n}"

    records = _copies(json.loads(sample)["results"], count, mutate)
    return Replica([_json({"total_count": count, "results": records})], "id + '-<copy>'")


def _replicate_waste(sample: bytes, count: int, _: Path) -> Replica:
    def mutate(record: dict[str, Any], n: int) -> None:
        point = record.get("geografische_koordinaten")
        if isinstance(point, dict) and isinstance(point.get("lat"), float) and isinstance(point.get("lon"), float):
            point["lat"] = round(point["lat"] + n * 0.001, 5)  # the id is made of fraction and position
            point["lon"] = round(point["lon"] + n * 0.0007, 5)

    return Replica([_json(_copies(json.loads(sample), count, mutate))], "position moved per copy (id = position)")


def _replicate_pegelonline(sample: bytes, count: int, _: Path) -> Replica:
    def mutate(station: dict[str, Any], n: int) -> None:
        station["uuid"] = f"{station['uuid']}-{n}"

    return Replica([_json(_copies(json.loads(sample), count, mutate))], "uuid + '-<copy>'")


def _replicate_sensor_community(sample: bytes, count: int, _: Path) -> Replica:
    def mutate(item: dict[str, Any], n: int) -> None:
        if isinstance(item.get("location"), dict):
            item["location"]["id"] = item["location"]["id"] * 100_000 + n  # records group by location id
        if isinstance(item.get("sensor"), dict):
            item["sensor"]["id"] = item["sensor"]["id"] * 100_000 + n

    items = json.loads(sample)
    groups = len({json.dumps(item.get("location", {}).get("id")) for item in items})
    # ``count`` is in records (locations), the feed lists one item per sensor.
    per_sensor = max(1, round(count * len(items) / groups))
    return Replica([_json(_copies(items, per_sensor, mutate))], "location and sensor ids * 100000 + copy")


def _replicate_buildings(sample: bytes, count: int, _: Path) -> Replica:
    def mutate(feature: dict[str, Any], n: int) -> None:
        feature["properties"]["gebaeude_id"] = f"{feature['properties']['gebaeude_id']}-{n}"

    document = json.loads(sample)
    document["features"] = _copies(document["features"], count, mutate)
    return Replica([_json(document)], "gebaeude_id + '-<copy>'")


def _replicate_meters(sample: bytes, count: int, _: Path) -> Replica:
    text = sample.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    header, body = rows[0], [row for row in rows[1:] if row]
    point = header.index("Zählpunkt")

    def mutate(row: list[str], n: int) -> None:
        row[point] = f"{row[point]}-{n}"

    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\n").writerows([header, *_copies(body, count, mutate)])
    return Replica([("\ufeff" + out.getvalue()).encode()], "Zählpunkt + '-<copy>' (a meter's rows stay in order)")


def _replicate_brightsky(sample: bytes, count: int, _: Path) -> Replica:
    """Bright Sky's /current_weather answers one record: one payload per record, with its own station."""
    document = json.loads(sample)
    payloads = []
    for n in range(count):
        copy_of = copy.deepcopy(document)
        for source in copy_of["sources"]:
            if source.get("id") == copy_of["weather"]["source_id"] and source.get("dwd_station_id"):
                source["dwd_station_id"] = f"{source['dwd_station_id']}-{n}"
        payloads.append(_json(copy_of))
    return Replica(payloads, "one payload per record, dwd_station_id + '-<copy>'")


def _replicate_lorawan(eui_path: tuple[str, str], dedup_key: str | None) -> Replicator:
    """Devices replicated in a registry of their own (distinct DevEUIs and entity ids), uplinks re-addressed."""

    def replicate(sample: bytes, count: int, workdir: Path) -> Replica:
        offline = LorawanAdapter.offline_settings({})
        sample_registry = Path(offline["devices"])
        lines = [line for line in sample_registry.read_text().splitlines() if line and line[0] != "#"]
        header, *devices = list(csv.reader(lines))
        column = {name: index for index, name in enumerate(header)}
        uplinks = [_json_or_text(line) for line in sample.splitlines() if line.strip()]
        copies = -(-count // len(uplinks))
        eui_of = {row[column["dev_eui"]].upper(): position for position, row in enumerate(devices)}

        def new_eui(old: str, n: int) -> str:
            return f"{old[:8]}{eui_of[old.upper()]:02X}{n:06X}"

        registry = [header]
        for n in range(copies):
            for row in devices:
                row = list(row)
                row[column["dev_eui"]] = new_eui(row[column["dev_eui"]], n)
                row[column["entity_id"]] = f"{row[column['entity_id']]}-{n}"
                if row[column["parking_site"]]:
                    row[column["parking_site"]] = f"{row[column['parking_site']]}-{n}"
                elif row[column["kind"]] == "parking":  # grouped by zone: into this copy's zones
                    row[column["lat"]] = f"{float(row[column['lat']]) + n * ZONE_SHIFT_DEGREES:.5f}"
                registry.append(row)
        devices_csv = workdir / "devices.csv"
        with devices_csv.open("w", newline="") as handle:
            csv.writer(handle).writerows(registry)
        zones = json.loads(Path(offline["parking"]["zones"]).read_text(encoding="utf-8"))
        zones["features"] = [_shifted_zone(zone, n) for n in range(copies) for zone in zones["features"]]
        zones_file = workdir / "zones.geojson"
        zones_file.write_text(json.dumps(zones))

        def mutate(uplink: dict[str, Any] | bytes, n: int) -> None:
            if isinstance(uplink, bytes):
                return  # a recorded unreadable line stays unreadable
            ids = uplink[eui_path[0]]
            if ids.get(eui_path[1]) and ids[eui_path[1]].upper() in eui_of:
                ids[eui_path[1]] = new_eui(ids[eui_path[1]], n)
            if dedup_key is not None:
                uplink[dedup_key] = f"{uplink[dedup_key]}-{n}"

        body = b"\n".join(line if isinstance(line, bytes) else _json(line) for line in _copies(uplinks, count, mutate))
        return Replica(
            [body],
            f"{len(devices) * copies:,} registry devices (DevEUI and entity_id per copy, zones per copy), "
            "uplinks re-addressed",
            {"devices": str(devices_csv), "parking": {"zones": str(zones_file)}},
        )

    return replicate


ZONE_SHIFT_DEGREES = 0.001
"""Latitude step between copies of the LoRaWAN parking zones (each sample zone is 0.0006° tall)."""


def _shifted_zone(zone: dict[str, Any], n: int) -> dict[str, Any]:
    """Copy ``n`` of a parking zone, north of the others, so each copy's spots form sites of sample size."""
    shifted = copy.deepcopy(zone)
    shifted["properties"]["id"] = f"{zone['properties']['id']}-{n}"
    for ring in shifted["geometry"]["coordinates"]:
        for position in ring:
            position[1] = round(position[1] + n * ZONE_SHIFT_DEGREES, 7)
    return shifted


def _json_or_text(line: bytes) -> dict[str, Any] | bytes:
    try:
        document: dict[str, Any] = json.loads(line)
    except ValueError:
        return line
    return document


REPLICATORS: dict[str, Replicator] = {
    "dortmund-parkhaeuser": _replicate_parking,
    "edg-containers": _replicate_waste,
    "pegelonline": _replicate_pegelonline,
    "sensor-community": _replicate_sensor_community,
    "buildings": _replicate_buildings,
    "building-meters": _replicate_meters,
    "brightsky": _replicate_brightsky,
    "tts-v3": _replicate_lorawan(("end_device_ids", "dev_eui"), None),
    "chirpstack-v4": _replicate_lorawan(("deviceInfo", "devEui"), "deduplicationId"),
}


def _replicate_unknown(sample: bytes, count: int, _: Path) -> Replica:
    """A partner adapter's kind: its sample payload as is, repeated (ids repeat: a rough figure only)."""
    return Replica([sample] * max(1, count), "sample payload repeated unchanged (no replicator for this kind)")


@dataclass
class KindRun:
    adapter: type[Adapter]
    source: SourceKind
    replica: Replica
    settings: dict[str, Any]
    workdir: Path

    def context(self) -> tuple[NormalizeContext, Resources | None]:
        """Fresh resources (device registry, dedup and counter state) in memory, as ``normalize`` has them."""
        resources = self.adapter.open_resources(self.settings, base_dir=self.workdir, persistent=False)
        context = NormalizeContext(tenant=self.adapter.default_tenant, settings=self.settings, resources=resources)
        return context, resources


def kind_settings(adapter: type[Adapter], source: SourceKind, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults of the adapter's section, as ``--offline`` replays samples, plus what the replica needs."""
    config = load_config(None, {adapter.name: adapter.section_schema()}, environ={})
    settings = {**adapter.offline_settings({**config["adapters"][adapter.name], "source": source.name})}
    for key, value in extra.items():  # one level deep: a kind's section keeps its other settings
        settings[key] = {**settings[key], **value} if isinstance(value, dict) else value
    return settings


def _timed_runs(repeat: int, run: KindRun, action: Callable[[NormalizeContext], Any]) -> tuple[float, Any]:
    """Least CPU time of ``repeat`` runs, each on a fresh context opened (and closed) outside the timing."""
    best, result = float("inf"), None
    for _ in range(repeat):
        context, resources = run.context()
        gc.collect()
        try:
            started = time.process_time()
            result = action(context)
            best = min(best, time.process_time() - started)
        finally:
            if resources is not None:
                resources.close()
    return best, result


def bench_kind(run: KindRun, repeat: int) -> dict[str, Any]:
    source, payloads = run.source, run.replica.payloads

    def full(context: NormalizeContext) -> list[Any]:
        return [normalize_payload(source, payload, context, origin="bench") for payload in payloads]

    full_cpu, results = _timed_runs(repeat, run, full)
    records = sum(result.records for result in results)
    produced = sum(len(result.entities) for result in results)
    rejected = sum(len(result.rejections) for result in results)
    del results  # a large live heap makes every later garbage collection slower
    streamed: dict[str, Any] | None = None
    if run.adapter.mode == "poll":  # what ``run`` does with a poll: chunks written and dropped as they come

        def chunked(context: NormalizeContext) -> int:
            return sum(
                len(chunk.entities)
                for payload in payloads
                for chunk in normalize_chunks(source, payload, context, origin="bench")
            )

        streamed_cpu, _ = _timed_runs(repeat, run, chunked)
        streamed = {
            "records_per_s": rate(records, streamed_cpu),
            "us_per_record": round(streamed_cpu / records * 1e6, 1),
        }
    parse_cpu, _, parsed = best_of(repeat, lambda: [record for payload in payloads for record in source.parse(payload)])

    def normalise_only(context: NormalizeContext) -> list[Entity]:
        entities: list[Entity] = []
        for record in parsed:
            try:
                entities.extend(source.normalize(record, context))
            except RecordRejected as rejected:
                entities.extend(rejected.partial)
            except EntityError:
                pass
        return entities

    normalise_cpu, entities = _timed_runs(repeat, run, normalise_only)
    validate_cpu, _, problems = best_of(repeat, lambda: [entity_problems(entity) for entity in entities])

    def per_record(seconds: float) -> float:
        return round(seconds / records * 1e6, 1) if records else 0.0

    return {
        "adapter": run.adapter.name,
        "replicated": run.replica.how,
        "payloads": len(payloads),
        "payload_bytes": sum(len(payload) for payload in payloads),
        "records": records,
        "entities": produced,
        "rejected": rejected,
        "cpu_seconds": round(full_cpu, 3),
        "records_per_s": rate(records, full_cpu),
        "entities_per_s": rate(produced, full_cpu),
        "us_per_record": per_record(full_cpu),
        "streamed_normalize_chunks": streamed,
        "split_us_per_record": {
            "parse": per_record(parse_cpu),
            "normalise": per_record(normalise_cpu),
            "validate": per_record(validate_cpu),
        },
        "validate_us_per_entity": round(validate_cpu / len(entities) * 1e6, 1) if entities else None,
        "entities_valid_in_validate_run": sum(1 for found in problems if not found),
    }


def bench_kinds(records: int, uplinks: int, repeat: int, workdir: Path) -> dict[str, Any]:
    """normalize_payload of every installed source kind, per CPU second (best of ``repeat``)."""
    figures: dict[str, Any] = {"repeat": repeat, "timing": "process_time, best of runs, garbage collector on"}
    figures["garbage_collector"] = gc_setting()
    for adapter in discover_adapters().values():
        for source in adapter.sources:
            kind_dir = workdir / source.name
            kind_dir.mkdir()
            replicate = REPLICATORS.get(source.name, _replicate_unknown)
            count = uplinks if adapter.mode == "push" else records
            replica = replicate(adapter.sample_payload(source), count, kind_dir)
            settings = kind_settings(adapter, source, replica.settings)
            figures[source.name] = bench_kind(KindRun(adapter, source, replica, settings, kind_dir), repeat)
    return figures


# --------------------------------------------------------------------------------- 2. encoding


def bench_encoding(entities: Sequence[Entity], batch: int, limits: dict[str, Any]) -> dict[str, Any]:
    """JSON work of the sink per entity (CPU time): what BrokerSink.write and the outbox do, against the stdlib.

    Like timeit, with the garbage collector off: a collection that happens to fall into one of these short
    loops costs more than the loop and would decide the comparison.
    """
    gc.collect()
    gc.disable()
    try:
        return _encoding_figures(entities, batch, limits)
    finally:
        gc.enable()


_STDLIB_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _encoding_figures(entities: Sequence[Entity], batch: int, limits: dict[str, Any]) -> dict[str, Any]:
    count = len(entities)
    batches = [list(entities[i : i + batch]) for i in range(0, count, batch)]
    encode_cpu, _, encoded = best_of(3, lambda: [encode_entities(chunk) for chunk in batches])
    stdlib_cpu, _, stdlib = best_of(3, lambda: [_STDLIB_ENCODER.encode(chunk).encode() for chunk in batches])
    orjson_loads_cpu, _, _ = best_of(3, lambda: [orjson.loads(body) for body in encoded])
    json_loads_cpu, _, _ = best_of(3, lambda: [json.loads(body) for body in encoded])
    max_entities, max_bytes = limits["max_batch_entities"], limits["max_payload_bytes"]
    sized_cpu, _, _ = best_of(
        3, lambda: [body for chunk in batches for _, body in encoded_batches(chunk, max_entities, max_bytes)]
    )
    return {
        "entities": count,
        "batch": batch,
        "bytes_per_entity": round(sum(len(body) for body in encoded) / count, 1),
        "orjson_version": metadata.version("orjson"),
        "encode_us_per_entity": round(encode_cpu / count * 1e6, 2),
        "stdlib_encode_us_per_entity": round(stdlib_cpu / count * 1e6, 2),
        "byte_identical_to_stdlib_here": encoded == stdlib,
        "orjson_loads_us_per_entity": round(orjson_loads_cpu / count * 1e6, 2),
        "stdlib_loads_us_per_entity": round(json_loads_cpu / count * 1e6, 2),
        "encoded_batches_us_per_entity": round(sized_cpu / count * 1e6, 2),
    }


# ------------------------------------------------------------------------------ servers we start


@contextlib.contextmanager
def broker_double_process() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m adapters.testing --port 0`` in its own process; yields its URL once it accepts."""
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.testing", "--port", "0", "--host", LOOPBACK],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_environment(),
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", url)
        if not match:
            raise RuntimeError(f"broker double did not start (printed {url!r})")
        wait_for_port(int(match.group(1)))
        yield url, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def count_entities(url: str) -> int:
    response = requests.get(
        f"{url}/ngsi-ld/v1/entities",
        params={"type": "OffStreetParking", "count": "true", "limit": "0"},
        headers={"NGSILD-Tenant": TENANT, "Accept": "application/json"},
        timeout=30,
    )
    response.raise_for_status()
    return int(response.headers["NGSILD-Results-Count"])


@contextlib.contextmanager
def payload_server(payload: bytes) -> Iterator[str]:
    """A local HTTP server answering every GET with ``payload`` (the open-data endpoint stand-in)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/api/explore/v2.1/catalog/datasets/parkhauser/records"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# -------------------------------------------------------------------------------------- 3. sinks


class _CountingHook:
    """Response hook on the client's session: number of requests and bytes on the wire (approx.)."""

    def __init__(self) -> None:
        self.requests = 0
        self.body_bytes = 0
        self.header_bytes = 0

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        body = request.body or b""
        self.requests += 1
        self.body_bytes += len(body)
        self.header_bytes += len(f"{request.method} {request.path_url} HTTP/1.1\r\n") + sum(
            len(name) + len(value) + 4 for name, value in request.headers.items()
        )


def bench_broker_sink(entities: Sequence[Entity], write_size: int, workdir: Path) -> dict[str, Any]:
    defaults = broker_defaults()
    with broker_double_process() as (url, double):
        session = requests.Session()
        counter = _CountingHook()
        session.hooks["response"].append(counter)
        client = BrokerClient(
            url,
            context_url=defaults["context"],
            timeout=defaults["timeout"],
            max_batch_entities=defaults["max_batch_entities"],
            max_payload_bytes=defaults["max_payload_bytes"],
            session=session,
        )
        outbox = Outbox(workdir / "outbox.sqlite")
        sink = BrokerSink(client, outbox, DeadLetterFile(workdir / "dead-letter.ndjson"))
        # One write first, not measured: the connection, the outbox file and the double's tenant exist.
        sink.write(TENANT, ADAPTER, entities[:1])
        sink.deliver(force=True)
        requests_before, body_before, header_before = counter.requests, counter.body_bytes, counter.header_bytes

        latencies, write_times, deliver_times = [], [], []
        delivered = rejected = report_requests = 0
        double_cpu_before = process_cpu_seconds(double.pid)
        cpu_before = time.process_time()
        started = time.perf_counter()
        for offset in range(0, len(entities), write_size):
            chunk = entities[offset : offset + write_size]
            begin = time.perf_counter()
            sink.write(TENANT, ADAPTER, chunk)
            written = time.perf_counter()
            report = sink.deliver(force=True)
            done = time.perf_counter()
            if report.pending or report.error:
                raise RuntimeError(f"delivery failed: {report}")
            delivered += report.delivered
            rejected += report.rejected
            report_requests += report.requests
            write_times.append(written - begin)
            deliver_times.append(done - written)
            latencies.append(done - begin)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        double_cpu_after = process_cpu_seconds(double.pid)
        stored = count_entities(url)
        sink.close()

    requests_sent = counter.requests - requests_before
    count = len(entities)
    double_cpu = (
        round(double_cpu_after - double_cpu_before, 2)
        if double_cpu_before is not None and double_cpu_after is not None
        else None
    )
    return {
        "entities": count,
        "write_size": write_size,
        "writes": len(latencies),
        "seconds": round(seconds, 3),
        "entities_per_s": rate(count, seconds),
        "delivered": delivered,
        "rejected": rejected,
        "stored_in_broker": stored,
        "broker_requests": requests_sent,
        "requests_per_100_entities": round(requests_sent / count * 100, 2),
        "request_body_bytes_per_entity": round((counter.body_bytes - body_before) / count, 1),
        "request_header_bytes_per_request": round((counter.header_bytes - header_before) / max(1, requests_sent)),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50) * 1000, 2),
            "p95": round(percentile(latencies, 0.95) * 1000, 2),
            "p99": round(percentile(latencies, 0.99) * 1000, 2),
            "max": round(max(latencies) * 1000, 2),
        },
        "write_ms_p50": round(statistics.median(write_times) * 1000, 2),
        "deliver_ms_p50": round(statistics.median(deliver_times) * 1000, 2),
        "adapter_cpu_seconds": round(cpu, 2),
        "adapter_cpu_us_per_entity": round(cpu / count * 1e6, 1),
        "double_cpu_seconds": double_cpu,
    }


def bench_file_sink(entities: Sequence[Entity], write_size: int, workdir: Path) -> dict[str, Any]:
    sink = FileSink(workdir / "entities.ndjson")
    cpu_before = time.process_time()
    started = time.perf_counter()
    for offset in range(0, len(entities), write_size):
        sink.write(TENANT, ADAPTER, entities[offset : offset + write_size])
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    size = sink.path.stat().st_size
    sink.close()
    return {
        "entities": len(entities),
        "write_size": write_size,
        "seconds": round(seconds, 3),
        "entities_per_s": rate(len(entities), seconds),
        "bytes_per_entity": round(size / len(entities), 1),
        "cpu_seconds": round(cpu, 2),
    }


# ------------------------------------------------------------------------------ 4. one process


# Runs in a small fresh interpreter that starts the measured command and reports its rusage. Why not
# straight from this script: a child created by fork/vfork inherits the parent's RSS high-water mark
# across exec (Linux keeps the larger of the old and new ru_maxrss), so every child of this big process
# would report at least this process's own peak. The launcher's peak (VmHWM) is the floor of the figure.
_LAUNCHER = """
import json, os, resource, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.posix_spawn(command[0], command, os.environ)
_, status = os.waitpid(pid, 0)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # exactly one child: the measured command
try:  # Linux
    floor = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    floor = 0
with open(report, "w") as handle:
    json.dump({"exit_code": os.waitstatus_to_exitcode(status), "wall": wall, "user": usage.ru_utime,
               "system": usage.ru_stime, "maxrss": usage.ru_maxrss, "launcher_kib": floor}, handle)
"""


def run_measured(command: Sequence[str], env: dict[str, str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run one command; its wall time, CPU seconds and peak RSS from ``getrusage(RUSAGE_CHILDREN)``.

    The figures are taken in a launcher process whose only child is the command (see ``_LAUNCHER``),
    so neither this script nor the broker double (also a child of this script) can leak into them.
    """
    if not Path(command[0]).is_absolute():
        raise ValueError(f"{command[0]}: the launcher needs an absolute path")
    report = log.with_suffix(".rusage.json")
    with log.open("wb") as output:
        subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(report), *command],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=True,
        )
    usage = json.loads(report.read_text())
    return {
        "exit_code": usage["exit_code"],
        "wall_seconds": round(usage["wall"], 3),
        "cpu_seconds": round(usage["user"] + usage["system"], 3),
        "user_seconds": round(usage["user"], 3),
        "system_seconds": round(usage["system"], 3),
        "peak_rss_mib": maxrss_mib(usage["maxrss"]),
        "launcher_floor_mib": round(usage["launcher_kib"] / 1024, 1),
    }


def run_summary(log: Path) -> dict[str, int] | str:
    text = log.read_text(errors="replace")
    match = re.search(r"(\d+) records read, (\d+) entities written, (\d+) rejected", text)
    if not match:
        return text[-2000:]
    records, entities, rejected = (int(group) for group in match.groups())
    return {"records": records, "entities": entities, "rejected": rejected}


def bench_process(records: int, startup_runs: int, workdir: Path) -> dict[str, Any]:
    command = console_script()
    figures: dict[str, Any] = {
        "command": " ".join(Path(part).name for part in command),
        "runs_use": f"--adapter {ADAPTER} (only the parking adapter polls; others installed stay idle)",
    }

    baseline = run_measured([sys.executable, "-c", "pass"], clean_environment(), workdir, workdir / "python.log")
    figures["python_baseline"] = {"peak_rss_mib": baseline["peak_rss_mib"], "wall_seconds": baseline["wall_seconds"]}

    startup = []
    for _ in range(startup_runs):
        measured = run_measured([*command, "list"], clean_environment(), workdir, workdir / "list.log")
        if measured["exit_code"] != 0:
            raise RuntimeError(f"dos-adapters list failed: {(workdir / 'list.log').read_text()}")
        startup.append(measured)
    figures["startup_list"] = {
        "runs": startup_runs,
        "wall_seconds_median": round(statistics.median(m["wall_seconds"] for m in startup), 3),
        "wall_seconds_min": round(min(m["wall_seconds"] for m in startup), 3),
        "cpu_seconds_median": round(statistics.median(m["cpu_seconds"] for m in startup), 3),
        "peak_rss_mib": max(m["peak_rss_mib"] for m in startup),
    }

    payload = synthetic_payload(records)
    for name, extra, expected in (
        ("run_once_offline_sample", ["--offline"], None),
        ("run_once_large_payload", [], records),
    ):
        run_dir = workdir / name
        run_dir.mkdir()
        with broker_double_process() as (url, double), payload_server(payload) as source_url:
            env = clean_environment(
                DOS_BROKER_URL=url,
                DOS_ADAPTERS_PARKING_URL=source_url,
                DOS_OUTBOX_PATH=str(run_dir / "outbox.sqlite"),
                DOS_OUTPUT_PATH=str(run_dir / "entities.ndjson"),
                DOS_DEAD_LETTER_PATH=str(run_dir / "dead-letter.ndjson"),
                DOS_LOG_LEVEL="WARNING",
            )
            double_cpu_before = process_cpu_seconds(double.pid)
            measured = run_measured(
                [*command, "run", "--once", "--adapter", ADAPTER, *extra], env, run_dir, run_dir / "run.log"
            )
            double_cpu_after = process_cpu_seconds(double.pid)
            stored = count_entities(url)
        measured["summary"] = run_summary(run_dir / "run.log")
        measured["stored_in_broker"] = stored
        if double_cpu_before is not None and double_cpu_after is not None:
            measured["double_cpu_seconds"] = round(double_cpu_after - double_cpu_before, 2)
        if expected is not None:
            measured["records"] = expected
            measured["payload_bytes"] = len(payload)
            if isinstance(measured["summary"], dict) and measured["wall_seconds"] > 0:
                measured["entities_per_s_end_to_end"] = rate(measured["summary"]["entities"], measured["wall_seconds"])
        if measured["exit_code"] != 0:
            raise RuntimeError(f"{name} failed: {(run_dir / 'run.log').read_text()[-2000:]}")
        figures[name] = measured

    return figures


# ---------------------------------------------------------------------------------------- output


def kind_rows(kinds: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """One row per source kind: normalize_payload per CPU second, and where a record's time goes."""
    rows = []
    for name, k in kinds.items():
        if not isinstance(k, dict):
            continue
        split = k["split_us_per_record"]
        unit = "uplinks" if k["adapter"] == "lorawan" else "records"
        streamed = k.get("streamed_normalize_chunks")
        chunks = f"; streamed in chunks as `run` does: {streamed['records_per_s']:,.0f} {unit}/s" if streamed else ""
        rows.append(
            (
                "normalize, per kind",
                f"{name} ({k['adapter']}): {k['records']:,} {unit} → {k['entities']:,} entities, "
                f"{k['rejected']:,} rejected",
                f"**{k['records_per_s']:,.0f} {unit}/s, {k['entities_per_s']:,.0f} entities/s** "
                f"({k['us_per_record']} µs; parse {split['parse']} / normalise {split['normalise']} / "
                f"validate {split['validate']} µs){chunks}",
            )
        )
    return rows


def markdown(results: dict[str, Any]) -> str:
    """The figures as a Markdown table (the one in docs/performance.md)."""
    m = results["machine"]
    rows = [
        ("machine", "Python, CPUs, platform", f"{m['python']}, {m['cpu_count']} x {m['cpu_model']}, {m['platform']}"),
        (
            "machine",
            "date, load average at start / end",
            f"{m['date']}, {m['loadavg_1min_at_start']} / {m.get('loadavg_1min_at_end')}",
        ),
        ("machine", "garbage collector in this process", m["garbage_collector"]),
    ]
    if "normalize" in results:
        rows += _normalize_rows(results["normalize"])
    if "normalize_kinds" in results:
        rows += kind_rows(results["normalize_kinds"])
    if "encoding" in results:
        rows += _encoding_rows(results["encoding"])
    if "sink_broker" in results:
        rows += _broker_sink_rows(results["sink_broker"])
    if "sink_file" in results:
        f = results["sink_file"]
        rows.append(
            (
                "file sink",
                f"{f['entities']:,} entities, writes of {f['write_size']}",
                f"**{f['entities_per_s']:,.0f} entities/s**",
            )
        )
    if "process" in results:
        rows += _process_rows(results["process"])
    lines = ["| area | figure | value |", "|---|---|---|"]
    lines += [f"| {area} | {figure} | {value} |" for area, figure, value in rows]
    return "\n".join(lines)


def _normalize_rows(n: dict[str, Any]) -> list[tuple[str, str, str]]:
    nv, vo, js = n["normalize_without_validation"], n["validation_only"], n["validation_json_schema_part"]
    return [
        (
            "normalize",
            "synthetic payload",
            f"{n['records']:,} records → {n['entities']:,} entities, "
            f"{n['rejected']:,} rejected ({n['payload_bytes'] / 1e6:.1f} MB)",
        ),
        (
            "normalize",
            "normalize_payload (parse + normalise + validate)",
            f"**{n['full']['records_per_s']:,.0f} records/s, {n['full']['entities_per_s']:,.0f} entities/s** "
            f"({n['full']['us_per_record']} µs/record)",
        ),
        (
            "normalize",
            "parse only",
            f"{n['parse_only']['records_per_s']:,.0f} records/s ({n['parse_only']['us_per_record']} µs/record)",
        ),
        (
            "normalize",
            "normalise only, no validation",
            f"{nv['records_per_s']:,.0f} records/s ({nv['us_per_record']} µs/record)",
        ),
        (
            "normalize",
            "validation only (entity_problems)",
            f"{vo['entities_per_s']:,.0f} entities/s ({vo['us_per_entity']} µs/entity)",
        ),
        (
            "normalize",
            f"… of which the JSON Schema pass ({js['sample']:,} entities)",
            f"{js['us_per_entity']} µs/entity",
        ),
        ("normalize", "validation share of normalize_payload", f"{n['validation_share_of_full']:.0%}"),
    ]


def _encoding_rows(e: dict[str, Any]) -> list[tuple[str, str, str]]:
    same = "same bytes" if e["byte_identical_to_stdlib_here"] else "bytes differ"
    return [
        (
            "encoding",
            f"encode_entities (orjson {e['orjson_version']}) / stdlib json per entity (batches of 100)",
            f"{e['encode_us_per_entity']} / {e['stdlib_encode_us_per_entity']} µs, {e['bytes_per_entity']} bytes "
            f"({same})",
        ),
        (
            "encoding",
            "orjson.loads (outbox) / json.loads per entity",
            f"{e['orjson_loads_us_per_entity']} / {e['stdlib_loads_us_per_entity']} µs",
        ),
        ("encoding", "encoded_batches (sizes + body, as write/deliver)", f"{e['encoded_batches_us_per_entity']} µs"),
    ]


def _broker_sink_rows(b: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (
            "broker sink",
            f"{b['entities']:,} entities, writes of {b['write_size']}, deliver after each",
            f"**{b['entities_per_s']:,.0f} entities/s** ({b['stored_in_broker']:,} stored, {b['rejected']} rejected)",
        ),
        (
            "broker sink",
            "broker requests (per 100 entities)",
            f"{b['broker_requests']:,} ({b['requests_per_100_entities']})",
        ),
        (
            "broker sink",
            "request size",
            f"{b['request_body_bytes_per_entity']} body bytes/entity "
            f"+ ~{b['request_header_bytes_per_request']} header bytes/request",
        ),
        (
            "broker sink",
            "latency write() → 2xx: p50 / p95 / p99",
            f"{b['latency_ms']['p50']} / {b['latency_ms']['p95']} / {b['latency_ms']['p99']} ms",
        ),
        (
            "broker sink",
            "… p50 of write() (outbox commit) / deliver()",
            f"{b['write_ms_p50']} / {b['deliver_ms_p50']} ms",
        ),
        (
            "broker sink",
            "CPU: adapter side / broker double",
            f"{b['adapter_cpu_us_per_entity']} µs/entity ({b['adapter_cpu_seconds']} s) / {b['double_cpu_seconds']} s",
        ),
    ]


def _process_rows(p: dict[str, Any]) -> list[tuple[str, str, str]]:
    large, offline, startup = p["run_once_large_payload"], p["run_once_offline_sample"], p["startup_list"]
    return [
        ("process", "python -c pass (floor)", f"{p['python_baseline']['peak_rss_mib']} MiB peak RSS"),
        (
            "process",
            f"dos-adapters list (median of {startup['runs']})",
            f"{startup['wall_seconds_median']} s wall, {startup['cpu_seconds_median']} s CPU, "
            f"{startup['peak_rss_mib']} MiB",
        ),
        (
            "process",
            "run --once --offline (24-record sample)",
            f"{offline['wall_seconds']} s wall, {offline['cpu_seconds']} s CPU, "
            f"**{offline['peak_rss_mib']} MiB** peak RSS",
        ),
        (
            "process",
            f"run --once, {large['records']:,} records over HTTP → broker double",
            f"{large['wall_seconds']} s wall, {large['cpu_seconds']} s CPU, **{large['peak_rss_mib']} MiB** peak RSS, "
            f"{large.get('entities_per_s_end_to_end', 0):,.0f} entities/s incl. start-up",
        ),
    ]


SECTIONS = ("normalize", "normalize_kinds", "encoding", "broker_sink", "file_sink", "process")


def _sections(text: str) -> tuple[str, ...]:
    """``--only``'s value: known section names, comma-separated."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {', '.join(unknown) or '(none)'}; known: {', '.join(SECTIONS)}"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about 20 s instead of up to 3 min")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table instead of the JSON object")
    parser.add_argument("--json-file", type=Path, help="also write the JSON object to this file")
    parser.add_argument("--records", type=int, help="records for the normalize benchmark (default 50000, quick 5000)")
    parser.add_argument(
        "--kind-records", type=int, help="records per poll source kind in 'normalize_kinds' (default 2000, quick 300)"
    )
    parser.add_argument(
        "--uplinks", type=int, help="uplinks per LoRaWAN format in 'normalize_kinds' (default 2000, quick 300)"
    )
    parser.add_argument("--sink-entities", type=int, help="entities through each sink (default 20000, quick 3000)")
    parser.add_argument("--write-size", type=int, default=100, help="entities per sink.write() (default 100)")
    parser.add_argument(
        "--run-records", type=int, help="records served to the measured run (default 20000, quick 3000)"
    )
    parser.add_argument("--startup-runs", type=int, help="runs of 'dos-adapters list' (default 5, quick 3)")
    parser.add_argument(
        "--gc",
        choices=("process", "default"),
        default="process",
        help="garbage collector: as the adapter process sets it (tune_garbage_collector, the default) or "
        "CPython's defaults, for comparison",
    )
    parser.add_argument(
        "--only",
        type=_sections,
        default=SECTIONS,
        metavar="SECTION[,SECTION]",
        help=f"run only these sections, comma-separated (default: all): {', '.join(SECTIONS)}",
    )
    args = parser.parse_args(argv)
    only = set(args.only)
    records = args.records or (5_000 if args.quick else 50_000)
    kind_records = args.kind_records or (300 if args.quick else 2_000)
    uplinks = args.uplinks or (300 if args.quick else 2_000)
    sink_entities = args.sink_entities or (3_000 if args.quick else 20_000)
    run_records = args.run_records or (3_000 if args.quick else 20_000)
    startup_runs = args.startup_runs or (3 if args.quick else 5)

    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine()}
    # After the imports, as ``dos-adapters run`` and ``normalize`` do it after theirs: what this process
    # times in-process (normalize, normalize_kinds, the sinks' adapter side) runs under the same setting.
    results["machine"]["garbage_collector"] = tune_garbage_collector() if args.gc == "process" else gc_setting()
    results["settings"] = {
        "quick": args.quick,
        "normalize_records": records,
        "kind_records": kind_records,
        "kind_uplinks": uplinks,
        "sink_entities": sink_entities,
        "write_size": args.write_size,
        "run_records": run_records,
        "startup_runs": startup_runs,
    }
    results["settings"]["sections"] = list(only)
    normalised: list[Entity] = []
    if "normalize" in only:
        results["normalize"], normalised = bench_normalize(records)
    entities: list[Entity] = []
    if only & {"encoding", "broker_sink", "file_sink"}:
        enough = len(normalised) >= sink_entities
        entities = normalised[:sink_entities] if enough else synthetic_entities(sink_entities)
    del normalised
    if "encoding" in only:
        results["encoding"] = bench_encoding(entities, args.write_size, broker_defaults())
    with tempfile.TemporaryDirectory(prefix="dos-bench-") as temp:
        workdir = Path(temp)
        if "normalize_kinds" in only:
            (workdir / "kinds").mkdir()
            results["normalize_kinds"] = bench_kinds(kind_records, uplinks, 2, workdir / "kinds")
        if "broker_sink" in only:
            (workdir / "broker").mkdir()
            results["sink_broker"] = bench_broker_sink(entities, args.write_size, workdir / "broker")
        if "file_sink" in only:
            (workdir / "file").mkdir()
            results["sink_file"] = bench_file_sink(entities, args.write_size, workdir / "file")
        if "process" in only:
            (workdir / "process").mkdir()
            results["process"] = bench_process(run_records, startup_runs, workdir / "process")
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    if hasattr(os, "getloadavg"):
        results["machine"]["loadavg_1min_at_end"] = round(os.getloadavg()[0], 2)
    if args.json_file is not None:
        args.json_file.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(markdown(results) if args.markdown else json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

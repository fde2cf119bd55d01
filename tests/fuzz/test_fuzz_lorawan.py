"""Fuzzed LoRaWAN input: both uplink formats, every decoder model, the device registry CSV.

Uplinks are the recorded ones (samples and cases) with one thing broken: the document's structure,
the base64 payload, the port, the time, or the line's bytes. The decoder runs take the recorded
frames of each model and damage their bytes, so every decoder sees input close to what it knows.
Many uplinks travel in one NDJSON payload, as a webhook batch or a capture does; each is one case.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import ORIGIN, Seed, Tally, assert_clean, run_fuzz, seeds

from adapters.core.adapter import NormalizeContext
from adapters.core.lorawan.decoders import MODELS
from adapters.core.lorawan.registry import DeviceRegistry, RegistryError
from adapters.core.lorawan.uplinks import CHIRPSTACK_V4, TTS_V3
from adapters.core.normalize import normalize_payload
from adapters.lorawan import LorawanAdapter
from adapters.testing.cases import adapter_settings
from adapters.testing.fuzz import FORMULAS, NASTY_TIMES, Mutator, encode_json, outcome_problems, sane_window

CASES_PER_PARSER = 10_000
UPLINKS_PER_PAYLOAD = 20
SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "lorawan" / "samples"


def _uplinks(seed: Seed) -> list[dict[str, Any]]:
    found = []
    for line in seed.payload.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict):
            found.append(document)
    return found


class UplinkFactory:
    """Recorded uplinks made unique (so deduplication never hides a case) and then broken."""

    def __init__(self, network: str) -> None:
        self.network = network
        self.counter = 0

    def fresh(self, uplink: dict[str, Any], moment: datetime) -> dict[str, Any]:
        """A copy that is a new uplink: its own counter and deduplication id, a time after the last one."""
        self.counter += 1
        copy = json.loads(json.dumps(uplink))
        stamp = moment.isoformat().replace("+00:00", "Z")
        if self.network == CHIRPSTACK_V4:
            copy["deduplicationId"] = f"fuzz-{self.counter}"
            copy["fCnt"] = self.counter
            copy["time"] = stamp
        else:
            message = copy.setdefault("uplink_message", {})
            if isinstance(message, dict):
                message["f_cnt"] = self.counter
            copy["received_at"] = stamp
        return copy

    def payload_field(self) -> tuple[str, ...]:
        return ("data",) if self.network == CHIRPSTACK_V4 else ("uplink_message", "frm_payload")

    def port_field(self) -> tuple[str, ...]:
        return ("fPort",) if self.network == CHIRPSTACK_V4 else ("uplink_message", "f_port")

    def time_field(self) -> tuple[str, ...]:
        return ("time",) if self.network == CHIRPSTACK_V4 else ("received_at",)


def _put(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = document
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        node[path[-1]] = value


def _get(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = document
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _broken_uplink(mutator: Mutator, factory: UplinkFactory, uplink: dict[str, Any], moment: datetime) -> bytes:
    rng = mutator.rng
    fresh = factory.fresh(uplink, moment)
    roll = rng.random()
    if roll < 0.35:
        return encode_json(mutator.json_document(fresh))
    if roll < 0.55:
        good = base64.b64decode(str(_get(fresh, factory.payload_field()) or ""), validate=False)
        _put(fresh, factory.payload_field(), mutator.base64_garbage(good))
    elif roll < 0.75:
        _put(fresh, factory.payload_field(), base64.b64encode(rng.randbytes(rng.randint(0, 24))).decode())
        _put(fresh, factory.port_field(), mutator.choice([rng.randint(0, 255), rng.randint(1, 4), -1, 256, "1", None]))
    elif roll < 0.85:
        _put(fresh, factory.time_field(), mutator.choice(NASTY_TIMES))
    else:
        return mutator.byte_level(encode_json(fresh)).replace(b"\n", b" ")
    return encode_json(fresh)


def _ndjson(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n"


def uplink_payloads(network: str) -> Any:
    """NDJSON payloads of broken uplinks of every recorded kind, times rising so none is stale."""
    factory = UplinkFactory(network)
    clock = iter(datetime(2024, 11, 5, tzinfo=UTC) + timedelta(seconds=s) for s in range(10**9))

    recorded: dict[str, list[dict[str, Any]]] = {}

    def make(mutator: Mutator, seed: Seed) -> bytes:
        uplinks = recorded.setdefault(seed.name, _uplinks(seed))
        return _ndjson(
            [_broken_uplink(mutator, factory, mutator.choice(uplinks), next(clock)) for _ in range(UPLINKS_PER_PAYLOAD)]
        )

    return make


@pytest.mark.parametrize("network", [CHIRPSTACK_V4, TTS_V3])
def test_broken_uplinks_of_each_format_are_rejected_with_a_reason_or_become_valid_entities(network: str) -> None:
    seed_list = seeds(LorawanAdapter, network)
    tally = run_fuzz(
        seed_list,
        uplink_payloads(network),
        cases=CASES_PER_PARSER // UPLINKS_PER_PAYLOAD,
        seed=9,
        fresh_resources_every=10,
    )
    assert tally.cases * UPLINKS_PER_PAYLOAD >= CASES_PER_PARSER
    assert tally.records > 0.9 * CASES_PER_PARSER  # a few damaged lines are blank: nothing to read
    assert_clean(tally, at_least_entities=500)


# ---------------------------------------------------------------------------------- decoders


def _recorded_frames() -> dict[str, list[tuple[int, bytes]]]:
    """(port, bytes) of every recorded uplink, per device model of the sample registry."""
    registry = DeviceRegistry.from_csv(SAMPLES / "devices.csv")
    frames: dict[str, list[tuple[int, bytes]]] = {model: [] for model in MODELS}
    for network in (CHIRPSTACK_V4, TTS_V3):
        for seed in seeds(LorawanAdapter, network):
            for uplink in _uplinks(seed):
                factory = UplinkFactory(network)
                eui = _get(uplink, ("deviceInfo", "devEui")) or _get(uplink, ("end_device_ids", "dev_eui"))
                device = registry.get(str(eui))
                data, port = _get(uplink, factory.payload_field()), _get(uplink, factory.port_field())
                if device is not None and isinstance(data, str) and isinstance(port, int):
                    frames[device.model].append((port, base64.b64decode(data)))
    return frames


def _damaged(mutator: Mutator, frame: bytes) -> bytes:
    rng = mutator.rng
    operation = rng.randrange(6)
    if operation == 0:
        return frame
    if operation == 1 and frame:
        data = bytearray(frame)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if operation == 2:
        return frame[: rng.randrange(len(frame) + 1)]
    if operation == 3:
        return frame + rng.randbytes(rng.randint(1, 8))
    if operation == 4:
        return rng.randbytes(len(frame))
    return rng.randbytes(rng.randint(0, 40))


def _template(model: str) -> tuple[dict[str, Any], str]:
    """A ChirpStack uplink from the samples, and the DevEUI of a sample device of ``model``."""
    registry = DeviceRegistry.from_csv(SAMPLES / "devices.csv")
    dev_eui = next(device.dev_eui for device in registry if device.model == model)
    template = _uplinks(seeds(LorawanAdapter, CHIRPSTACK_V4)[0])[0]
    template.pop("object", None)
    return template, dev_eui


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_decoder_rejects_damaged_frames_with_a_reason_or_yields_valid_entities(model: str) -> None:
    frames = _recorded_frames()[model]
    assert frames, f"no recorded frame of {model} in the samples or cases"
    template, dev_eui = _template(model)
    ports = sorted(MODELS[model].ports)
    factory = UplinkFactory(CHIRPSTACK_V4)
    clock = iter(datetime(2024, 11, 5, tzinfo=UTC) + timedelta(seconds=s) for s in range(10**9))

    def make(mutator: Mutator, seed: Seed) -> bytes:
        lines = []
        for _ in range(UPLINKS_PER_PAYLOAD):
            port, frame = mutator.choice(frames)
            uplink = factory.fresh(template, next(clock))
            uplink["deviceInfo"]["devEui"] = dev_eui
            uplink["data"] = base64.b64encode(_damaged(mutator, frame)).decode()
            uplink["fPort"] = port if mutator.rng.random() < 0.8 else mutator.choice([*ports, 0, 224, 255])
            lines.append(encode_json(uplink))
        return _ndjson(lines)

    sample = seeds(LorawanAdapter, CHIRPSTACK_V4)[0]
    tally = run_fuzz(
        [sample],
        make,
        cases=CASES_PER_PARSER // UPLINKS_PER_PAYLOAD,
        seed=11,
        fresh_resources_every=10,
    )
    assert tally.records >= CASES_PER_PARSER
    assert_clean(tally, at_least_entities=500)


# ---------------------------------------------------------------------------------- registry


def _registry_variants(count: int, seed: int) -> Iterator[bytes]:
    """The sample registry and the cases' registries with broken rows, columns, values and encodings."""
    sources = [SAMPLES / "devices.csv", *sorted((SAMPLES.parent / "cases").glob("*/devices.csv"))]
    texts = [path.read_text(encoding="utf-8") for path in sources]
    mutator = Mutator(seed)
    for number in range(count):
        text = texts[number % len(texts)]
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        roll = mutator.rng.random()
        if roll < 0.15:
            yield mutator.byte_level(text.encode())
        elif roll < 0.35:
            yield _formula_in_free_text(mutator, lines)
        else:
            yield mutator.csv_bytes("\n".join(lines) + "\n", ",")


def _formula_in_free_text(mutator: Mutator, lines: list[str]) -> bytes:
    """A spreadsheet formula in a name: the registry must keep it as plain text, and it must stay text."""
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header, body = rows[0], rows[1:]
    row = mutator.choice(body)
    row[header.index("name")] = mutator.choice(FORMULAS)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *body])
    return buffer.getvalue().encode()


def test_broken_device_registries_are_refused_with_every_problem_named_or_load_sane_devices(tmp_path: Path) -> None:
    """A registry either loads, with devices that make valid entities from the recorded uplinks, or
    RegistryError lists its problems, each starting with the file (and line) it is about."""
    origin = "devices.csv"
    path = tmp_path / origin
    uplinks = (SAMPLES / "chirpstack-v4-uplinks.ndjson").read_bytes()
    config = LorawanAdapter.offline_settings(adapter_settings(LorawanAdapter, {"source": CHIRPSTACK_V4}))
    settings = {**config, "devices": str(path)}
    earliest, latest = sane_window(datetime(2024, 11, 6, tzinfo=UTC))
    loaded = refused = entities = 0
    problems: list[str] = []
    rng = random.Random(5)
    for number, variant in enumerate(_registry_variants(CASES_PER_PARSER, seed=13)):
        try:
            registry = DeviceRegistry.from_bytes(variant, origin)
        except RegistryError as error:
            refused += 1
            placed = [p for p in error.problems if p.startswith(origin) and len(p) > len(origin) + 2]
            if not error.problems or placed != error.problems:
                problems.append(f"variant {number}: problems without place or reason: {error.problems!r}")
            continue
        except Exception as error:
            problems.append(f"variant {number}: {error!r} escaped for {variant[:300]!r}")
            continue
        loaded += 1
        for device in registry:
            if not device.entity_id or not device.tenant or not device.name:
                problems.append(f"variant {number}: device {device!r} loaded with an empty required field")
        if rng.random() < 0.05:  # the whole pipeline, from the file, on a sample of the loaded registries
            path.write_bytes(variant)
            resources = LorawanAdapter.open_resources(settings, base_dir=tmp_path, persistent=False)
            try:
                context = NormalizeContext(tenant="dortmund", settings=settings, resources=resources)
                result = normalize_payload(LorawanAdapter.source(CHIRPSTACK_V4), uplinks, context, origin=ORIGIN)
            finally:
                resources.close()
            entities += len(result.entities)
            problems += outcome_problems(result, origin=ORIGIN, earliest=earliest, latest=latest)
    assert not problems, "\n".join(problems[:20])
    assert loaded > 500 and refused > 500, (loaded, refused)
    assert entities > 0


def test_an_uplink_stamped_in_the_far_future_is_rejected() -> None:
    """A network server clock at 9999-12-31 would make this reading the device's newest state for good,
    and every later uplink of the device "older than its current state"."""
    sample = seeds(LorawanAdapter, CHIRPSTACK_V4)[0]
    uplink = _uplinks(sample)[0]
    uplink["time"] = "9999-12-31T23:59:59Z"
    resources = LorawanAdapter.open_resources(sample.settings, base_dir=sample.base_dir, persistent=False)
    try:
        context = NormalizeContext(
            tenant="dortmund",
            settings=sample.settings,
            received_at=datetime(2024, 11, 5, 9, tzinfo=UTC),
            resources=resources,
        )
        result = normalize_payload(sample.source, encode_json(uplink), context, origin=ORIGIN)
    finally:
        resources.close()
    assert result.entities == []
    assert "future" in result.rejections[0].reason


def test_the_harness_counts_what_it_runs() -> None:
    """Guards the counts above: a tally of a few good uplinks says how many records and entities it saw."""
    sample = seeds(LorawanAdapter, CHIRPSTACK_V4)[0]
    tally: Tally = run_fuzz([sample], lambda mutator, seed: seed.payload, cases=2, seed=0, fresh_resources_every=1)
    assert tally.cases == 2
    assert tally.records == 2 * len([line for line in sample.payload.splitlines() if line.strip()])
    assert tally.entities > 0

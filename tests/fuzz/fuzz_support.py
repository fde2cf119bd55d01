"""The fuzz runner shared by every file in tests/fuzz: seeds from the recorded cases, one loop, three yardsticks.

Every generated payload goes through ``normalize_payload`` exactly as ``run`` and ``normalize`` use it.
The outcome is checked by :func:`adapters.testing.fuzz.outcome_problems`; a sample of the emitted
entities is also checked against the official Smart Data Models schemas (``../shared/sdm``, which CI
has beside the checkout) and sent to the strict broker double in-process.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from adapters.core.adapter import Adapter, NormalizeContext, PayloadError, SourceKind
from adapters.core.entities import Entity, tenant_of_entity
from adapters.core.normalize import NormalizeResult, normalize_payload
from adapters.core.validation import entity_problems
from adapters.testing._service import Headers, HttpRequest, NgsiLdService
from adapters.testing.cases import adapter_settings, load_cases
from adapters.testing.fuzz import Mutator, encode_json, outcome_problems, sane_window

ROOT = Path(__file__).resolve().parents[2]
SDM = ROOT.parent / "shared" / "sdm"
ORIGIN = "fuzz"
# The official schemas are checked with the pure-Python jsonschema (~8 ms an entity): a spread sample.
SAMPLED_PER_TYPE = 6
_STAMP = re.compile(rb"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})|(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2})")


def recorded_at(payload: bytes) -> datetime:
    """When a recorded payload was fetched, near enough: an hour after the newest time in it.

    The fuzz hands this to the normaliser as ``received_at``, as the runner hands it the fetch time,
    so "in the future" and "stale" mean for a recording what they meant when it was recorded.
    """
    found = []
    for match in _STAMP.finditer(payload):
        groups = [int(g) if g else 0 for g in match.groups()]
        iso = match.group(1) is not None
        year, month, day, hour, minute = groups[:5] if iso else (groups[7], groups[6], groups[5], *groups[8:])
        with contextlib.suppress(ValueError):
            found.append(datetime(year, month, day, hour, minute, tzinfo=UTC))
    plausible = [moment for moment in found if 2015 <= moment.year <= 2030]
    return max(plausible, default=datetime.now(UTC)) + timedelta(hours=1)


@dataclass(frozen=True)
class Seed:
    """One recorded payload with the settings it was recorded under: what mutations start from."""

    name: str
    adapter: type[Adapter]
    source: SourceKind
    settings: Mapping[str, Any]
    tenant: str
    payload: bytes
    base_dir: Path

    @property
    def received_at(self) -> datetime:
        return recorded_at(self.payload)


def seeds(adapter: type[Adapter], source_name: str) -> list[Seed]:
    """The adapter's sample payload of this source kind and every recorded case of it."""
    source = adapter.source(source_name)
    package_dir = ROOT / "adapters" / adapter.name
    sample_settings = adapter.offline_settings(adapter_settings(adapter, {"source": source_name}))
    found = [
        Seed(
            "sample",
            adapter,
            source,
            sample_settings,
            adapter.default_tenant,
            adapter.sample_payload(source),
            package_dir / "samples",
        )
    ]
    for case in load_cases(adapter):
        if case.source.name == source_name:
            found.append(Seed(case.name, adapter, source, case.settings, case.tenant, case.payload, case.folder))
    return found


@dataclass
class Tally:
    """What one fuzz run saw; the assertions read it, and the counts show the run was not vacuous."""

    cases: int = 0
    unreadable: int = 0
    records: int = 0
    entities: int = 0
    rejections: int = 0
    problems: list[str] = field(default_factory=list)
    sample: list[Entity] = field(default_factory=list)
    entity_types: Counter[str] = field(default_factory=Counter)

    def failures(self, limit: int = 20) -> str:
        return f"{len(self.problems)} problems in {self.cases} cases, first {limit}:\n" + "\n".join(
            self.problems[:limit]
        )


PayloadMaker = Callable[[Mutator, Seed], bytes]


def run_fuzz(
    seed_list: list[Seed],
    make_payload: PayloadMaker,
    *,
    cases: int,
    seed: int,
    sample_every: int = 25,
    fresh_resources_every: int = 1,
) -> Tally:
    """``cases`` generated payloads, spread over the seeds; resources are reopened so state (ids seen,
    a meter's last reading, a device's newest uplink) from one case rarely hides the next one's input.
    """
    mutator = Mutator(seed)
    tally = Tally()
    resources: dict[str, Any] = {}
    received = {chosen.name: chosen.received_at for chosen in seed_list}
    for number in range(cases):
        chosen = seed_list[number % len(seed_list)]
        payload = make_payload(mutator, chosen)
        if number % fresh_resources_every == 0 or chosen.name not in resources:
            old = resources.pop(chosen.name, None)
            if old is not None:
                old.close()
            resources[chosen.name] = chosen.adapter.open_resources(
                chosen.settings, base_dir=chosen.base_dir, persistent=False
            )
        context = NormalizeContext(
            tenant=chosen.tenant,
            settings=chosen.settings,
            received_at=received[chosen.name],
            resources=resources[chosen.name],
        )
        tally.cases += 1
        try:
            result = normalize_payload(chosen.source, payload, context, origin=ORIGIN)
        except PayloadError as error:
            tally.unreadable += 1
            if len(str(error).strip()) < 8:
                tally.problems.append(f"case {number} ({chosen.name}): PayloadError without a reason: {error!r}")
            continue
        except Exception as error:  # the point of the test: report, with the input that did it
            tally.problems.append(f"case {number} ({chosen.name}): {error!r} escaped for {payload[:300]!r}")
            continue
        _count(tally, result, number, chosen.name, payload, received[chosen.name], sample_every)
    for opened in resources.values():
        if opened is not None:
            opened.close()
    return tally


def _count(
    tally: Tally, result: NormalizeResult, number: int, name: str, payload: bytes, received: datetime | None, every: int
) -> None:
    tally.records += result.records
    tally.entities += len(result.entities)
    tally.rejections += len(result.rejections)
    earliest, latest = sane_window(received) if received else (sane_window()[0], datetime.max.replace(tzinfo=UTC))
    for problem in outcome_problems(result, origin=ORIGIN, earliest=earliest, latest=latest):
        tally.problems.append(f"case {number} ({name}): {problem} -- input {payload[:200]!r}")
    for entity in result.entities:
        tally.entity_types[entity["type"]] += 1
        sampled = sum(1 for chosen in tally.sample if chosen["type"] == entity["type"])
        if tally.entity_types[entity["type"]] % every == 1 and sampled < SAMPLED_PER_TYPE:
            tally.sample.append(entity)


# ------------------------------------------------------------------------ JSON seeds


def subsample(document: Any, rng: random.Random, most: int = 3) -> Any:
    """The document with its record list cut to a few records: a case exercises records, not volume."""
    if isinstance(document, list):
        return rng.sample(document, min(len(document), rng.randint(1, most))) if document else document
    if isinstance(document, dict):
        lists = [key for key, value in document.items() if isinstance(value, list) and value]
        if lists:
            key = max(lists, key=lambda k: len(document[k]))
            return {**document, key: subsample(document[key], rng, most)}
    return document


@functools.cache
def _document(payload: bytes) -> Any:
    """A seed's parsed document, read once; mutations work on copies."""
    return json.loads(payload)


def json_cases(mutator: Mutator, seed: Seed) -> bytes:
    """Mostly structure-aware edits of a few real records; a fifth damaged at the byte level."""
    if mutator.rng.random() < 0.2:
        return mutator.byte_level(seed.payload)
    return mutator.json_bytes(subsample(_document(seed.payload), mutator.rng))


# ------------------------------------------------------------------------ yardsticks


def _load_sdm_validator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sdm_validate", SDM / "validate.py")
    assert spec is not None and spec.loader is not None, f"{SDM}/validate.py missing (CI has ../shared)"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SDM: dict[str, Any] = {}


def official_schema_problems(entities: list[Entity]) -> list[str]:
    """Entities against the official Smart Data Models schema of their type (formats enforced)."""
    if not _SDM:
        module = _load_sdm_validator()
        _SDM["module"] = module
        _SDM["store"] = module.SchemaStore(SDM, check_formats=True)
    module, store = _SDM["module"], _SDM["store"]
    problems = []
    for entity in entities:
        result = module.validate_entity(json.loads(json.dumps(entity)), store, True)
        if not result["ok"] or result.get("no_schema"):
            detail = result["structure_errors"] + result["schema_errors"] + result["warnings"][-1:]
            problems.append(f"{entity['id']}: {detail}")
    return problems


def broker_refusals(entities: list[Entity]) -> list[str]:
    """Upsert the entities into the strict Orion-LD double in-process, per tenant, in batches of 1000."""
    service = NgsiLdService(max_batch_entities=1000)
    problems = []
    by_tenant: dict[str, list[Entity]] = {}
    for entity in entities:
        by_tenant.setdefault(tenant_of_entity(entity), []).append(entity)
    for tenant, batch in by_tenant.items():
        for start in range(0, len(batch), 1000):
            request = HttpRequest(
                method="POST",
                path="/ngsi-ld/v1/entityOperations/upsert",
                query=[("options", "update")],
                headers=Headers(
                    [
                        ("Content-Type", "application/json"),
                        ("NGSILD-Tenant", tenant),
                        ("Link", '<http://context/ngsi-context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'),
                    ]
                ),
                body=json.dumps(batch[start : start + 1000]).encode(),
            )
            response = service.handle(request)
            if response.status not in (201, 204) and not (
                response.status == 207 and not json.loads(response.body)["errors"]
            ):
                problems.append(f"tenant {tenant}: {response.status} {response.body[:2000]!r}")
    return problems


def assert_clean(tally: Tally, *, at_least_entities: int = 1) -> None:
    """No crash, no bad outcome, real entities made it through, and they pass all three yardsticks."""
    assert not tally.problems, tally.failures()
    profile = [f"{entity['id']}: {problem}" for entity in tally.sample for problem in entity_problems(entity)]
    assert not profile, "\n".join(profile[:20])
    assert tally.entities >= at_least_entities, f"only {tally.entities} entities: the fuzz hardly reached a normaliser"
    assert tally.rejections > 0, "no record was rejected: the mutations did not bite"
    assert tally.sample, "no entity sampled"
    official = official_schema_problems(tally.sample)
    assert not official, "\n".join(official[:20])
    refused = broker_refusals(tally.sample)
    assert not refused, "\n".join(refused[:5])


# ------------------------------------------------------------------------ CSV and GeoJSON seeds


def seed_text(payload: bytes) -> str:
    """Exports come as UTF-8 (with or without BOM) or Windows-1252, as the recorded ones do."""
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        return payload.decode("cp1252")


def csv_cases(mutator: Mutator, seed: Seed) -> bytes:
    """A few consecutive rows of a real export under the real header, then CSV damage; a fifth byte-level."""
    if mutator.rng.random() < 0.2:
        return mutator.byte_level(seed.payload)
    text = seed_text(seed.payload)
    header, *rows = text.splitlines()
    start = mutator.rng.randrange(max(len(rows) - 5, 1))
    excerpt = "\n".join([header, *rows[start : start + mutator.rng.randint(1, 6)]]) + "\n"
    delimiter = ";" if header.count(";") > header.count(",") else ","
    return mutator.csv_bytes(excerpt, delimiter)


def geojson_cases(mutator: Mutator, seed: Seed) -> bytes:
    """Broken geometries and CRS declarations in a few real features, or any JSON edit, or byte damage."""
    roll = mutator.rng.random()
    if roll < 0.15:
        return mutator.byte_level(seed.payload)
    document = json.loads(json.dumps(subsample(_document(seed.payload), mutator.rng)))
    if roll < 0.55 and isinstance(document, dict):
        features = document.get("features") or [{}]
        for feature in mutator.rng.sample(features, mutator.rng.randint(1, len(features))):
            if isinstance(feature, dict):
                feature["geometry"] = mutator.geometry(feature.get("geometry"))
        if mutator.rng.random() < 0.3:
            document["crs"] = mutator.crs()
        return encode_json(document)
    return mutator.json_bytes(document)


def is_csv(seed: Seed) -> bool:
    return not seed.payload.lstrip(b"\xef\xbb\xbf \r\n").startswith(b"{")


def formats_balanced(seed_list: list[Seed]) -> list[Seed]:
    """The inventory's CSV seeds repeated until they are as many as its GeoJSON seeds: both parsers get
    half of the cases, though fewer CSV exports were recorded."""
    tables = [seed for seed in seed_list if is_csv(seed)]
    documents = [seed for seed in seed_list if not is_csv(seed)]
    return documents + (tables * len(documents))[: len(documents)] if tables else documents


def inventory_cases(mutator: Mutator, seed: Seed) -> bytes:
    """The inventory source reads GeoJSON and CSV: each seed is mutated as what it is."""
    return csv_cases(mutator, seed) if is_csv(seed) else geojson_cases(mutator, seed)

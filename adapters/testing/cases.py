"""Recorded cases: one folder per scenario, one runner for every adapter.

Layout of ``adapters/<adapter>/cases/<scenario>/``::

    case.toml          source = "<source kind>", description, optional tenant and [settings]
    payload.<ext>      the upstream payload exactly as received
    expected.ndjson    the entities the adapter must emit, in order
    rejected.ndjson    optional: {"where": ..., "reason": ...} per rejected record, in order

``python -m adapters.testing.cases ADAPTER [--update]`` shows the differences or rewrites the
expectations after a deliberate change (review the diff before committing it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from adapters.core.adapter import Adapter, NormalizeContext, SourceKind
from adapters.core.config import load_config
from adapters.core.normalize import CHUNK_RECORDS, normalize_chunks

__all__ = ["Case", "CaseOutput", "adapter_settings", "load_cases", "run_case"]


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    adapter: type[Adapter]
    source: SourceKind
    tenant: str
    settings: Mapping[str, Any]
    payload: bytes
    description: str


@dataclass(frozen=True)
class CaseOutput:
    entities: list[dict[str, Any]]
    rejected: list[dict[str, str]]


def _cases_root(adapter: type[Adapter]) -> Path:
    package = sys.modules[adapter.__module__].__package__ or adapter.__module__
    return Path(str(resources.files(package).joinpath("cases")))


def adapter_settings(adapter: type[Adapter], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The adapter's section with schema defaults, as the runtime would see it."""
    document = {"adapters": {adapter.name: dict(overrides)}}
    config = load_config(None, {adapter.name: adapter.section_schema()}, environ={}, document=document)
    return dict(config["adapters"][adapter.name])


def load_cases(adapter: type[Adapter]) -> list[Case]:
    root = _cases_root(adapter)
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        meta = tomllib.loads((folder / "case.toml").read_text(encoding="utf-8"))
        payloads = sorted(folder.glob("payload.*"))
        if len(payloads) != 1:
            raise FileNotFoundError(f"{folder}: needs exactly one payload.* file, found {len(payloads)}")
        cases.append(
            Case(
                name=folder.name,
                folder=folder,
                adapter=adapter,
                source=adapter.source(meta["source"]),
                tenant=meta.get("tenant", adapter.default_tenant),
                settings=adapter_settings(adapter, {**meta.get("settings", {}), "source": meta["source"]}),
                payload=payloads[0].read_bytes(),
                description=meta.get("description", ""),
            )
        )
    return cases


def run_case(case: Case, *, chunk_records: int = CHUNK_RECORDS) -> CaseOutput:
    """Fresh, in-memory state per run: a case never depends on another one or on an earlier run.

    The chunks are gathered as ``normalize_payload`` gathers them; ``chunk_records`` lets the
    contract check that a normaliser does not depend on where the runner's chunks end.
    """
    output = CaseOutput(entities=[], rejected=[])
    resources = case.adapter.open_resources(case.settings, base_dir=case.folder, persistent=False)
    try:
        context = NormalizeContext(tenant=case.tenant, settings=case.settings, resources=resources)
        for chunk in normalize_chunks(
            case.source, case.payload, context, origin="payload", chunk_records=chunk_records
        ):
            output.entities.extend(chunk.entities)
            output.rejected.extend({"where": r.where, "reason": r.reason} for r in chunk.rejections)
    finally:
        if resources is not None:
            resources.close()
    return output


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_ndjson(path: Path, items: list[dict[str, Any]]) -> None:
    if not items:
        path.unlink(missing_ok=True)
        return
    path.write_text("".join(json.dumps(i, ensure_ascii=False, sort_keys=False) + "\n" for i in items), "utf-8")


def main(argv: list[str] | None = None) -> int:
    from adapters.core.adapter import discover_adapters

    parser = argparse.ArgumentParser(
        prog="python -m adapters.testing.cases",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("adapter")
    parser.add_argument("--update", action="store_true", help="rewrite expected.ndjson / rejected.ndjson")
    args = parser.parse_args(argv)
    adapter = discover_adapters()[args.adapter]
    differing = 0
    for case in load_cases(adapter):
        output = run_case(case)
        same = output.entities == read_ndjson(case.folder / "expected.ndjson") and output.rejected == read_ndjson(
            case.folder / "rejected.ndjson"
        )
        counts = f"{len(output.entities)} entities, {len(output.rejected)} rejected"
        print(f"{'ok  ' if same else 'DIFF'} {case.name}: {counts}")
        if not same:
            differing += 1
            if args.update:
                _write_ndjson(case.folder / "expected.ndjson", output.entities)
                _write_ndjson(case.folder / "rejected.ndjson", output.rejected)
    return 1 if differing and not args.update else 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``dos-adapters`` command.

Every start pays for what it imports, and most commands need little: so a command imports the
machinery it runs (runner, outbox, broker client, validation) in its own body, and the command
groups of other packages load when they are called (``_LazyGroup``).
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from adapters import __version__
from adapters.core.adapter import Adapter, NormalizeContext, PayloadError, discover_adapters, find_source
from adapters.core.config import ConfigError, build_schema, env_variables, load_config, redact, secret_values
from adapters.core.entities import EntityError, tenant_name
from adapters.core.logs import configure_logging

EXIT_REJECTED = 3
GC_GEN0_THRESHOLD = 10_000
"""Container allocations (net of frees) between two young-generation collections; CPython's default is 700."""

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="DOS_CONFIG",
    help="TOML configuration file (env DOS_CONFIG). Without one, defaults and DOS_* variables apply.",
)


def _sections(adapters: dict[str, type[Adapter]]) -> dict[str, dict[str, Any]]:
    return {name: adapter.section_schema() for name, adapter in adapters.items()}


def _load(config_path: Path | None) -> tuple[dict[str, Any], dict[str, type[Adapter]]]:
    adapters = discover_adapters()
    try:
        config = load_config(config_path, _sections(adapters))
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    configure_logging(
        config["log"]["level"], config["log"]["format"], secret_values(config, build_schema(_sections(adapters)))
    )
    return config, adapters


def tune_garbage_collector() -> str:
    """Set the collector for a process that normalises records, once its start-up is done; says what it set.

    Records and entities are acyclic and freed by reference counting, so the cyclic collector finds next
    to nothing in them, yet with CPython's defaults (700, 10, 10) it ran ~480 young and ~45 older
    collections for 20,000 parking records (10 % of the CPU), each older one scanning again the ~40,000
    objects that importing and configuring left behind. ``gc.freeze()`` moves those into the permanent
    generation, which no collection scans (they live as long as the process anyway); a young-generation
    threshold of 10,000 (about the containers one 500-record chunk keeps alive) leaves one collection
    per 20,000 records. Garbage cycles are still collected, only later. ``scripts/bench.py`` applies the
    same setting to what it times in-process and prints it (``--gc default`` to compare).
    """
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, older, oldest)
    return f"gc.freeze() after start-up ({gc.get_freeze_count():,} objects), thresholds {gc.get_threshold()}"


class _LazyGroup(click.Group):
    """A group whose ``lazy_commands`` (name -> "module:attribute") are imported when called or listed."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module, attribute = self.lazy_commands[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        return command


@click.group(
    cls=_LazyGroup,
    lazy_commands={
        "provision": "adapters.platform.commands:provision",
        "query": "adapters.platform.commands:query",
        "history": "adapters.platform.commands:history",
        "building": "adapters.buildings.commands:building",
        "catalog": "adapters.platform.catalog:catalog",
    },
)
@click.version_option(__version__, prog_name="dos-adapters")
def main() -> None:
    """Regional sensor and open data -> FIWARE Smart Data Models -> Orion-LD."""


@main.command("list")
def list_adapters() -> None:
    """Adapters, their source kinds and the Smart Data Models types they emit."""
    for name, adapter in discover_adapters().items():
        click.echo(f"{name}  ({adapter.mode}, tenant {adapter.default_tenant}) - {adapter.title}")
        for source in adapter.sources:
            click.echo(f"  {source.name}: {', '.join(source.entity_types)}")
            click.echo(f"      {source.description}")
            click.echo(f"      default url: {source.default_url}")


@main.command()
@config_option
@click.option("--once", is_flag=True, help="Poll every enabled adapter once, deliver, print the summary and exit.")
@click.option("--offline", is_flag=True, help="Replay the recorded sample payloads shipped with the package.")
@click.option("--adapter", "only", multiple=True, help="Run only this adapter (repeatable).")
def run(config_path: Path | None, once: bool, offline: bool, only: tuple[str, ...]) -> None:
    """Run the adapters: on their schedules, or --once. Without [broker] url, entities go to an NDJSON file."""
    from adapters.core.outbox import OutboxError
    from adapters.core.runner import Runtime

    config, adapters = _load(config_path)
    unknown = set(only) - set(adapters)
    if unknown:
        raise click.UsageError(f"unknown adapter(s): {', '.join(sorted(unknown))}; see 'dos-adapters list'")
    try:
        runtime = Runtime(config, {n: a for n, a in adapters.items() if not only or n in only}, offline=offline)
    except OutboxError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    tune_garbage_collector()
    try:
        if not once:
            runtime.run_forever()
            return
        summaries, report = runtime.run_once()
    finally:
        runtime.close()
    for summary in summaries:
        if summary.skipped:
            click.echo(f"{summary.adapter}: {summary.skipped}")
            continue
        state = "not modified" if summary.not_modified else (f"ERROR {summary.error}" if summary.error else "ok")
        click.echo(
            f"{summary.adapter} [{summary.source} -> tenant {summary.tenant}]: {summary.records} records read, "
            f"{summary.entities} entities written, {summary.rejected} rejected ({state})"
        )
    click.echo(f"output: {runtime.sink.description}")
    if report.pending:
        click.echo(
            f"outbox: {report.pending} entities wait for the broker ({report.error}); "
            "they are sent on the next run or by 'dos-adapters outbox replay'"
        )
    if report.rejected:
        click.echo(f"broker refused {report.rejected} entities; the dead-letter file has the broker's reasons")
    if report.rejected or any(s.rejected for s in summaries):
        click.echo(f"dead letters: {runtime.dead_letter.path}")
    if any(s.error for s in summaries) or report.config_error:
        sys.exit(1)


@main.command()
@click.argument("source_kind")
@click.option(
    "--input", "input_path", required=True, type=click.File("rb"), help="Native payload file ('-' for stdin)."
)
@click.option(
    "--devices",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Device registry CSV (LoRaWAN sources; overrides [adapters.lorawan] devices).",
)
@click.option("--tenant", help="Tenant in the entity ids (default: the adapter's).")
@click.option(
    "--dead-letter",
    "dead_letter",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write rejected records here instead of stderr.",
)
@click.option("--context", "context_url", help="Add this @context URL to every entity.")
@config_option
def normalize(
    source_kind: str,
    input_path: Any,
    devices: Path | None,
    tenant: str | None,
    dead_letter: Path | None,
    context_url: str | None,
    config_path: Path | None,
) -> None:
    """Print the entities of a native SOURCE_KIND payload as NDJSON. Exit 3 if records were rejected.

    Entities are printed chunk by chunk as the payload is read; when it breaks midway (exit 2), the
    entities printed before are right, the rest is unknown.
    """
    from adapters.core.normalize import normalize_chunks
    from adapters.core.sinks import DeadLetterFile

    config, adapters = _load(config_path)
    try:
        adapter, source = find_source(adapters.values(), source_kind)
    except KeyError:
        kinds = sorted(s.name for a in adapters.values() for s in a.sources)
        raise click.UsageError(f"unknown source kind {source_kind!r}; known: {', '.join(kinds)}") from None
    try:
        tenant = tenant_name(tenant or config["broker"].get("tenant") or adapter.default_tenant)
    except EntityError as error:
        raise click.UsageError(str(error)) from None
    settings = {**config["adapters"][adapter.name], "source": source.name}
    if devices is not None:
        settings["devices"] = str(devices)
    sink = DeadLetterFile(dead_letter) if dead_letter else None
    out = sys.stdout
    rejected = 0
    resources = None
    try:
        resources = adapter.open_resources(settings, base_dir=Path.cwd(), persistent=False)
        context = NormalizeContext(tenant=tenant, settings=settings, resources=resources)
        tune_garbage_collector()
        for chunk in normalize_chunks(source, input_path, context, origin=input_path.name):
            for entity in chunk.entities:
                if context_url:
                    entity = {**entity, "@context": [context_url]}
                out.write(json.dumps(entity, ensure_ascii=False, separators=(",", ":")) + "\n")
            rejected += len(chunk.rejections)
            for rejection in chunk.rejections:
                if sink is not None:
                    sink.reject(
                        adapter=adapter.name,
                        source=source.name,
                        tenant=tenant,
                        where=rejection.where,
                        reason=rejection.reason,
                        record=rejection.record,
                    )
                else:
                    click.echo(
                        json.dumps(
                            {"where": rejection.where, "reason": rejection.reason, "record": rejection.record},
                            ensure_ascii=False,
                            default=str,
                        ),
                        err=True,
                    )
    except (PayloadError, OSError, ValueError) as error:
        out.flush()
        click.echo(json.dumps({"file": input_path.name, "reason": str(error)}, ensure_ascii=False), err=True)
        sys.exit(2)
    finally:
        if resources is not None:
            resources.close()
    if rejected:
        sys.exit(EXIT_REJECTED)


@main.command()
@click.argument("entities_file", type=click.File("rb"))
@click.option(
    "--jsonld",
    "check_jsonld",
    is_flag=True,
    help="Also expand each entity under the @context we send (local copies, no network) and check that every "
    "attribute expands to the Smart Data Models IRI of its type's subject.",
)
def validate(entities_file: Any, check_jsonld: bool) -> None:
    """Check NGSI-LD entities (NDJSON or a JSON array) against the data-model profile. Exit 1 on any failure."""
    from adapters.core.validation import entity_problems

    text = entities_file.read().decode("utf-8", "replace").strip()
    try:
        if text.startswith("["):
            items = [(index, entity) for index, entity in enumerate(json.loads(text), start=1)]
        else:
            items = [
                (number, json.loads(line)) for number, line in enumerate(text.splitlines(), start=1) if line.strip()
            ]
    except ValueError as error:
        click.echo(f"{entities_file.name}: not JSON / NDJSON: {error}", err=True)
        sys.exit(2)
    failed = 0
    for number, entity in items:
        problems = entity_problems(entity) if isinstance(entity, dict) else ["not a JSON object"]
        if check_jsonld and isinstance(entity, dict):
            problems += [f"JSON-LD: {problem}" for problem in _expansion_problems(entity)]
        for problem in problems:
            click.echo(
                f"{entities_file.name}:{number}: {entity.get('id') if isinstance(entity, dict) else ''}: {problem}"
            )
        failed += bool(problems)
    click.echo(f"{len(items) - failed} of {len(items)} entities conform", err=True)
    sys.exit(1 if failed else 0)


def _expansion_problems(entity: dict[str, Any]) -> list[str]:
    from adapters.core.jsonld import JsonLdUnavailable, expansion_problems  # pyld only loads when asked

    try:
        return expansion_problems(entity)
    except JsonLdUnavailable as error:
        click.echo(str(error), err=True)
        sys.exit(2)


@main.group()
def outbox() -> None:
    """Inspect or drain the durable outbox of undelivered entities."""


@outbox.command("status")
@config_option
def outbox_status(config_path: Path | None) -> None:
    from adapters.core.outbox import Outbox

    config, _ = _load(config_path)
    store = Outbox(Path(config["outbox"]["path"]))
    try:
        status = store.status()
    finally:
        store.close()
    click.echo(json.dumps(status.__dict__, indent=2))


@outbox.command("replay")
@config_option
def outbox_replay(config_path: Path | None) -> None:
    """Send everything in the outbox now, in order. Exit 1 if something is still waiting."""
    from adapters.core.runner import Runtime

    config, _ = _load(config_path)
    if not config["broker"].get("url"):
        raise click.UsageError("no [broker] url configured: nothing to replay to")
    runtime = Runtime(config, {})
    try:
        report = runtime.sink.deliver(force=True)
    finally:
        runtime.close()
    click.echo(json.dumps(report.__dict__))
    sys.exit(1 if report.pending else 0)


@main.command("config")
@config_option
@click.option("--env", "show_env", is_flag=True, help="List the environment variables instead.")
def show_config(config_path: Path | None, show_env: bool) -> None:
    """Print the effective configuration (secrets redacted) after defaults and environment overrides."""
    config, adapters = _load(config_path)
    schema = build_schema(_sections(adapters))
    if show_env:
        for name, (path, sub) in env_variables(schema).items():
            secret = f"  (secret; also {name}_FILE)" if sub.get("writeOnly") else ""
            click.echo(f"{name}  -> {'.'.join(path)}{secret}")
        return
    click.echo(redact(config, schema))


@main.group()
def waste() -> None:
    """Waste bins: which ones need emptying (fill levels from the LoRaWAN sensors)."""


@waste.command("due")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    help="fillingLevel 0..1 from which a bin is listed (default: [adapters.waste] due_threshold, 0.8).",
)
@click.option(
    "--tenant", help="The city whose bins to list (default: [adapters.waste] tenant, [broker] tenant, dortmund)."
)
@config_option
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read an NDJSON entity file (e.g. out/entities.ndjson) instead of the broker; the latest entity per id wins.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "geojson"]),
    default="table",
    show_default=True,
    help="table for people (fill in %), json or geojson (fillingLevel 0..1) for tools.",
)
def waste_due(
    threshold: float | None,
    tenant: str | None,
    config_path: Path | None,
    from_file: Path | None,
    output_format: str,
) -> None:
    """List the bins with fillingLevel >= threshold, fullest first: name, fill, observedAt, lon/lat.

    Reads the configured broker ([broker] url, tenant header, @context, token), or --from-file.
    Exit 1 when the broker cannot be asked, 2 when the file is unreadable.
    """
    from adapters.entity_source import entities_from_file_or_broker
    from adapters.waste import DEFAULT_DUE_THRESHOLD, WasteAdapter
    from adapters.waste.due import DueQueryError, due_bins, query_due, render

    config, _ = _load(config_path)
    settings = config["adapters"].get(WasteAdapter.name, {})
    level = threshold if threshold is not None else float(settings.get("due_threshold", DEFAULT_DUE_THRESHOLD))
    try:
        city = tenant_name(
            tenant or settings.get("tenant") or config["broker"].get("tenant") or WasteAdapter.default_tenant
        )
    except EntityError as error:
        raise click.UsageError(str(error)) from None
    entities, origin = entities_from_file_or_broker(
        "waste due",
        config,
        from_file,
        lambda client: query_due(client, tenant=city, threshold=level),
        (DueQueryError,),
    )
    bins = due_bins(entities, level, tenant=city)
    if bins or output_format != "table":
        click.echo(render(bins, output_format))  # type: ignore[arg-type]  # click.Choice guarantees the value
    click.echo(f"{len(bins)} bin(s) of tenant {city} at or above {level * 100:g} % ({origin})", err=True)

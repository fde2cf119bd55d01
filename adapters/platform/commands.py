"""The platform commands of ``dos-adapters``: ``provision``, ``query`` and ``history``.

Registered on the main group in ``adapters.cli`` (``main.add_command(provision)`` ...). They read the
same configuration as ``run`` (``--config`` / ``DOS_CONFIG`` and ``DOS_*``); QuantumLeap's address,
which the core configuration does not know, comes from an option or ``DOS_QUANTUMLEAP_URL``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from adapters.core.adapter import Adapter, discover_adapters
from adapters.core.broker import BrokerClient, BrokerError
from adapters.core.config import ConfigError, build_schema, load_config, secret_values
from adapters.core.entities import EntityError, tenant_name
from adapters.core.logs import configure_logging
from adapters.platform import history as history_api
from adapters.platform import provision as provision_api
from adapters.platform import query as query_api
from adapters.platform.ngsi import NgsiLdClient, PlatformError

__all__ = ["history", "provision", "query"]

DEFAULT_QUANTUMLEAP_URL = "http://localhost:8668"

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="DOS_CONFIG",
    help="TOML configuration file (env DOS_CONFIG). Without one, defaults and DOS_* variables apply.",
)


def _load(config_path: Path | None) -> tuple[dict[str, Any], dict[str, type[Adapter]]]:
    adapters = discover_adapters()
    sections = {name: adapter.section_schema() for name, adapter in adapters.items()}
    try:
        config = load_config(config_path, sections)
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    configure_logging(config["log"]["level"], config["log"]["format"], secret_values(config, build_schema(sections)))
    return config, adapters


def _tenant(raw: str) -> str:
    try:
        return tenant_name(raw)
    except EntityError as error:
        raise click.UsageError(str(error)) from None


def adapter_tenant(config: Mapping[str, Any], name: str, adapter: type[Adapter]) -> str:
    """The tenant an adapter writes to, as ``Runtime.tenant_of`` decides it."""
    settings = config["adapters"].get(name, {})
    return _tenant(settings.get("tenant") or config["broker"].get("tenant") or adapter.default_tenant)


@contextlib.contextmanager
def _progress(length: int | None, label: str) -> Iterator[Any]:
    """A click progress bar on stderr (stdout carries the data), or nothing for short jobs."""
    if not length or length <= 1:
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar


def _fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


# ------------------------------------------------------------------------------------- provision


@click.command("provision")
@config_option
@click.option("--dry-run", is_flag=True, help="Print the plan (reads only, checks included); write nothing.")
@click.option(
    "--tenant",
    "tenants",
    multiple=True,
    help="Provision this tenant (repeatable). Default: the tenants of the enabled adapters.",
)
@click.option(
    "--type",
    "extra_types",
    multiple=True,
    help="Also subscribe this entity type (repeatable), e.g. of an adapter not installed yet.",
)
@click.option(
    "--notify-url",
    default=provision_api.DEFAULT_NOTIFY_URL,
    envvar="DOS_QUANTUMLEAP_NOTIFY_URL",
    show_default=True,
    help="QuantumLeap's notify endpoint as Orion-LD reaches it (env DOS_QUANTUMLEAP_NOTIFY_URL).",
)
@click.option(
    "--quantumleap-url",
    envvar="DOS_QUANTUMLEAP_URL",
    help="QuantumLeap as this machine reaches it, for the check (env DOS_QUANTUMLEAP_URL; "
    "default: the origin of --notify-url).",
)
@click.option(
    "--every",
    type=click.IntRange(min=10),
    help="Keep running and provision again every N seconds: puts back subscriptions lost with the broker's database.",
)
@click.option(
    "--health-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Touch this file after every successful run (a container healthcheck can test its age).",
)
def provision(
    config_path: Path | None,
    dry_run: bool,
    tenants: tuple[str, ...],
    extra_types: tuple[str, ...],
    notify_url: str,
    quantumleap_url: str | None,
    every: int | None,
    health_file: Path | None,
) -> None:
    """Register what the platform needs per tenant: QuantumLeap subscriptions, one per entity type.

    Idempotent: subscriptions are found by a stable id, created when missing and replaced when their
    settings differ; a second run writes nothing. Before any write the @context URL and QuantumLeap
    are checked. Exit 1 when a check fails or the broker refuses, 2 on a configuration error.
    """
    config, adapters = _load(config_path)
    enabled = {name: a for name, a in adapters.items() if config["adapters"][name]["enabled"]}
    chosen = [_tenant(t) for t in tenants] or list(
        dict.fromkeys(adapter_tenant(config, name, a) for name, a in enabled.items())
    )
    types = list(dict.fromkeys([*(t for a in enabled.values() for t in a.entity_types()), *extra_types]))
    if not chosen or not types:
        raise click.UsageError("nothing to provision: enable an adapter or give --tenant and --type")
    try:
        client = NgsiLdClient.from_config(config["broker"])
    except PlatformError as error:
        raise click.UsageError(str(error)) from None
    check_url = quantumleap_url or provision_api.quantumleap_origin(notify_url)
    try:
        while True:
            try:
                run_provision(client, chosen, types, notify_url, check_url, dry_run)
                if health_file is not None:
                    health_file.touch()
            except PlatformError as error:
                if every is None:
                    _fail(error)
                click.echo(f"error: {error}; trying again in {every} s", err=True)
            if every is None:
                return
            time.sleep(every)
    finally:
        client.close()


def run_provision(
    client: NgsiLdClient, tenants: list[str], types: list[str], notify_url: str, check_url: str, dry_run: bool
) -> None:
    plan = provision_api.make_plan(
        client, tenants, types, notify_url=notify_url, quantumleap_url=check_url, check_timeout=client.timeout
    )
    for line in provision_api.describe(plan, context_url=client.context_url, quantumleap_url=check_url):
        click.echo(line)
    if dry_run:
        click.echo(f"dry run: {len(plan.writes)} subscription(s) to create or replace; nothing written")
        return
    if not plan.writes:
        click.echo("nothing to do: every subscription is in place")
        return
    provision_api.apply_plan(client, plan)
    created = sum(1 for s in plan.writes if s.action == "create")
    click.echo(f"done: {created} created, {len(plan.writes) - created} replaced")


# ----------------------------------------------------------------------------------------- query


@click.command("query")
@click.argument("entity_type")
@click.option(
    "--q", "q", help="NGSI-LD q filter, e.g. 'occupancy>0.9' or 'fillingLevel>=0.8;storedWasteKind==\"glass\"'."
)
@click.option("--near", help="LON,LAT,METRES: only entities whose location is within METRES of the point.")
@click.option("--attrs", help="Comma-separated attributes to return (default: all).")
@click.option("--tenant", help="The city (default: the tenant of the adapter that emits TYPE, else [broker] tenant).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many entities (default: all).")
@click.option(
    "--page-size", type=click.IntRange(1, query_api.MAX_PAGE_SIZE), default=query_api.MAX_PAGE_SIZE, show_default=True
)
@click.option(
    "--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@config_option
def query(
    entity_type: str,
    q: str | None,
    near: str | None,
    attrs: str | None,
    tenant: str | None,
    limit: int | None,
    page_size: int,
    output_format: str,
    config_path: Path | None,
) -> None:
    """Entities of TYPE as they are now, from the broker's NGSI-LD API.

    Reads page by page (limit <= 1000); a progress bar on stderr counts long downloads.
    Exit 1 when the broker cannot be asked.
    """
    config, adapters = _load(config_path)
    try:
        near_point = query_api.parse_near(near) if near else None
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    attr_list = [a.strip() for a in attrs.split(",") if a.strip()] if attrs else []
    if tenant:
        city = _tenant(tenant)
    else:
        owners = [name for name, a in adapters.items() if entity_type in a.entity_types()]
        enabled = [name for name in owners if config["adapters"][name]["enabled"]]
        candidates = list(dict.fromkeys(adapter_tenant(config, n, adapters[n]) for n in enabled or owners))
        if len(candidates) > 1:
            raise click.UsageError(f"{entity_type} is written for tenants {', '.join(candidates)}: give --tenant")
        if candidates:
            city = candidates[0]
        elif config["broker"].get("tenant"):
            city = _tenant(config["broker"]["tenant"])
        else:
            raise click.UsageError(f"no adapter emits {entity_type} and no [broker] tenant is set: give --tenant")
    broker = config["broker"]
    try:
        counter = NgsiLdClient.from_config(broker)
    except PlatformError as error:
        raise click.UsageError(str(error)) from None
    reader = BrokerClient.from_settings(broker)
    params = query_api.query_params(entity_type, q=q, near=near_point, attrs=attr_list)
    try:
        total = query_api.count_entities(counter, params, tenant=city)
        expected = min(total, limit) if total is not None and limit else total
        with _progress(expected if expected and expected > page_size else None, entity_type) as bar:
            entities = query_api.read_entities(
                reader,
                params,
                tenant=city,
                page_size=page_size,
                limit=limit,
                on_page=bar.update if bar is not None else None,
            )
    except BrokerError as error:
        _fail(error)
    finally:
        counter.close()
        reader.close()
    click.echo(query_api.render(entities, attr_list, output_format))  # type: ignore[arg-type]
    click.echo(f"{len(entities)} {entity_type} entities of tenant {city}", err=True)


# --------------------------------------------------------------------------------------- history


@click.command("history")
@click.argument("entity_id")
@click.argument("attr")
@click.option(
    "--from", "start", help="ISO 8601 date or date-time, UTC unless a zone is given (default: --to minus 7 days)."
)
@click.option("--to", "end", help="ISO 8601 date or date-time (default: now).")
@click.option("--aggr-method", type=click.Choice(history_api.AGGR_METHODS), help="Aggregate the values (QuantumLeap).")
@click.option(
    "--aggr-period", type=click.Choice(history_api.AGGR_PERIODS), help="One aggregate per period (needs --aggr-method)."
)
@click.option("--format", "output_format", type=click.Choice(["csv", "json", "png"]), default="csv", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of stdout (png: default history-<entity>-<attr>.png).",
)
@click.option("--tenant", help="The city (default: the tenant part of ENTITY_ID, else [broker] tenant).")
@click.option(
    "--quantumleap-url",
    envvar="DOS_QUANTUMLEAP_URL",
    default=DEFAULT_QUANTUMLEAP_URL,
    show_default=True,
    help="QuantumLeap's API (env DOS_QUANTUMLEAP_URL).",
)
@click.option(
    "--window-hours",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    help="Download in windows of this many hours (one request or more each; the progress bar counts them).",
)
@config_option
def history(
    entity_id: str,
    attr: str,
    start: str | None,
    end: str | None,
    aggr_method: str | None,
    aggr_period: str | None,
    output_format: str,
    output: Path | None,
    tenant: str | None,
    quantumleap_url: str,
    window_hours: int,
    config_path: Path | None,
) -> None:
    """ATTR of ENTITY_ID over time, from QuantumLeap: csv, json or a png plot.

    Exit 1 when QuantumLeap cannot be asked or (png) there is nothing numeric to plot.
    """
    config, _ = _load(config_path)
    if aggr_period and not aggr_method:
        raise click.UsageError("--aggr-period needs --aggr-method")
    try:
        upper = history_api.parse_time(end) if end else datetime.now(UTC)
        lower = history_api.parse_time(start) if start else upper - timedelta(days=7)
        if upper < lower:
            raise ValueError(f"--from {start} is after --to {end or 'now'}")
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    raw_tenant = tenant or history_api.tenant_of(entity_id) or config["broker"].get("tenant")
    if not raw_tenant:
        raise click.UsageError(f"{entity_id} names no tenant and no [broker] tenant is set: give --tenant")
    client = history_api.QuantumLeapClient(quantumleap_url, tenant=_tenant(raw_tenant))
    windows: list[int] = [0]
    try:
        with contextlib.ExitStack() as stack:
            bar: list[Any] = [None]

            def start_bar(count: int) -> None:
                windows[0] = count
                bar[0] = stack.enter_context(_progress(count, f"{attr} of {entity_id}"))

            def window_done() -> None:
                if bar[0] is not None:
                    bar[0].update(1)

            series = history_api.download(
                client,
                entity_id,
                attr,
                start=lower,
                end=upper,
                aggr_method=aggr_method,
                aggr_period=aggr_period,
                window=timedelta(hours=window_hours),
                on_windows=start_bar,
                on_window_done=window_done,
            )
        if output_format == "png":
            target = output or Path(f"history-{entity_id.rsplit(':', 1)[-1]}-{attr}.png")
            label = f"{aggr_method} per {aggr_period}" if aggr_method and aggr_period else aggr_method
            history_api.render_png(series, target, label=f"{attr} ({label})" if label else None)
            click.echo(f"wrote {target}", err=True)
        else:
            text = history_api.render_csv(series) if output_format == "csv" else history_api.render_json(series)
            if output is not None:
                output.write_text(text + "\n", encoding="utf-8")
            else:
                click.echo(text)
    except (PlatformError, ValueError) as error:
        _fail(error)
    finally:
        client.close()
    click.echo(f"{len(series.index)} values of {attr} ({windows[0]} window(s))", err=True)

"""``dos-adapters building show``: the per-building summary, from the broker or an entity file.

Registered in ``adapters/cli.py`` with ``main.add_command(building)``. Nothing here is imported
at CLI start beyond click: the summary module loads when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["building"]


@click.group("building")
def building() -> None:
    """Buildings: per-building summary of room climate and meter consumption."""


@building.command("show")
@click.argument("building_id")
@click.option("--tenant", help="The city (default: [adapters.buildings] tenant, [broker] tenant, dortmund).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="DOS_CONFIG",
    help="TOML configuration file (env DOS_CONFIG). Without one, defaults and DOS_* variables apply.",
)
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read an NDJSON entity file (e.g. out/entities.ndjson) instead of the broker; the latest entity per id wins.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for the dashboard and tools.",
)
def show(
    building_id: str, tenant: str | None, config_path: Path | None, from_file: Path | None, output_format: str
) -> None:
    """Latest CO2 / temperature per room and the last day's consumption per meter of BUILDING_ID.

    BUILDING_ID is the inventory's building id (as in the device registry) or the Building's entity
    id. Reads the configured broker ([broker] url, tenant header, @context, token), or --from-file.
    Exit 1 when the broker cannot be asked or nothing at all is known about the building, 2 when
    the file is unreadable.
    """
    from adapters.buildings import BuildingsAdapter
    from adapters.buildings.meters import timezone_of
    from adapters.buildings.summary import (
        SummaryError,
        building_urn,
        query_building,
        render,
        summarise,
    )
    from adapters.core.adapter import discover_adapters
    from adapters.core.config import ConfigError, load_config
    from adapters.core.entities import EntityError, tenant_name
    from adapters.entity_source import entities_from_file_or_broker

    adapters = discover_adapters()
    try:
        config = load_config(config_path, {name: adapter.section_schema() for name, adapter in adapters.items()})
    except ConfigError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    settings = config["adapters"].get(BuildingsAdapter.name, {})
    broker = config["broker"]
    try:
        city = tenant_name(tenant or settings.get("tenant") or broker.get("tenant") or BuildingsAdapter.default_tenant)
        urn = building_urn(building_id, city)
        tz = timezone_of(settings)
    except (EntityError, SummaryError, ValueError) as error:
        raise click.UsageError(str(error)) from None
    entities, origin = entities_from_file_or_broker(
        "building show",
        config,
        from_file,
        lambda client: query_building(client, tenant=city, building=urn),
        (SummaryError,),
    )
    summary = summarise(entities, urn, tz)
    if not summary.found and not summary.rooms and not summary.meters:
        click.echo(f"building show: nothing known about {urn} ({origin})", err=True)
        sys.exit(1)
    if not summary.found:
        click.echo(f"warning: no Building entity {urn}; showing what references it", err=True)
    click.echo(render(summary, output_format))  # type: ignore[arg-type]  # click.Choice guarantees the value
    click.echo(f"{len(summary.rooms)} room(s), {len(summary.meters)} meter(s) of {urn} ({origin})", err=True)

"""Where the reading commands (``waste due``, ``building show``) get their entities from."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from adapters.core.broker import BrokerClient
from adapters.core.entity_files import latest_entities, read_entity_file

__all__ = ["entities_from_file_or_broker"]


def entities_from_file_or_broker(
    command: str,
    config: Mapping[str, Any],
    from_file: Path | None,
    query: Callable[[BrokerClient], list[dict[str, Any]]],
    query_errors: tuple[type[Exception], ...],
) -> tuple[list[dict[str, Any]], str]:
    """The entities and where they came from: ``--from-file`` (latest per id, as the broker would hold
    them), else ``query`` with a client for ``[broker]``. Exit 2 for an unreadable file, 1 when the
    broker cannot answer."""
    if from_file is not None:
        try:
            return latest_entities(read_entity_file(from_file.read_text(encoding="utf-8"))), str(from_file)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            click.echo(f"{from_file}: {error}", err=True)
            sys.exit(2)
    broker = config["broker"]
    if not broker.get("url"):
        raise click.UsageError(
            f"no [broker] url configured: set one, or read the entity file with --from-file {config['output']['path']}"
        )
    client = BrokerClient.from_settings(broker)
    try:
        return query(client), str(broker["url"])
    except query_errors as error:
        click.echo(f"{command}: {error}", err=True)
        sys.exit(1)
    finally:
        client.close()

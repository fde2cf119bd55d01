"""The TOML configuration a test writes for an adapter process, from sections named as in the file.

Sections are given by their dotted table names (``"adapters.parking"``), as a reader of the file sees
them; values may be paths. Writing goes through tomli-w (the ``test`` extra), so quoting and nesting
are TOML's, not a hand-made approximation of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["config_toml"]


def config_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """The TOML document of ``sections`` (``{"broker": {...}, "adapters.parking": {...}}``)."""
    import tomli_w  # the test extra: adapters.testing serves test suites, not deployments

    document: dict[str, Any] = {}
    for name, keys in sections.items():
        table = document
        for part in name.split("."):
            table = table.setdefault(part, {})
        table.update(_toml_ready(keys))
    return tomli_w.dumps(document)


def _toml_ready(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _toml_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_toml_ready(item) for item in value]
    return value

"""Configuration: one TOML file plus ``DOS_*`` environment overrides, checked against one schema.

The JSON Schema below (core sections) merged with each adapter's own section schema is the single
source of truth: defaults, environment variable names (``DOS_BROKER_URL``,
``DOS_ADAPTERS_PARKING_INTERVAL``) and secrets (``writeOnly: true``, redacted from logs and dumps;
each secret can also come from a file named by ``<VAR>_FILE``, as Docker secrets are mounted).
All problems are reported at once, each naming its key.
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

__all__ = [
    "ADAPTER_COMMON_PROPERTIES",
    "PUSH_INTAKE_PROPERTIES",
    "ConfigError",
    "build_schema",
    "env_variables",
    "load_config",
    "redact",
    "secret_values",
]

ENV_PREFIX = "DOS"

_TENANT_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,50}$"}

ADAPTER_COMMON_PROPERTIES: dict[str, Any] = {
    "enabled": {"type": "boolean", "default": True, "description": "Run this adapter."},
    "url": {"type": "string", "format": "uri", "description": "Source endpoint; defaults to the live public one."},
    "interval": {"type": "integer", "minimum": 1, "description": "Seconds between polls."},
    "cron": {"type": "string", "description": "Crontab expression (5 fields); replaces interval."},
    "jitter": {"type": "integer", "minimum": 0, "default": 10, "description": "Random delay (s) added per run."},
    "tenant": {**_TENANT_SCHEMA, "description": "Tenant of this adapter's entities (the publishing city)."},
    "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 30, "description": "Source request timeout (s)."},
}

PUSH_INTAKE_PROPERTIES: dict[str, Any] = {
    "mqtt": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean", "default": True},
            "host": {"type": "string", "default": "localhost"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 1883},
            "tls": {"type": "boolean", "default": False},
            "topics": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Default: the network server's uplink topic.",
            },
            "username": {"type": "string"},
            "password": {"type": "string", "writeOnly": True},
            "client_id": {"type": "string", "default": "dos-adapters"},
            "shared_group": {"type": "string", "description": "MQTT 5 shared subscription group for replicas."},
            "protocol": {"enum": ["5", "3.1.1"], "default": "5", "description": "The Things Stack speaks only 3.1.1."},
        },
    },
    "webhook": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean", "default": False},
            "host": {"type": "string", "default": "0.0.0.0"},
            "port": {"type": "integer", "minimum": 0, "maximum": 65535, "default": 8090},
            "path": {"type": "string", "default": "/uplink"},
            "secret": {
                "type": "string",
                "writeOnly": True,
                "minLength": 16,
                "description": "Shared secret the network server sends in secret_header (16+ characters).",
            },
            "secret_header": {"type": "string", "default": "X-Webhook-Secret"},
            "max_body_bytes": {"type": "integer", "minimum": 1024, "default": 65536},
        },
        # An open webhook would let anyone inject readings: enabled requires a secret.
        "if": {"properties": {"enabled": {"const": True}}, "required": ["enabled"]},
        "then": {"required": ["secret"]},
    },
    "batch_max_messages": {"type": "integer", "minimum": 1, "default": 500},
    "batch_max_delay": {
        "type": "number",
        "minimum": 0,
        "default": 0.2,
        "description": "Seconds a message may wait to be committed together with others.",
    },
}
"""Keys of every push adapter's section: its intakes and its micro-batching."""

_CORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "broker": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "format": "uri", "description": "Orion-LD root, e.g. http://orion:1026."},
                "tenant": {**_TENANT_SCHEMA, "description": "Default tenant for adapters that set none."},
                "token": {"type": "string", "writeOnly": True, "description": "Static bearer token."},
                "context": {
                    "type": "string",
                    "format": "uri",
                    "default": "http://context-server/dos-adapters.jsonld",
                    "description": "@context URL sent in the Link header; serve it next to the broker.",
                },
                "verify_tls": {
                    "type": "boolean",
                    "default": True,
                    "description": "Verify the broker's TLS certificate.",
                },
                "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 10},
                "max_payload_bytes": {"type": "integer", "minimum": 1024, "default": 1_048_576},
                "max_batch_entities": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1000},
                "oauth2": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["token_url", "client_id", "client_secret"],
                    "properties": {
                        "token_url": {"type": "string", "format": "uri"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string", "writeOnly": True},
                        "scope": {"type": "string"},
                    },
                },
            },
        },
        "outbox": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "path": {"type": "string", "default": "var/outbox.sqlite", "description": "SQLite outbox file."},
                "max_backoff": {"type": "number", "minimum": 1, "default": 300, "description": "Seconds."},
            },
        },
        "output": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "path": {
                    "type": "string",
                    "default": "out/entities.ndjson",
                    "description": "NDJSON file sink, used when no broker url is set.",
                },
            },
        },
        "dead_letter": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"path": {"type": "string", "default": "out/dead-letter.ndjson"}},
        },
        "metrics": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "port": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 65535,
                    "default": 0,
                    "description": "Serve /metrics (Prometheus) and /health on this port; 0 = off.",
                },
                "host": {"type": "string", "default": "0.0.0.0"},
                "stuck_after": {
                    "type": "number",
                    "minimum": 1,
                    "default": 3600,
                    "description": "/health fails when entities waited this long (s) for the broker.",
                },
            },
        },
        "log": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"], "default": "INFO"},
                "format": {"enum": ["text", "json"], "default": "text"},
            },
        },
    },
}


class ConfigError(Exception):
    """Every problem of a configuration, one line each, so a user fixes them in one go."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def build_schema(adapter_sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Core schema plus ``adapters.<name>`` = common adapter keys + the adapter's own keys."""
    schema = copy.deepcopy(_CORE_SCHEMA)
    adapters: dict[str, Any] = {}
    for name, own in adapter_sections.items():
        section = copy.deepcopy(dict(own))
        section.setdefault("type", "object")
        section.setdefault("additionalProperties", False)
        section["properties"] = {**copy.deepcopy(ADAPTER_COMMON_PROPERTIES), **section.get("properties", {})}
        adapters[name] = section
    schema["properties"]["adapters"] = {"type": "object", "additionalProperties": False, "properties": adapters}
    return schema


def _walk(schema: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    for key, sub in schema.get("properties", {}).items():
        if sub.get("type") == "object" and "properties" in sub:
            yield from _walk(sub, (*path, key))
        else:
            yield (*path, key), sub


def env_variables(schema: Mapping[str, Any]) -> dict[str, tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Environment variable name -> (config key path, key schema)."""
    return {"_".join((ENV_PREFIX, *path)).upper().replace("-", "_"): (path, sub) for path, sub in _walk(schema)}


def _parse_env(name: str, text: str, key_schema: Mapping[str, Any]) -> Any:
    kind = key_schema.get("type")
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}={text!r}: expected true or false")
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name}={text!r}: expected an integer") from None
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{name}={text!r}: expected a number") from None
    if kind == "array":
        return _parse_env_array(name, text, key_schema)
    if kind == "object":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"{name}: expected a JSON object") from None
    return text


def _parse_env_array(name: str, text: str, array_schema: Mapping[str, Any]) -> list[Any]:
    """A JSON array as in the file (``[6.8, 51.2]``), or the shell-friendly ``a,b,c``; items take their type.

    Items are converted here, so a bbox of numbers from the environment validates like one from the file.
    """
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except ValueError as error:
            raise ValueError(f"{name}: not a JSON array: {error}") from None
        if not isinstance(value, list):
            raise ValueError(f"{name}: expected a JSON array")
        return value
    positional = array_schema.get("prefixItems", [])
    items: list[Any] = []
    for index, item in enumerate(part.strip() for part in text.split(",") if part.strip()):
        item_schema = positional[index] if index < len(positional) else array_schema.get("items", {})
        typed = item_schema.get("type") in ("boolean", "integer", "number")
        items.append(_parse_env(f"{name}[{index}]", item, item_schema) if typed else item)
    return items


def _set_path(config: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return  # the file has a value where a table belongs; validation reports that key
    node[path[-1]] = value


def _apply_env(config: dict[str, Any], schema: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    problems = []
    for name, (path, sub) in env_variables(schema).items():
        text = environ.get(name)
        if text is None and sub.get("writeOnly") and environ.get(f"{name}_FILE"):
            secret_file = Path(environ[f"{name}_FILE"])
            try:
                text = secret_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                problems.append(f"{name}_FILE: cannot read {secret_file}: {error.strerror}")
                continue
        if text is None:
            continue
        try:
            _set_path(config, path, _parse_env(name, text, sub))
        except ValueError as error:
            problems.append(str(error))
    return problems


def _apply_defaults(config: dict[str, Any], schema: Mapping[str, Any]) -> None:
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub and key not in config:
            config[key] = copy.deepcopy(sub["default"])
        # Optional sub-tables with required keys (oauth2) stay absent unless given.
        if sub.get("type") == "object" and "properties" in sub and (key in config or not sub.get("required")):
            child = config.setdefault(key, {})
            if isinstance(child, dict):
                _apply_defaults(child, sub)


def load_config(
    path: Path | None,
    adapter_sections: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str] | None = None,
    *,
    document: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read (the file, or ``document`` already parsed), override from the environment, fill defaults,
    validate; raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    schema = build_schema(adapter_sections)
    config: dict[str, Any] = copy.deepcopy(dict(document)) if document is not None else {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                config = tomllib.load(handle)
        except OSError as error:
            raise ConfigError([f"{path}: cannot read: {error.strerror}"]) from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
    problems = _apply_env(config, schema, environ)
    adapters = config.setdefault("adapters", {})
    for name in adapter_sections:
        if isinstance(adapters, dict):
            adapters.setdefault(name, {})
    _apply_defaults(config, schema)
    where = f"{path}: " if path is not None else ""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for violation in sorted(validator.iter_errors(config), key=lambda v: [str(p) for p in v.absolute_path]):
        path_parts = tuple(str(part) for part in violation.absolute_path)
        key = ".".join(path_parts) or "(top level)"
        # The message quotes the value; never echo a secret.
        secret = _is_secret_path(schema, path_parts)
        message = f"{violation.validator} check failed" if secret else violation.message
        problems.append(f"{where}{key}: {message}")
    for name, section in adapters.items() if isinstance(adapters, dict) else ():
        if isinstance(section, dict) and "interval" in section and "cron" in section:
            problems.append(f"{where}adapters.{name}: set either interval or cron, not both")
    if problems:
        raise ConfigError(problems)
    return config


def _is_secret_path(schema: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    node: Mapping[str, Any] = schema
    for key in path:
        node = node.get("properties", {}).get(key, {})
    return bool(node.get("writeOnly"))


def secret_values(config: Mapping[str, Any], schema: Mapping[str, Any]) -> set[str]:
    """The configured secrets, so log filters can mask them wherever they turn up."""
    found = set()
    for path, sub in _walk(schema):
        if not sub.get("writeOnly"):
            continue
        node: Any = config
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, str) and node:
            found.add(node)
    return found


def redact(config: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """The effective configuration as JSON with every secret replaced by ``***``."""
    shown = copy.deepcopy(dict(config))
    for path, sub in _walk(schema):
        if not sub.get("writeOnly"):
            continue
        node: Any = shown
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            node[path[-1]] = "***"
    return json.dumps(shown, indent=2, sort_keys=True)

"""QuantumLeap's table layout on TimescaleDB/PostgreSQL, rebuilt from NGSI-LD entities for the tests.

Follows QuantumLeap's translators (orchestracities/ngsi-timeseries-api ``src/translators/
sql_translator.py`` and ``timescale.py``): schema ``"mt<tenant>"``, table ``"et<type>"`` (both
lowercased and quoted), one row per notified entity with

* ``entity_id`` text, ``entity_type`` text, ``time_index`` timestamptz NOT NULL (the latest
  ``observedAt`` of the entity's attributes, else the reception time), ``fiware_servicepath`` text
  (``/`` for NGSI-LD), ``__original_ngsi_entity__`` jsonb (NULL unless the row failed),
  ``instanceid`` text (``urn:ngsi-ld:<uuid>``);
* one column per attribute, named in lower case, typed by the first value QuantumLeap sees:
  Property float -> ``float`` (double precision), integer -> ``bigint``, boolean -> ``boolean``,
  ISO date-time string -> ``timestamptz``, other string -> ``text``, array and object -> ``jsonb``;
  GeoProperty -> PostGIS ``geometry`` (SRID 4326); Relationship -> ``text`` (its object);
* the metadata table ``md_ets_metadata(table_name, entity_attrs jsonb)`` in the database's default
  schema. ``create_hypertable`` is skipped: the tests' PostgreSQL has no TimescaleDB, and the
  dashboards use none of its functions.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
FIXED_COLUMNS = {
    "entity_id": "text",
    "entity_type": "text",
    "time_index": "timestamp WITH TIME ZONE NOT NULL",
    "fiware_servicepath": "text",
    "__original_ngsi_entity__": "jsonb",
    "instanceid": "text",
}


def column_type(attribute: Mapping[str, Any]) -> str:
    kind = attribute.get("type")
    if kind == "GeoProperty":
        return "geometry"
    value = attribute.get("value", attribute.get("object"))
    if isinstance(value, list):
        return "jsonb"
    if kind == "Relationship":
        return "text"
    if isinstance(value, dict):
        return "timestamp WITH TIME ZONE" if value.get("@type") == "DateTime" else "jsonb"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) and ISO_DATE_TIME.fullmatch(value):
        return "timestamp WITH TIME ZONE"
    return "text"


def time_index(entity: Mapping[str, Any], received: datetime) -> str:
    stamps = [
        datetime.fromisoformat(a["observedAt"])
        for name, a in entity.items()
        if isinstance(a, Mapping) and isinstance(a.get("observedAt"), str)
    ]
    return max(stamps, default=received).astimezone(UTC).isoformat()


def _literal(value: Any, sql_type: str) -> str:
    if value is None:
        return "NULL"
    if sql_type == "geometry":
        return f"ST_SetSRID(ST_GeomFromGeoJSON({_text(json.dumps(value))}), 4326)"
    if sql_type == "jsonb":
        return f"{_text(json.dumps(value))}::jsonb"
    if sql_type == "boolean":
        return "TRUE" if value else "FALSE"
    if sql_type in ("bigint", "float"):
        return repr(value)
    return _text(str(value))


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def load_sql(entities_by_tenant: Mapping[str, Iterable[Mapping[str, Any]]], received: datetime) -> str:
    """SQL that creates QuantumLeap's tables and inserts one row per entity, run as role quantumleap."""
    statements = ["CREATE TABLE IF NOT EXISTS md_ets_metadata (table_name text PRIMARY KEY, entity_attrs jsonb);"]
    for tenant, entities in entities_by_tenant.items():
        schema = f'"mt{tenant.lower()}"'
        statements.append(f"CREATE SCHEMA IF NOT EXISTS {schema};")
        by_type: dict[str, list[Mapping[str, Any]]] = {}
        for entity in entities:
            by_type.setdefault(str(entity["type"]), []).append(entity)
        for entity_type, rows in sorted(by_type.items()):
            table = f'{schema}."et{entity_type.lower()}"'
            columns: dict[str, str] = dict(FIXED_COLUMNS)
            original: dict[str, list[str]] = {}
            for entity in rows:
                for name, attribute in entity.items():
                    if name in ("id", "type", "@context") or not isinstance(attribute, Mapping):
                        continue
                    columns.setdefault(name.lower(), column_type(attribute))
                    original.setdefault(name.lower(), [name, str(attribute.get("type"))])
            definition = ", ".join(f'"{c}" {t}' for c, t in columns.items())
            statements.append(f"CREATE TABLE IF NOT EXISTS {table} ({definition});")
            statements.append(
                "INSERT INTO md_ets_metadata VALUES "
                f"({_text(table)}, {_text(json.dumps(original))}::jsonb) ON CONFLICT (table_name) DO NOTHING;"
            )
            for entity in rows:
                values = {
                    "entity_id": _text(str(entity["id"])),
                    "entity_type": _text(entity_type),
                    "time_index": _text(time_index(entity, received)),
                    "fiware_servicepath": "'/'",
                    "instanceid": _text(f"urn:ngsi-ld:{uuid.uuid4()}"),
                }
                for name, attribute in entity.items():
                    if name in ("id", "type", "@context") or not isinstance(attribute, Mapping):
                        continue
                    column = name.lower()
                    value = attribute.get("value", attribute.get("object"))
                    values[column] = _literal(value, columns[column])
                names = ", ".join(f'"{c}"' for c in values)
                statements.append(f"INSERT INTO {table} ({names}) VALUES ({', '.join(values.values())});")
    return "\n".join(statements) + "\n"

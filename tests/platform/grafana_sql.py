"""Grafana's PostgreSQL macros and template variables, expanded the way Grafana does before it sends
a panel's SQL (pkg/tsdb/grafana-postgresql-datasource, ``timescaledb: false``), so the tests can run
the dashboards' SQL on a real PostgreSQL.

Supported: ``$__timeFilter(col)``, ``$__timeFrom()``, ``$__timeTo()``, ``$__time(col)``,
``$__timeGroup(col, interval)``, ``$__timeGroupAlias(col, interval)``, ``$__interval`` and the
dashboard's own variables as ``$name`` or ``${name}``. Anything else left with a ``$`` fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

MACRO = re.compile(r"\$(__\w+)\(([^()]*)\)")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class MacroError(ValueError):
    pass


def seconds(interval: str) -> int:
    text = interval.strip().strip("'\"")
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text)
    if match is None:
        raise MacroError(f"interval {interval!r}")
    return max(1, int(int(match[1]) * UNITS[match[2]]))


def expand(sql: str, variables: Mapping[str, str], start: datetime, end: datetime, interval: str = "1h") -> str:
    time_from, time_to = f"'{start.isoformat()}'", f"'{end.isoformat()}'"
    text = sql.replace("$__interval_ms", str(seconds(interval) * 1000)).replace("$__interval", interval)

    def variable(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name.startswith("__"):
            return match[0]  # a macro, handled below
        if name not in variables:
            raise MacroError(f"unknown variable ${name}")
        return variables[name]

    text = VARIABLE.sub(variable, text)

    def macro(match: re.Match[str]) -> str:
        name, args = match[1], [a.strip() for a in match[2].split(",")] if match[2].strip() else []
        if name == "__timeFilter" and len(args) == 1:
            return f"{args[0]} BETWEEN {time_from} AND {time_to}"
        if name == "__timeFrom" and not args:
            return time_from
        if name == "__timeTo" and not args:
            return time_to
        if name == "__time" and len(args) == 1:
            return f'{args[0]} AS "time"'
        if name in ("__timeGroup", "__timeGroupAlias") and len(args) == 2:
            step = seconds(args[1])
            group = f"floor(extract(epoch from {args[0]})/{step})*{step}"
            return group + (' AS "time"' if name == "__timeGroupAlias" else "")
        raise MacroError(f"unsupported macro {match[0]}")

    text = MACRO.sub(macro, text)
    if "$" in text:
        raise MacroError(f"left unexpanded: {text[text.index('$') :][:40]!r}")
    return text

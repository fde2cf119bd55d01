#!/usr/bin/env python3
"""Write the Grafana dashboards (broker-config/grafana/dashboards/*.json) from the panel tables below.

One dashboard per domain, for day one of a city: parking, waste, schools and buildings, environment.
Every panel is SQL against QuantumLeap's tables on TimescaleDB: schema ``mt<tenant>``, one table
``et<type>`` per entity type (lowercased), columns ``entity_id``, ``entity_type``, ``time_index``,
``fiware_servicepath``, ``__original_ngsi_entity__``, ``instanceid`` and one lowercased column per
attribute (numbers ``double precision``/``bigint``, text, ISO date-times ``timestamptz``, arrays and
objects ``jsonb``, GeoProperties PostGIS ``geometry``). Table names are written without a schema:
each city's Grafana data source logs in as a role whose ``search_path`` is its own schema, so one
dashboard serves every city and a city sees only its own data (broker-config/timescale/initdb).

The ``datasource`` variable picks the city (data sources named ``QuantumLeap <tenant>``).

    .venv/bin/python scripts/build_dashboards.py           # rewrite the JSON files
    .venv/bin/python scripts/build_dashboards.py --check   # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "broker-config" / "grafana" / "dashboards"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": "${datasource}"}
SCHEMA_VERSION = 41
DORTMUND = {"lat": 51.5136, "lon": 7.4653, "zoom": 11}


def num(column: str) -> str:
    """A numeric attribute of row ``t``. Through ``to_jsonb`` so that a city whose QuantumLeap table
    lacks the column yet (QuantumLeap adds one with the first value of an attribute) gets NULLs
    instead of "column does not exist"."""
    return f"(to_jsonb(t) ->> '{column}')::double precision"


def txt(column: str) -> str:
    return f"(to_jsonb(t) ->> '{column}')"


def when(column: str) -> str:
    return f"(to_jsonb(t) ->> '{column}')::timestamptz"


#: The entity's name, else the local part of its id (urn:ngsi-ld:<Type>:<tenant>:<local id>).
LABEL = "COALESCE(to_jsonb(t) ->> 'name', split_part(t.entity_id, ':', 5))"


def latest(table: str, columns: str, where: str = "TRUE") -> str:
    """The newest row of every entity (QuantumLeap keeps one row per notification)."""
    return (
        f"SELECT DISTINCT ON (t.entity_id) {columns}\n"
        f"FROM {table} AS t\n"
        f"WHERE {where}\n"
        "ORDER BY t.entity_id, t.time_index DESC"
    )


def series(table: str, value: str, *, metric: str = LABEL, aggregate: str = "avg") -> str:
    """One time series per ``metric`` (a car park, a room, ...), aggregated per Grafana interval."""
    return (
        f"SELECT $__timeGroupAlias(t.time_index, $__interval), {metric} AS metric, {aggregate}({value}) AS value\n"
        f"FROM {table} AS t\n"
        f"WHERE $__timeFilter(t.time_index) AND {value} IS NOT NULL\n"
        "GROUP BY 1, 2\nORDER BY 1"
    )


def thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def timeseries(
    title: str,
    sql: str,
    *,
    unit: str,
    description: str = "",
    steps: dict[str, Any] | None = None,
    bands: str = "off",
    minimum: float | None = None,
    maximum: float | None = None,
    overrides: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 5,
            "spanNulls": True,
            "thresholdsStyle": {"mode": bands},
        },
        "thresholds": steps or thresholds(("green", None)),
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [_target(sql, "time_series")],
    }


def table(
    title: str, sql: str, *, description: str = "", overrides: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "fieldConfig": {"defaults": {"custom": {"align": "auto"}}, "overrides": overrides or []},
        "options": {"showHeader": True},
        "targets": [_target(sql, "table")],
    }


def stat(title: str, sql: str, *, unit: str = "none", steps: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": steps or thresholds(("green", None))},
            "overrides": [],
        },
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"},
        "targets": [_target(sql, "table")],
    }


def piechart(title: str, sql: str) -> dict[str, Any]:
    return {
        "type": "piechart",
        "title": title,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True}, "pieType": "donut"},
        "targets": [_target(sql, "table")],
    }


def geomap(title: str, sql: str, *, colour_field: str, steps: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {
        "type": "geomap",
        "title": title,
        "description": description,
        "fieldConfig": {"defaults": {"thresholds": steps, "color": {"mode": "thresholds"}}, "overrides": []},
        "options": {
            "view": {"id": "coords", **DORTMUND},
            "controls": {"showZoom": True, "mouseWheelZoom": True},
            "basemap": {"type": "default", "name": "Basemap"},
            "layers": [
                {
                    "type": "markers",
                    "name": title,
                    "location": {"mode": "coords", "latitude": "latitude", "longitude": "longitude"},
                    "config": {
                        "showLegend": True,
                        "style": {
                            "size": {"fixed": 8},
                            "color": {"field": colour_field},
                            "opacity": 0.8,
                        },
                    },
                    "tooltip": True,
                }
            ],
            "tooltip": {"mode": "details"},
        },
        "targets": [_target(sql, "table")],
    }


def _target(sql: str, fmt: str) -> dict[str, Any]:
    return {
        "refId": "A",
        "datasource": DATASOURCE,
        "editorMode": "code",
        "rawQuery": True,
        "format": fmt,
        "rawSql": sql,
    }


def dashed(pattern: str, colour: str) -> dict[str, Any]:
    """Series whose name matches ``pattern`` drawn as a dashed line in ``colour`` (threshold lines)."""
    return {
        "matcher": {"id": "byRegexp", "options": pattern},
        "properties": [
            {"id": "color", "value": {"mode": "fixed", "fixedColor": colour}},
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.fillOpacity", "value": 0},
        ],
    }


def datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "City",
        "type": "datasource",
        "query": DATASOURCE_TYPE,
        "regex": "/^QuantumLeap /",
        "current": {"selected": True, "text": "QuantumLeap dortmund", "value": "ql-dortmund"},
        "hide": 0,
        "refresh": 1,
    }


def custom_variable(name: str, label: str, values: list[str], default: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(values),
        "current": {"selected": True, "text": default, "value": default},
        "options": [{"selected": v == default, "text": v, "value": v} for v in values],
        "hide": 0,
    }


def textbox_variable(name: str, label: str, default: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "textbox",
        "query": default,
        "current": {"selected": True, "text": default, "value": default},
        "hide": 0,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[tuple[int, int, dict[str, Any]]],
    variables: list[dict[str, Any]] | None = None,
    time_from: str = "now-24h",
) -> dict[str, Any]:
    """``panels``: (width, height, panel) laid out left to right, row by row, 24 columns wide."""
    laid_out = []
    x = y = row_height = 0
    for number, (width, height, panel) in enumerate(panels, start=1):
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(
            {"id": number, "gridPos": {"x": x, "y": y, "w": width, "h": height}, "datasource": DATASOURCE, **panel}
        )
        x += width
        row_height = max(row_height, height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["dos-adapters", "quantumleap"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timezone": "browser",
        "refresh": "5m",
        "templating": {"list": [datasource_variable(), *(variables or [])]},
        "annotations": {"list": []},
        "links": [],
        "panels": laid_out,
    }


PERCENT = dict(unit="percent", minimum=0, maximum=100)
CO2_BANDS = thresholds(("green", None), ("yellow", 1000), ("red", 2000))  # Umweltbundesamt: <1000 good, >2000 bad


def parking() -> dict[str, Any]:
    occupied = f"round(({num('occupancy')} * 100)::numeric, 0)"
    free_now = latest(
        "etoffstreetparking",
        f'{LABEL} AS "car park", {num("availablespotnumber")} AS "free", {num("totalspotnumber")} AS "capacity", '
        f'{occupied} AS "occupied %", to_jsonb(t) -> \'status\' ->> 0 AS "status", t.time_index AS "as of"',
    )
    return dashboard(
        "dos-parking",
        "Parking",
        "Car parks (Parkleitsystem) and on-street spaces (LoRaWAN): occupancy over time, free spaces now.",
        [
            (
                16,
                9,
                timeseries(
                    "Occupancy per car park",
                    series("etoffstreetparking", f"{num('occupancy')} * 100"),
                    description="OffStreetParking.occupancy (0..1) in percent, averaged per interval.",
                    steps=thresholds(("green", None), ("orange", 85), ("red", 95)),
                    **PERCENT,
                ),
            ),
            (
                8,
                9,
                geomap(
                    "Car parks: free spaces now",
                    latest(
                        "etoffstreetparking",
                        f'{LABEL} AS name, {num("availablespotnumber")} AS free, {occupied} AS "occupied %", '
                        "ST_Y(t.location) AS latitude, ST_X(t.location) AS longitude",
                        "t.location IS NOT NULL",
                    ),
                    colour_field="occupied %",
                    steps=thresholds(("green", None), ("orange", 85), ("red", 95)),
                ),
            ),
            (
                12,
                9,
                table(
                    "Free spaces now",
                    f'SELECT * FROM (\n{free_now}\n) AS latest\nORDER BY "free" DESC NULLS LAST',
                    description="The newest reading of every car park.",
                ),
            ),
            (
                12,
                9,
                timeseries(
                    "Free spaces, all car parks",
                    "SELECT $__timeGroupAlias(time_index, $__interval), 'free spaces' AS metric, sum(free) AS value\n"
                    f"FROM (SELECT t.time_index, t.entity_id, avg({num('availablespotnumber')}) AS free\n"
                    "      FROM etoffstreetparking AS t\n"
                    "      WHERE $__timeFilter(t.time_index)\n"
                    "      GROUP BY 1, 2) AS readings\n"
                    "WHERE free IS NOT NULL\n"
                    "GROUP BY 1, 2\nORDER BY 1",
                    unit="none",
                    minimum=0,
                ),
            ),
            (
                16,
                8,
                timeseries(
                    "On-street zones: occupancy",
                    series("etonstreetparking", f"{num('occupancy')} * 100"),
                    description="OnStreetParking (LoRaWAN spot sensors grouped by zone).",
                    **PERCENT,
                ),
            ),
            (
                8,
                8,
                piechart(
                    "On-street spaces now",
                    "SELECT status AS metric, count(*) AS value\n"
                    f"FROM (\n{latest('etparkingspot', txt('status') + ' AS status')}\n) AS spots\n"
                    "WHERE status IS NOT NULL\nGROUP BY 1\nORDER BY 1",
                ),
            ),
        ],
    )


def waste() -> dict[str, Any]:
    due = latest(
        "etwastecontainer",
        f'{LABEL} AS name, {txt("storedwastekind")} AS "waste", '
        f'round(({num("fillinglevel")} * 100)::numeric, 0) AS "fill %", t.time_index AS "as of", '
        "ST_Y(t.location) AS latitude, ST_X(t.location) AS longitude",
        f"{num('fillinglevel')} IS NOT NULL",
    )
    return dashboard(
        "dos-waste",
        "Waste containers",
        "Fill levels of the bins with LoRaWAN sensors; bins at or above the threshold for the collection tour.",
        [
            (
                16,
                9,
                timeseries(
                    "Fill level per container",
                    series("etwastecontainer", f"{num('fillinglevel')} * 100", aggregate="max"),
                    description="WasteContainer.fillingLevel (0..1) in percent, the highest reading per interval.",
                    steps=thresholds(("green", None), ("orange", 70), ("red", 80)),
                    bands="line",
                    **PERCENT,
                ),
            ),
            (
                8,
                9,
                stat(
                    "Bins at or above the threshold",
                    f'SELECT count(*) AS bins FROM (\n{due}\n) AS latest\nWHERE "fill %" >= $threshold * 100',
                    steps=thresholds(("green", None), ("orange", 1), ("red", 10)),
                ),
            ),
            (
                12,
                10,
                geomap(
                    "Bins at or above the threshold",
                    f'SELECT * FROM (\n{due}\n) AS latest\nWHERE "fill %" >= $threshold * 100',
                    colour_field="fill %",
                    steps=thresholds(("green", None), ("orange", 70), ("red", 90)),
                ),
            ),
            (
                12,
                10,
                table(
                    "Collection tour: fullest first",
                    f'SELECT name, waste, "fill %", "as of" FROM (\n{due}\n) AS latest\n'
                    'WHERE "fill %" >= $threshold * 100\nORDER BY "fill %" DESC, "as of"',
                ),
            ),
        ],
        variables=[custom_variable("threshold", "Threshold (0..1)", ["0.6", "0.7", "0.8", "0.9"], "0.8")],
    )


def buildings() -> dict[str, Any]:
    return dashboard(
        "dos-buildings",
        "Schools and buildings: indoor climate",
        "CO2 per room with the Umweltbundesamt traffic light (below 1000 ppm good, up to 2000 ventilate, above "
        "unacceptable), temperature and humidity.",
        [
            (
                16,
                10,
                timeseries(
                    "CO2 per room",
                    series("etindoorenvironmentobserved", num("co2")),
                    description="IndoorEnvironmentObserved.co2 in ppm; bands: green < 1000, yellow < 2000, red.",
                    unit="ppm",
                    steps=CO2_BANDS,
                    bands="line+area",
                    minimum=400,
                ),
            ),
            (
                8,
                10,
                table(
                    "Traffic light now",
                    "SELECT * FROM (\n"
                    + latest(
                        "etindoorenvironmentobserved",
                        f'{LABEL} AS "room", {txt("airqualitylevel")} AS "traffic light", {num("co2")} AS "CO2 ppm", '
                        f'{num("temperature")} AS "°C", '
                        f'round(({num("relativehumidity")} * 100)::numeric, 0) AS "humidity %", '
                        't.time_index AS "as of"',
                    )
                    + '\n) AS latest\nORDER BY "CO2 ppm" DESC NULLS LAST',
                    overrides=[
                        {
                            "matcher": {"id": "byName", "options": "CO2 ppm"},
                            "properties": [
                                {"id": "thresholds", "value": CO2_BANDS},
                                {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                            ],
                        }
                    ],
                ),
            ),
            (
                12,
                8,
                timeseries(
                    "Temperature per room",
                    series("etindoorenvironmentobserved", num("temperature")),
                    unit="celsius",
                ),
            ),
            (
                12,
                8,
                timeseries(
                    "Relative humidity per room",
                    series("etindoorenvironmentobserved", num("relativehumidity")),
                    description="relativeHumidity is a fraction 0..1.",
                    unit="percentunit",
                    minimum=0,
                    maximum=1,
                ),
            ),
        ],
    )


def environment() -> dict[str, Any]:
    level = (
        f"SELECT $__timeGroupAlias(t.time_index, $__interval), {LABEL} || ' ' || kind AS metric, avg(value) AS value\n"
        "FROM etfloodmonitoring AS t\n"
        f"CROSS JOIN LATERAL (VALUES ('level', {num('currentlevel')}), ('warning', {num('alertlevel')}),\n"
        f"                           ('alarm', {num('dangerlevel')})) AS levels(kind, value)\n"
        "WHERE $__timeFilter(t.time_index) AND value IS NOT NULL\n"
        "GROUP BY 1, 2\nORDER BY 1"
    )
    gauges = (
        f"SELECT $__timeGroupAlias(t.time_index, $__interval), {LABEL} AS metric, avg({num('waterlevel')}) AS value\n"
        "FROM etwaterobserved AS t\n"
        f"WHERE $__timeFilter(t.time_index) AND {num('waterlevel')} IS NOT NULL\n"
        "GROUP BY 1, 2\n"
        "UNION ALL\n"
        "SELECT $__timeGroupAlias(t.time_index, $__interval), line.kind, line.value\n"
        "FROM etwaterobserved AS t\n"
        "CROSS JOIN (VALUES ('warning', '$water_warning_m'), ('alarm', '$water_alarm_m')) AS raw(kind, text)\n"
        "CROSS JOIN LATERAL (SELECT raw.kind, NULLIF(raw.text, '')::double precision AS value) AS line\n"
        "WHERE $__timeFilter(t.time_index) AND line.value IS NOT NULL\n"
        "GROUP BY 1, 2, 3\n"
        "ORDER BY 1"
    )
    pm_steps = {"PM10": 50, "PM2.5": 25}  # EU limit values: PM10 50 µg/m³ (daily), PM2.5 25 µg/m³ (annual)
    return dashboard(
        "dos-environment",
        "Environment: water, air, weather",
        "Water levels with warning and alarm lines, particulate matter with the EU limit values, weather, "
        "and the alerts raised by the adapters.",
        [
            (
                12,
                9,
                timeseries(
                    "Water level, LoRaWAN gauges (with their warning and alarm levels)",
                    level,
                    description="FloodMonitoring.currentLevel with the gauge's alertLevel (warning) and dangerLevel "
                    "(alarm), in metres.",
                    unit="lengthm",
                    overrides=[dashed("warning$", "orange"), dashed("alarm$", "red")],
                ),
            ),
            (
                12,
                9,
                timeseries(
                    "Water level, PEGELONLINE gauges",
                    gauges,
                    description="WaterObserved.waterLevel in metres above the gauge zero. The warning and alarm "
                    "lines are the dashboard variables (leave empty to hide).",
                    unit="lengthm",
                    overrides=[dashed("^warning$", "orange"), dashed("^alarm$", "red")],
                ),
            ),
            *[
                (
                    12,
                    8,
                    timeseries(
                        f"{label} per station",
                        series("etairqualityobserved", num(column)),
                        description=f"AirQualityObserved.{column} in µg/m³; the line is the EU limit value.",
                        unit="conµgm3",
                        steps=thresholds(("green", None), ("red", pm_steps[label])),
                        bands="line",
                        minimum=0,
                    ),
                )
                for label, column in (("PM10", "pm10"), ("PM2.5", "pm25"))
            ],
            (6, 8, timeseries("Air temperature", series("etweatherobserved", num("temperature")), unit="celsius")),
            (
                6,
                8,
                timeseries(
                    "Relative humidity",
                    series("etweatherobserved", num("relativehumidity")),
                    unit="percentunit",
                    minimum=0,
                    maximum=1,
                ),
            ),
            (
                6,
                8,
                timeseries(
                    "Precipitation",
                    series("etweatherobserved", num("precipitation"), aggregate="sum"),
                    unit="lengthmm",
                    minimum=0,
                ),
            ),
            (
                6,
                8,
                timeseries("Wind speed", series("etweatherobserved", num("windspeed")), unit="velocityms", minimum=0),
            ),
            (
                24,
                8,
                table(
                    "Alerts",
                    "SELECT * FROM (\n"
                    + latest(
                        "etalert",
                        f'{when("dateissued")} AS "issued", {txt("severity")} AS severity, '
                        f"{txt('category')} AS category, "
                        f'{txt("subcategory")} AS "kind", {txt("description")} AS description, '
                        f'{when("validfrom")} AS "since", {when("validto")} AS "until"',
                    )
                    + '\n) AS latest\nORDER BY "issued" DESC NULLS LAST',
                    description="Alert entities (warning/alarm thresholds of the adapters): severity medium = warning, "
                    "high = alarm, informational with 'until' = over.",
                ),
            ),
        ],
        variables=[
            textbox_variable("water_warning_m", "PEGELONLINE warning (m)", ""),
            textbox_variable("water_alarm_m", "PEGELONLINE alarm (m)", ""),
        ],
        time_from="now-7d",
    )


DASHBOARDS = {"parking": parking, "waste": waste, "buildings": buildings, "environment": environment}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Grafana dashboards of the platform.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path = OUT / f"{name}.json"
        text = render(build())
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(f"stale: {path.relative_to(ROOT)}; run scripts/build_dashboards.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

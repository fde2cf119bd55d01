"""Grafana provisioning and dashboards: valid JSON, references that resolve, SQL that runs.

The SQL runs on a real PostgreSQL with PostGIS (Debian packages postgresql + postgis; the test fails
without them, it never skips), prepared by the same init script as the TimescaleDB container
(broker-config/timescale/initdb/10-quantumleap.sh) and loaded with rows in QuantumLeap's table layout
(ql_layout) built from every adapter's sample output. Each panel's SQL is expanded as Grafana does
(grafana_sql) and executed as the city's read-only Grafana role, which also proves that the role sees
its own schema and nothing else.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from grafana_sql import expand
from pg_cluster import INSTALL, PostgresCluster
from platform_support import HERE, ROOT, Sample, offline_sample_run, recorded_cases
from ql_layout import load_sql, time_index

GRAFANA = ROOT / "broker-config" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "quantumleap.yaml"
INIT_SCRIPT = ROOT / "broker-config" / "timescale" / "initdb" / "10-quantumleap.sh"
#: Flood and PM10 alerts (warning, alarm, back to normal) written with adapters.core.alerts.AlertStore,
#: so the alerts panel also sees an alert that ended (validTo), which the recorded cases lack.
ALERTS = HERE / "fixtures" / "alerts.ndjson"
PG_TYPE = "grafana-postgresql-datasource"
RECEIVED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def dashboards() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in DASHBOARDS:
        yield path.stem, json.loads(path.read_text(encoding="utf-8"))


def targets() -> Iterator[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    for name, board in dashboards():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield f"{name}/{panel['title']}", board, panel, target


def provisioned() -> list[dict[str, Any]]:
    return list(yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"])


# ------------------------------------------------------------------------------ static checks


def test_there_is_a_dashboard_per_domain() -> None:
    assert {p.stem for p in DASHBOARDS} == {"parking", "waste", "buildings", "environment"}


def test_dashboards_are_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("build_dashboards", ROOT / "scripts" / "build_dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run scripts/build_dashboards.py"


def test_datasource_per_tenant_reads_its_own_schema_role() -> None:
    sources = provisioned()
    assert sources
    for source in sources:
        tenant = source["name"].removeprefix("QuantumLeap ")
        assert re.fullmatch(r"[a-z0-9_-]{1,50}", tenant), source["name"]
        assert source["uid"] == f"ql-{tenant}"
        assert source["type"] == PG_TYPE
        assert source["user"] == f"grafana_{tenant}"
        assert source["jsonData"]["database"] == "quantumleap"
        assert source["jsonData"]["timescaledb"] is False  # the macros expand as in grafana_sql
        assert source["secureJsonData"]["password"].startswith("$__file{/run/secrets/")
    assert sum(bool(s.get("isDefault")) for s in sources) == 1


@pytest.mark.parametrize(("name", "board"), list(dashboards()), ids=[p.stem for p in DASHBOARDS])
def test_dashboard_json_is_valid_and_every_reference_resolves(name: str, board: dict[str, Any]) -> None:
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert board["uid"] == f"dos-{name}" and board["title"]
    assert "id" not in board  # provisioned dashboards get their id from Grafana
    variables = {v["name"]: v for v in board["templating"]["list"]}
    source_variable = variables["datasource"]
    assert source_variable["type"] == "datasource" and source_variable["query"] == PG_TYPE
    pattern = re.compile(source_variable["regex"].strip("/"))
    matching = [s for s in provisioned() if pattern.search(s["name"])]
    assert matching, "the datasource variable matches no provisioned data source"
    assert source_variable["current"]["value"] in {s["uid"] for s in matching}
    uids = {s["uid"] for s in provisioned()}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        where = f"{name}/{panel.get('title')}"
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
        assert panel["targets"], f"{where}: no query"
        for reference in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert reference["type"] == PG_TYPE, where
            assert reference["uid"] == "${datasource}" or reference["uid"] in uids, where
        for target in panel["targets"]:
            assert target["rawQuery"] is True and target["editorMode"] == "code", where
            assert target["rawSql"].strip(), f"{where}: empty SQL"
            assert target["format"] in ("time_series", "table"), where
            used = set(re.findall(r"\$\{?(\w+)", target["rawSql"])) - {"__timeFilter", "__timeGroupAlias"}
            assert {u for u in used if not u.startswith("__")} <= set(variables), where


# ------------------------------------------------------------------------- SQL on PostgreSQL


def _series(samples: list[Sample]) -> list[dict[str, Any]]:
    """Each sample entity and five older readings of it, an hour apart, so time series have points."""
    rows = []
    for _, entity in samples:
        rows.append(entity)
        if not any(isinstance(a, dict) and "observedAt" in a for a in entity.values()):
            continue
        for hours in range(1, 6):
            older: dict[str, Any] = {}
            for key, attribute in entity.items():
                if isinstance(attribute, dict) and "observedAt" in attribute:
                    attribute = dict(attribute)
                    moment = datetime.fromisoformat(attribute["observedAt"]) - timedelta(hours=hours)
                    attribute["observedAt"] = moment.isoformat().replace("+00:00", "Z")
                    if isinstance(attribute.get("value"), float):
                        attribute["value"] = round(attribute["value"] * (1 - 0.04 * hours), 4)
                older[key] = attribute
            rows.append(older)
    return rows


@dataclass
class Database:
    cluster: PostgresCluster
    span: tuple[datetime, datetime]
    tables: dict[str, set[str]]
    """Tenant -> QuantumLeap tables (et<type>) that have rows."""


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    run, output = offline_sample_run(tmp_path_factory.mktemp("samples"))
    assert run, f"the offline sample run produced nothing:\n{output}"
    alerts = [("alerts fixture", json.loads(line)) for line in ALERTS.read_text(encoding="utf-8").splitlines()]
    entities = _series(run + recorded_cases() + alerts)
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for entity in entities:
        by_tenant.setdefault(str(entity["id"]).split(":")[3], []).append(entity)
    stamps = [datetime.fromisoformat(time_index(e, RECEIVED)) for e in entities]

    cluster = PostgresCluster()
    try:
        cluster.start()
        if not cluster.has_extension("postgis"):
            pytest.fail(f"PostGIS is not installed for this PostgreSQL ({cluster.bin}): {INSTALL}")
        secrets = cluster.base / "secrets"
        secrets.mkdir()
        (secrets / "ql").write_text("ql-secret\n")
        (secrets / "grafana").write_text("grafana-secret\n")
        init = subprocess.run(
            ["bash", str(INIT_SCRIPT)],
            env={
                **cluster.env,
                "POSTGRES_USER": "postgres",
                "POSTGRES_DB": "postgres",
                "DOS_TENANTS": ",".join(sorted(by_tenant)),
                "QUANTUMLEAP_DB_PASSWORD_FILE": str(secrets / "ql"),
                "GRAFANA_DB_PASSWORD_FILE": str(secrets / "grafana"),
                "QL_REQUIRE_TIMESCALEDB": "false",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert init.returncode == 0, f"init script failed:\n{init.stdout}\n{init.stderr}"
        loaded = cluster.psql(load_sql(by_tenant, RECEIVED), user="quantumleap", database="quantumleap")
        assert loaded.returncode == 0, f"loading QuantumLeap rows failed:\n{loaded.stderr[:2000]}"
        tables = {t: {f"et{e['type'].lower()}" for e in rows} for t, rows in by_tenant.items()}
        yield Database(cluster, (min(stamps) - timedelta(days=1), max(stamps) + timedelta(days=1)), tables)
    finally:
        cluster.stop()


def _run_panel(
    cluster: PostgresCluster, board: dict[str, Any], target: dict[str, Any], span: tuple[datetime, datetime], role: str
) -> list[dict[str, str]]:
    """The panel's SQL, expanded as Grafana does, run as ``role``; its rows as dicts."""
    variables = {v["name"]: str(v["current"]["value"]) for v in board["templating"]["list"]}
    sql = expand(target["rawSql"], variables, *span)
    result = cluster.psql(sql, user=role, database="quantumleap", csv=True)
    assert result.returncode == 0, f"{sql}\n--> {result.stderr}"
    return list(csv.DictReader(io.StringIO(result.stdout)))


#: Panels that may be empty with the sample data (nothing reaches the threshold in the samples).
MAY_BE_EMPTY = {"waste/Bins at or above the threshold", "waste/Collection tour: fullest first"}


@pytest.mark.parametrize(("where", "board", "panel", "target"), list(targets()), ids=[t[0] for t in targets()])
def test_panel_sql_runs_as_the_citys_grafana_role(
    database: Database, where: str, board: dict[str, Any], panel: dict[str, Any], target: dict[str, Any]
) -> None:
    """Run in every city that has the panel's tables (QuantumLeap creates a table with its first row;
    until then Grafana shows "relation does not exist", as for any city without that data)."""
    used = set(re.findall(r"\b(et[a-z]+)\b", target["rawSql"]))
    cities = [tenant for tenant, tables in sorted(database.tables.items()) if used <= tables]
    assert cities, f"{where}: no city has all of {sorted(used)} in the sample data"
    rows = []
    for tenant in cities:
        rows += _run_panel(database.cluster, board, target, database.span, f"grafana_{tenant}")

    if where not in MAY_BE_EMPTY:
        assert rows, f"{where}: no rows from the sample data"
    if rows and target["format"] == "time_series":
        assert {"time", "metric", "value"} <= set(rows[0]), f"{where}: columns {list(rows[0])}"
        assert all(float(r["value"]) == float(r["value"]) for r in rows if r["value"])
    if rows and panel["type"] == "geomap":
        for row in rows:
            assert 7.0 < float(row["longitude"]) < 8.0 and 51.0 < float(row["latitude"]) < 52.0, row


def test_a_citys_role_sees_only_its_own_schema(database: Database) -> None:
    cluster = database.cluster
    own = cluster.psql(
        "SELECT count(*) AS n FROM etoffstreetparking;", user="grafana_schwerte", database="quantumleap", csv=True
    )
    assert own.returncode == 0, own.stderr
    assert int(own.stdout.splitlines()[-1]) >= 1  # the recorded Schwerte car park
    other = cluster.psql(
        "SELECT count(*) FROM mtdortmund.etoffstreetparking;", user="grafana_schwerte", database="quantumleap"
    )
    assert other.returncode != 0 and "permission denied" in other.stderr
    write = cluster.psql("DELETE FROM etoffstreetparking;", user="grafana_schwerte", database="quantumleap")
    assert write.returncode != 0 and "permission denied" in write.stderr
    for role, tenant in (("grafana_schwerte", "schwerte"), ("grafana_dortmund", "dortmund")):
        seen = cluster.psql("SELECT DISTINCT entity_id FROM etoffstreetparking;", user=role, database="quantumleap",
                            csv=True)  # fmt: skip
        ids = seen.stdout.splitlines()[1:]
        assert ids and all(f":{tenant}:" in i for i in ids), (role, ids)
    board = dict(dashboards())["parking"]
    target = next(p for p in board["panels"] if p["title"] == "Free spaces now")["targets"][0]
    assert _run_panel(cluster, board, target, database.span, "grafana_schwerte")  # the same SQL, its own rows


def test_water_level_lines_come_from_the_dashboard_fields(database: Database) -> None:
    board = dict(dashboards())["environment"]
    target = next(p for p in board["panels"] if p["title"] == "Water level, PEGELONLINE gauges")["targets"][0]
    board = {**board, "templating": {"list": [
        *(v for v in board["templating"]["list"] if not v["name"].startswith("water_")),
        {"name": "water_warning_m", "current": {"value": "2.5"}},
        {"name": "water_alarm_m", "current": {"value": "3.5"}},
    ]}}  # fmt: skip
    rows = _run_panel(database.cluster, board, target, database.span, "grafana_dortmund")
    lines = {r["metric"]: float(r["value"]) for r in rows if r["metric"] in ("warning", "alarm")}
    assert lines == {"warning": 2.5, "alarm": 3.5}
    assert any(r["metric"] not in lines for r in rows)  # and the gauges themselves

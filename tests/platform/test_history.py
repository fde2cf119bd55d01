"""``dos-adapters history`` against a fake QuantumLeap serving recorded answers."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from platform_support import FakeQuantumLeap, write_config

from adapters.platform.commands import history
from adapters.platform.history import time_windows

GARAGE = "urn:ngsi-ld:OffStreetParking:dortmund:101059"
ROOM = "urn:ngsi-ld:IndoorEnvironmentObserved:dortmund:gsa-raum-114"
THREE_DAYS = ["--from", "2026-11-19T00:00:00Z", "--to", "2026-11-21T23:59:59Z"]


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path / "dos.toml", log={"level": "WARNING"})


def run(cfg: Path, quantumleap: FakeQuantumLeap, *args: str) -> Result:
    return CliRunner().invoke(
        history, [*args, "--quantumleap-url", quantumleap.url, "--config", str(cfg)], catch_exceptions=False
    )


def attribute_requests(quantumleap: FakeQuantumLeap) -> list[dict[str, str]]:
    return [r.query for r in quantumleap.requests if "/attrs/" in r.path]


def test_csv_of_three_days_in_daily_windows(cfg: Path, quantumleap: FakeQuantumLeap) -> None:
    result = run(cfg, quantumleap, GARAGE, "occupancy", *THREE_DAYS)

    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["time", "occupancy"]
    assert len(rows) == 1 + 288  # every 15 minutes, no duplicates at the window edges
    assert len({r[0] for r in rows[1:]}) == 288
    assert rows[1] == ["2026-11-19T00:00:00.000+00:00", "0.12"]
    assert "288 values of occupancy (3 window(s))" in result.stderr
    assert result.stderr.startswith(f"occupancy of {GARAGE}")  # the progress bar (no tty: its label only)
    requests = attribute_requests(quantumleap)
    windows = [(r["fromDate"], r["toDate"]) for r in requests if r["offset"] == "0"]
    assert windows == [
        ("2026-11-19T00:00:00.000Z", "2026-11-19T23:59:59.999Z"),
        ("2026-11-20T00:00:00.000Z", "2026-11-20T23:59:59.999Z"),
        ("2026-11-21T00:00:00.000Z", "2026-11-21T23:59:59.000Z"),
    ]
    assert all(r["type"] == "OffStreetParking" for r in requests)


def test_the_tenant_goes_in_fiware_service_only(cfg: Path, quantumleap: FakeQuantumLeap) -> None:
    """QuantumLeap's read API ignores NGSILD-Tenant: with it alone, every answer is empty."""
    assert run(cfg, quantumleap, GARAGE, "occupancy", *THREE_DAYS).exit_code == 0

    for request in quantumleap.requests:
        assert request.headers["fiware-service"] == "dortmund"
        assert "ngsild-tenant" not in request.headers


def test_pages_until_quantumleap_has_no_more_rows(cfg: Path, quantumleap: FakeQuantumLeap) -> None:
    """QuantumLeap caps a page at its DEFAULT_LIMIT without saying so; a short page is not the end."""
    quantumleap.default_limit = 40

    result = run(cfg, quantumleap, GARAGE, "occupancy", *THREE_DAYS, "--format", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert len(document["values"]) == 288
    first_day = [r for r in attribute_requests(quantumleap) if r["fromDate"].startswith("2026-11-19")]
    assert [r["offset"] for r in first_day] == ["0", "40", "80", "96"]  # 96 rows a day, then 404


def test_json_has_quantumleaps_shape(cfg: Path, quantumleap: FakeQuantumLeap) -> None:
    result = run(cfg, quantumleap, ROOM, "co2", "--from", "2026-11-19", "--to", "2026-11-19T01:00Z", "--format", "json")

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == {
        "entityId": ROOM,
        "entityType": "IndoorEnvironmentObserved",
        "attrName": "co2",
        "index": [f"2026-11-19T00:{m:02d}:00.000+00:00" for m in range(0, 60, 10)] + ["2026-11-19T01:00:00.000+00:00"],
        "values": [420.0] * 7,
    }


def test_aggregation_is_one_request_to_quantumleap(cfg: Path, quantumleap: FakeQuantumLeap) -> None:
    result = run(cfg, quantumleap, GARAGE, "occupancy", *THREE_DAYS, "--aggr-method", "max", "--aggr-period", "day")

    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))[1:]
    assert [r[0] for r in rows] == [f"2026-11-{d}T00:00:00.000+00:00" for d in (19, 20, 21)]
    assert all(0.8 < float(r[1]) <= 1.0 for r in rows)
    (request,) = attribute_requests(quantumleap)[:1]
    assert request["aggrMethod"] == "max" and request["aggrPeriod"] == "day"
    assert {r["fromDate"] for r in attribute_requests(quantumleap)} == {"2026-11-19T00:00:00.000Z"}


def test_png_is_a_plot_of_the_series(cfg: Path, quantumleap: FakeQuantumLeap, tmp_path: Path) -> None:
    try:
        from PIL import Image  # comes with matplotlib, which --format png needs
    except ImportError:
        pytest.fail("Pillow missing: install the test extras (matplotlib brings Pillow)")
    target = tmp_path / "occupancy.png"

    result = run(cfg, quantumleap, GARAGE, "occupancy", *THREE_DAYS, "--format", "png", "-o", str(target))

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    with Image.open(target) as picture:
        assert picture.format == "PNG"
        assert picture.size == (1000, 400)
        colours = picture.convert("RGB").getcolors(maxcolors=100_000)
    assert colours is not None and len(colours) > 50  # axes, labels, a curve: not a blank canvas
    assert f"wrote {target}" in result.stderr


def test_png_of_text_values_is_refused(cfg: Path, quantumleap: FakeQuantumLeap, tmp_path: Path) -> None:
    result = run(
        cfg, quantumleap, ROOM, "airQualityLevel", *THREE_DAYS, "--format", "png", "-o", str(tmp_path / "x.png")
    )

    assert result.exit_code == 1
    assert "no numeric values" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_nothing_recorded_is_an_empty_series_not_an_error(cfg: Path, quantumleap: FakeQuantumLeap) -> None:
    result = run(cfg, quantumleap, GARAGE, "occupancy", "--from", "2025-01-01", "--to", "2025-01-02")

    assert result.exit_code == 0
    assert result.stdout.strip() == "time,occupancy"


def test_unreachable_quantumleap(cfg: Path) -> None:
    result = CliRunner().invoke(
        history, [GARAGE, "occupancy", "--quantumleap-url", "http://127.0.0.1:9", "--config", str(cfg)]
    )

    assert result.exit_code == 1
    assert "QuantumLeap http://127.0.0.1:9 unreachable" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--aggr-period", "day"], "--aggr-period needs --aggr-method"),
        (["--from", "2026-11-20", "--to", "2026-11-19"], "is after"),
        (["--from", "yesterday"], "ISO 8601"),
    ],
)
def test_bad_options_are_usage_errors(cfg: Path, quantumleap: FakeQuantumLeap, args: list[str], message: str) -> None:
    result = run(cfg, quantumleap, GARAGE, "occupancy", *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert quantumleap.requests == []


def test_windows_cover_the_range_without_overlap() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    windows = time_windows(start, start + timedelta(hours=50), timedelta(hours=24))

    assert len(windows) == 3
    assert windows[0] == (start, start + timedelta(hours=24) - timedelta(milliseconds=1))
    assert windows[-1][1] == start + timedelta(hours=50)
    assert all(b[0] - a[1] == timedelta(milliseconds=1) for a, b in itertools.pairwise(windows))

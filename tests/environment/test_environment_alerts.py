"""Threshold alerts with hysteresis: the level rules, the Alert entities a rising and falling river
produces poll after poll, and the memory that makes them survive restarts and failed deliveries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from adapters.core.adapter import NormalizeContext
from adapters.core.alerts import AlertStore, Level, Thresholds, next_level, thresholds_from_settings
from adapters.core.normalize import normalize_payload
from adapters.core.validation import datamodels_root, entity_problems
from adapters.testing.cases import adapter_settings
from adapters.waterlevel import WaterlevelAdapter
from adapters.waterlevel.pegelonline import SOURCE

UUID = "c0594fb5-77ff-4287-9b8d-7ff326afe9ff"
STATION = f"urn:ngsi-ld:WaterObserved:dortmund:{UUID}"
LOCATION = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7.161034055228365, 51.399749917827165]}}
PROVIDER = "Wasserstraßen- und Schifffahrtsverwaltung des Bundes (WSV), PEGELONLINE"
START = datetime(2024, 5, 14, 8, 0, tzinfo=UTC)
THRESHOLDS = Thresholds(warning=3.0, alarm=4.0, hysteresis=0.1)


def hattingen(w_cm: float, at: datetime) -> bytes:
    """PEGELONLINE's answer for the Ruhr at Hattingen with the given W (local time, as PEGELONLINE sends it)."""
    local = at.astimezone(timezone(timedelta(hours=2)))
    station = {
        "uuid": UUID,
        "number": "2769510000100",
        "shortname": "Hattingen",
        "longname": "HATTINGEN",
        "km": 15.3,
        "agency": "RUHRVERBAND",
        "longitude": 7.161034055228365,
        "latitude": 51.399749917827165,
        "water": {"shortname": "RUHR", "longname": "RUHR"},
        "timeseries": [
            {
                "shortname": "W",
                "longname": "WASSERSTAND ROHDATEN",
                "unit": "cm",
                "equidistance": 15,
                "currentMeasurement": {"timestamp": local.isoformat(), "value": w_cm, "trend": 1},
            }
        ],
    }
    return json.dumps([station]).encode()


def settings(**alert: Any) -> dict[str, Any]:
    table = alert or {"warning": 3.0, "alarm": 4.0}
    return adapter_settings(WaterlevelAdapter, {"alerts": {"HATTINGEN": table}, "max_age": 0})


def poll(store: AlertStore, w_cm: float, at: datetime, config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One poll as the runner does it: normalise, then commit the alert memory; the Alerts it produced."""
    context = NormalizeContext(tenant="dortmund", settings=config or settings(), resources=store)
    result = normalize_payload(SOURCE, hattingen(w_cm, at), context)
    assert result.rejections == []
    store.commit()
    alerts = [e for e in result.entities if e["type"] == "Alert"]
    for alert in alerts:
        assert entity_problems(alert) == [], alert
    return alerts


def alert(
    *,
    valid_from: str,
    severity: str,
    issued: str,
    at: str,
    measured: float,
    description: str,
    ended: str | None = None,
) -> dict[str, Any]:
    """An Alert entity of the Hattingen station exactly as it must reach the broker."""
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Alert:dortmund:waterLevel-{UUID}-{valid_from.replace('-', '').replace(':', '')}",
        "type": "Alert",
        "category": {"type": "Property", "value": "naturalDisaster"},
        "subCategory": {"type": "Property", "value": "flood"},
        "severity": {"type": "Property", "value": severity, "observedAt": at},
        "alertSource": {"type": "Relationship", "object": STATION},
        "dateIssued": {"type": "Property", "value": issued},
        "validFrom": {"type": "Property", "value": valid_from},
    }
    if ended is not None:
        entity["validTo"] = {"type": "Property", "value": ended}
    entity["location"] = LOCATION
    entity["description"] = {"type": "Property", "value": description, "observedAt": at}
    entity["data"] = {
        "type": "Property",
        "value": {
            "quantity": "waterLevel",
            "measured": measured,
            "unit": "MTR",
            "warningLevel": 3.0,
            "alarmLevel": 4.0,
            "hysteresis": 0.1,
        },
        "observedAt": at,
    }
    entity["dataProvider"] = {"type": "Property", "value": PROVIDER}
    return entity


# -- the level rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "value", "expected"),
    [
        ("normal", 2.99, "normal"),
        ("normal", 3.0, "warning"),  # a threshold counts as reached
        ("normal", 4.2, "alarm"),  # straight to alarm
        ("warning", 2.95, "warning"),  # inside the hysteresis: no flapping
        ("warning", 2.9, "warning"),  # exactly threshold - hysteresis still holds
        ("warning", 2.89, "normal"),
        ("warning", 4.0, "alarm"),
        ("alarm", 3.95, "alarm"),
        ("alarm", 3.89, "warning"),
        ("alarm", 2.5, "normal"),  # a steep fall ends the alert at once
    ],
)
def test_next_level_rises_at_the_threshold_and_falls_only_below_the_hysteresis(
    current: Level, value: float, expected: Level
) -> None:
    assert next_level(current, value, THRESHOLDS) == expected


def test_only_one_threshold_is_enough() -> None:
    alarm_only = Thresholds(warning=None, alarm=4.0, hysteresis=0.2)
    assert [next_level("normal", 3.9, alarm_only), next_level("normal", 4.0, alarm_only)] == ["normal", "alarm"]
    assert [next_level("alarm", 3.85, alarm_only), next_level("alarm", 3.79, alarm_only)] == ["alarm", "normal"]
    warning_only = Thresholds(warning=3.0, alarm=None, hysteresis=0.1)
    assert next_level("normal", 9.0, warning_only) == "warning"


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"warning": 4.0, "alarm": 3.0}, "alarm 3 must be above warning 4"),
        ({"warning": 0.5, "hysteresis": 0.5}, "hysteresis 0.5 must be below the lowest threshold 0.5"),
    ],
)
def test_contradicting_thresholds_are_refused_naming_the_key(table: dict[str, float], needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as error:
        thresholds_from_settings(table, 0.1, "adapters.waterlevel.alerts.HATTINGEN")
    assert "adapters.waterlevel.alerts.HATTINGEN" in str(error.value)


def test_open_resources_reports_every_bad_station_at_once(tmp_path: Path) -> None:
    config = adapter_settings(
        WaterlevelAdapter,
        {"alerts": {"A": {"warning": 4.0, "alarm": 3.0}, "B": {"alarm": 0.05}, "C": {"warning": 1.0}}},
    )
    with pytest.raises(ValueError, match=r"alerts\.A: alarm 3") as error:
        WaterlevelAdapter.open_resources(config, base_dir=tmp_path, persistent=True)
    assert "alerts.A: alarm 3" in str(error.value)
    assert "alerts.B: hysteresis 0.1" in str(error.value)
    assert "alerts.C" not in str(error.value)
    assert not (tmp_path / "var").exists()


def test_no_thresholds_no_state_file(tmp_path: Path) -> None:
    config = adapter_settings(WaterlevelAdapter, {})
    assert WaterlevelAdapter.open_resources(config, base_dir=tmp_path, persistent=True) is None
    assert not (tmp_path / "var").exists()


# -- the Alert entities of a flood ---------------------------------------------------------------


def test_water_level_rising_past_warning_then_alarm_then_falling_gives_exactly_these_alert_states() -> None:
    store = AlertStore(None)
    levels = [250, 300, 295, 350, 400, 395, 385, 295, 289, 289, 301]
    polls = []
    for index, w_cm in enumerate(levels):
        at = START + timedelta(minutes=15 * index)
        polls.append(poll(store, w_cm, at))
        if index == 4:
            polls.append(poll(store, w_cm, at))  # the same measurement polled again: nothing new

    first = "2024-05-14T08:15:00Z"
    assert polls == [
        [],  # 2.50 m: normal
        [
            alert(
                valid_from=first,
                severity="medium",
                issued=first,
                at=first,
                measured=3.0,
                description="Water level 3.00 m at HATTINGEN (RUHR) reached the warning level 3.00 m.",
            )
        ],
        [],  # 2.95 m: inside the hysteresis, still a warning
        [],  # 3.50 m
        [
            alert(
                valid_from=first,
                severity="high",
                issued="2024-05-14T09:00:00Z",
                at="2024-05-14T09:00:00Z",
                measured=4.0,
                description="Water level 4.00 m at HATTINGEN (RUHR) reached the alarm level 4.00 m.",
            )
        ],
        [],  # the same measurement polled again
        [],  # 3.95 m: still an alarm
        [
            alert(
                valid_from=first,
                severity="medium",
                issued="2024-05-14T09:30:00Z",
                at="2024-05-14T09:30:00Z",
                measured=3.85,
                description="Water level 3.85 m at HATTINGEN (RUHR) fell back to the warning level 3.00 m.",
            )
        ],
        [],  # 2.95 m
        [
            alert(
                valid_from=first,
                severity="informational",
                issued="2024-05-14T09:30:00Z",
                at="2024-05-14T10:00:00Z",
                measured=2.89,
                ended="2024-05-14T10:00:00Z",
                description="Water level 2.89 m at HATTINGEN (RUHR) is back below the warning level 3.00 m "
                "(by more than the hysteresis 0.10 m): alert ended.",
            )
        ],
        [],  # 2.89 m again: the alert has ended, nothing more
        [
            alert(
                valid_from="2024-05-14T10:30:00Z",
                severity="medium",
                issued="2024-05-14T10:30:00Z",
                at="2024-05-14T10:30:00Z",
                measured=3.01,
                description="Water level 3.01 m at HATTINGEN (RUHR) reached the warning level 3.00 m.",
            )
        ],  # a new rise is a new alert
    ]


def test_an_older_measurement_arriving_late_changes_nothing() -> None:
    store = AlertStore(None)
    assert poll(store, 320, START)
    assert poll(store, 250, START - timedelta(minutes=15)) == []
    assert store.level("dortmund", f"waterLevel-{UUID}") == "warning"


def test_the_level_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    before = AlertStore(path)
    assert poll(before, 320, START)
    before.close()

    after = AlertStore(path)
    assert poll(after, 330, START + timedelta(minutes=15)) == []  # still the same warning
    (ended,) = poll(after, 250, START + timedelta(minutes=30))
    assert ended["severity"]["value"] == "informational"
    assert ended["validFrom"]["value"] == "2024-05-14T08:00:00Z"
    after.close()


def test_a_failed_delivery_raises_the_same_alert_again(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "state.sqlite")
    context = NormalizeContext(tenant="dortmund", settings=settings(), resources=store)
    first = normalize_payload(SOURCE, hattingen(320, START), context).entities
    store.rollback()  # the outbox write failed: the runner rolls back
    again = normalize_payload(SOURCE, hattingen(320, START), context).entities
    assert [e for e in again if e["type"] == "Alert"] == [e for e in first if e["type"] == "Alert"] != []
    store.close()


def test_tenants_do_not_share_levels() -> None:
    store = AlertStore(None)
    assert poll(store, 320, START)
    context = NormalizeContext(tenant="schwerte", settings=settings(), resources=store)
    entities = normalize_payload(SOURCE, hattingen(320, START), context).entities
    (raised,) = [e for e in entities if e["type"] == "Alert"]
    assert raised["id"].startswith("urn:ngsi-ld:Alert:schwerte:")
    assert raised["alertSource"]["object"] == f"urn:ngsi-ld:WaterObserved:schwerte:{UUID}"


def test_a_stale_or_negative_level_is_not_judged() -> None:
    store = AlertStore(None)
    assert poll(store, 320, START)
    # Negative W: no waterLevel, so no judgement; the open warning stays.
    context = NormalizeContext(tenant="dortmund", settings=settings(), resources=store)
    result = normalize_payload(SOURCE, hattingen(-5, START + timedelta(minutes=15)), context)
    assert result.entities == [] and result.rejections
    stale = NormalizeContext(
        tenant="dortmund",
        settings={**settings(), "max_age": 3600},
        resources=store,
        received_at=START + timedelta(hours=3),
    )
    result = normalize_payload(SOURCE, hattingen(100, START + timedelta(minutes=30)), stale)
    assert result.entities == [] and "stale" in result.rejections[0].reason
    assert store.level("dortmund", f"waterLevel-{UUID}") == "warning"


def test_the_profile_example_is_real_output_and_valid() -> None:
    example = json.loads(datamodels_root().joinpath("Alert", "examples", "example-normalized.jsonld").read_text())
    assert example.pop("@context")
    assert entity_problems(example) == []
    case = Path(__file__).parents[2] / "adapters" / "waterlevel" / "cases" / "alert_on_first_poll" / "expected.ndjson"
    (raised,) = [
        json.loads(line) for line in case.read_text(encoding="utf-8").splitlines() if '"type": "Alert"' in line
    ]
    assert example == raised


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"validTo": {"type": "Property", "value": "2024-05-14T09:00:00Z"}}, "validTo"),  # running, yet ended
        ({"severity": {"type": "Property", "value": "informational"}}, "validTo"),  # ended without validTo
        ({"subCategory": {"type": "Property", "value": "airPollution"}}, "flood"),
    ],
)
def test_the_profile_refuses_contradicting_alert_states(change: dict[str, Any], needle: str) -> None:
    (raised,) = poll(AlertStore(None), 320, START)
    problems = entity_problems({**raised, **change})
    assert problems and any(needle in p for p in problems), problems

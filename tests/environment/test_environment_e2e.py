"""The environment adapters end to end: fake public sources -> ``dos-adapters run --once`` -> Orion-LD double.

Every test runs the installed script (or, for conditional requests, the in-process Runtime) over
real HTTP on 127.0.0.1, with the recorded payloads, and checks what the broker holds and what went
to the dead-letter file. Source faults: 304, 503 and 429 with Retry-After, a slow answer, a cut-off
body, a gauge that stopped reporting.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from environment_support import (
    BRIGHTSKY_PATH,
    PAYLOADS,
    PEGELONLINE_PATH,
    SENSOR_COMMUNITY_PATH,
    FakeSources,
    Fault,
    Site,
    read_ndjson,
    run_cli,
    summaries,
    upserts,
)

from adapters.core.adapter import discover_adapters
from adapters.core.config import load_config
from adapters.core.runner import Runtime
from adapters.core.validation import entity_problems
from adapters.testing import BrokerDouble

HATTINGEN = "urn:ngsi-ld:WaterObserved:dortmund:c0594fb5-77ff-4287-9b8d-7ff326afe9ff"


def all_three(sources: FakeSources, **waterlevel: Any) -> dict[str, dict[str, Any]]:
    """The three adapters on the fake sources; the recorded samples are from 2024, so never stale."""
    return {
        "waterlevel": {"url": sources.url(PEGELONLINE_PATH, "includeTimeseries=true"), "max_age": 0, **waterlevel},
        "airquality": {"url": sources.url(SENSOR_COMMUNITY_PATH)},
        "weather": {"url": sources.url(BRIGHTSKY_PATH, "lat=51.5136&lon=7.4653")},
    }


def by_type(broker: BrokerDouble) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entity_id, entity in broker.entities("dortmund").items():
        found.setdefault(entity["type"], []).append(entity_id)
    return {kind: sorted(ids) for kind, ids in found.items()}


def test_run_once_brings_water_air_and_weather_into_the_broker(
    sources: FakeSources, broker: BrokerDouble, site: Site
) -> None:
    site.write_config(broker.url, all_three(sources))
    code, stdout, stderr = run_cli("run", "--once", "--config", str(site.config), cwd=site.root)

    assert code == 0, stderr
    assert summaries(stdout) == {
        "airquality": (6, 4, 1, "ok"),  # 6 locations: indoor and noise skipped, one failing SDS011
        "waterlevel": (4, 4, 0, "ok"),
        "weather": (1, 1, 0, "ok"),
    }
    assert {r.path for r in sources.requests} == {PEGELONLINE_PATH, SENSOR_COMMUNITY_PATH, BRIGHTSKY_PATH}
    assert all(r.headers["User-Agent"].startswith("dos-adapters/") for r in sources.requests)

    stored = broker.entities("dortmund")
    counts = {kind: len(ids) for kind, ids in by_type(broker).items()}
    assert counts == {"WaterObserved": 4, "AirQualityObserved": 4, "WeatherObserved": 1}
    assert broker.tenants() == {"dortmund"}
    for entity in stored.values():
        assert entity_problems({k: v for k, v in entity.items() if k != "@context"}) == [], entity["id"]
    assert stored[HATTINGEN]["waterLevel"]["value"] == 1.87
    assert stored["urn:ngsi-ld:WeatherObserved:dortmund:dwd-01303"]["windSpeed"]["value"] == 4.0
    assert all(r.status in (201, 204) for r in upserts(broker))
    assert all(r.headers["NGSILD-Tenant"] == "dortmund" for r in upserts(broker))

    (dead,) = read_ndjson(site.dead_letter)
    assert (dead["adapter"], dead["source"]) == ("airquality", "sensor-community")
    assert "sends its error values" in dead["reason"]
    assert dead["record"]["location"]["id"] == 40117


def test_an_unchanged_source_costs_one_304_and_no_upsert(
    sources: FakeSources, broker: BrokerDouble, site: Site
) -> None:
    site.write_config(broker.url, {"waterlevel": all_three(sources)["waterlevel"]})
    adapters = discover_adapters()
    config = load_config(site.config, {n: a.section_schema() for n, a in adapters.items()}, environ={})
    runtime = Runtime(config, adapters)
    try:
        (first,), _ = runtime.run_once()
        (second,), report = runtime.run_once()
    finally:
        runtime.close()

    assert (first.records, first.entities, first.not_modified) == (4, 4, False)
    assert (second.records, second.entities, second.not_modified, second.error) == (0, 0, True, None)
    assert report.requests == 0
    initial, conditional = sources.requests
    assert "If-None-Match" not in initial.headers
    etag = '"' + hashlib.sha256(sources.documents[PEGELONLINE_PATH]).hexdigest()[:20] + '"'
    assert (conditional.headers["If-None-Match"], conditional.status) == (etag, 304)
    assert len(upserts(broker)) == 1


def test_503_and_429_with_retry_after_are_waited_out(sources: FakeSources, broker: BrokerDouble, site: Site) -> None:
    sources.fail_next(PEGELONLINE_PATH, Fault(503, {"Retry-After": "1"}), Fault(429, {"Retry-After": "1"}))
    site.write_config(broker.url, {"waterlevel": all_three(sources)["waterlevel"]})
    code, stdout, stderr = run_cli("run", "--once", "--config", str(site.config), cwd=site.root)

    assert code == 0, stderr
    assert summaries(stdout)["waterlevel"] == (4, 4, 0, "ok")
    answered = sources.requests_to(PEGELONLINE_PATH)
    assert [r.status for r in answered] == [503, 429, 200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(answered)]
    assert all(gap >= 0.9 for gap in gaps), gaps  # Retry-After: 1 honoured each time
    assert len(by_type(broker)["WaterObserved"]) == 4


def test_a_slow_source_within_the_timeout_is_read(sources: FakeSources, broker: BrokerDouble, site: Site) -> None:
    sources.fail_next(BRIGHTSKY_PATH, Fault(delay=1.5))
    site.write_config(broker.url, {"weather": {**all_three(sources)["weather"], "timeout": 5}})
    code, stdout, stderr = run_cli("run", "--once", "--config", str(site.config), cwd=site.root)

    assert code == 0, stderr
    assert summaries(stdout)["weather"] == (1, 1, 0, "ok")
    assert by_type(broker) == {"WeatherObserved": ["urn:ngsi-ld:WeatherObserved:dortmund:dwd-01303"]}


@pytest.mark.slow
def test_a_source_slower_than_the_timeout_fails_the_poll_alone(
    sources: FakeSources, broker: BrokerDouble, site: Site
) -> None:
    # Every attempt (the first and the fetcher's three retries, with backoff) outlasts the 0.5 s timeout.
    sources.fail_next(BRIGHTSKY_PATH, *[Fault(delay=1.0)] * 4)
    config = all_three(sources)
    config["weather"]["timeout"] = 0.5
    site.write_config(broker.url, config)
    result = run_cli("run", "--once", "--config", str(site.config), cwd=site.root)

    assert result.returncode == 1  # a source failed
    records, entities, rejected, state = summaries(result.stdout)["weather"]
    assert (records, entities, rejected) == (0, 0, 0)
    assert state.startswith("ERROR") and "timed out" in state.lower()
    assert summaries(result.stdout)["waterlevel"][:2] == (4, 4)  # the other adapters are not held up
    assert "WeatherObserved" not in by_type(broker)
    assert read_ndjson(site.dead_letter)[0]["adapter"] == "airquality"  # no dead letter for a fetch failure


def test_truncated_json_fails_the_poll_and_nothing_of_it_is_sent(
    sources: FakeSources, broker: BrokerDouble, site: Site
) -> None:
    sources.fail_next(SENSOR_COMMUNITY_PATH, Fault(truncate=True))
    site.write_config(broker.url, all_three(sources))
    result = run_cli("run", "--once", "--config", str(site.config), cwd=site.root)

    assert result.returncode == 1
    records, entities, rejected, state = summaries(result.stdout)["airquality"]
    assert (records, entities, rejected) == (0, 0, 0)
    assert state.startswith("ERROR") and "not JSON" in state
    assert "AirQualityObserved" not in by_type(broker)
    assert len(by_type(broker)["WaterObserved"]) == 4
    assert read_ndjson(site.dead_letter) == []


def test_a_gauge_that_stopped_reporting_is_a_dead_letter_not_an_entity(
    sources: FakeSources, broker: BrokerDouble, site: Site
) -> None:
    # Default max_age (6 h) and the recorded sample of May 2024: every gauge is stale today.
    site.write_config(broker.url, {"waterlevel": {"url": sources.url(PEGELONLINE_PATH)}})
    code, stdout, stderr = run_cli("run", "--once", "--config", str(site.config), cwd=site.root)

    assert code == 0, stderr
    assert summaries(stdout)["waterlevel"] == (4, 0, 4, "ok")
    assert broker.entities("dortmund") == {}
    dead = read_ndjson(site.dead_letter)
    assert len(dead) == 4 and all("the gauge is not reporting" in d["reason"] for d in dead)


def pegelonline_hattingen(w_cm: float, at: datetime) -> bytes:
    """The recorded Hattingen station with only its W series, measuring ``w_cm`` at ``at`` (sent in CEST)."""
    station = json.loads(PAYLOADS[PEGELONLINE_PATH].read_bytes())[0]
    local = at.astimezone(timezone(timedelta(hours=2)))
    station["timeseries"] = [station["timeseries"][0]]
    station["timeseries"][0]["currentMeasurement"].update({"timestamp": local.isoformat(), "value": w_cm})
    return json.dumps([station]).encode()


def test_a_flood_rises_and_falls_over_four_runs_and_the_broker_holds_the_ended_alert(
    sources: FakeSources, broker: BrokerDouble, site: Site
) -> None:
    site.write_config(
        broker.url,
        {
            "waterlevel": {
                "url": sources.url(PEGELONLINE_PATH),
                "alerts": {"HATTINGEN": {"warning": 3.0, "alarm": 4.0}},
            }
        },
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    severities = []
    for index, w_cm in enumerate([250, 320, 410, 280]):  # normal, warning, alarm, ended
        sources.documents[PEGELONLINE_PATH] = pegelonline_hattingen(w_cm, start + timedelta(minutes=15 * index))
        result = run_cli("run", "--once", "--config", str(site.config), cwd=site.root)
        assert result.returncode == 0, result.stderr
        sent = [e for e in upserts(broker)[-1].json() if e["type"] == "Alert"]
        severities.append([e["severity"]["value"] for e in sent])

    assert severities == [[], ["medium"], ["high"], ["informational"]]
    (alert_id,) = by_type(broker)["Alert"]
    stored = broker.entities("dortmund")[alert_id]
    assert stored["severity"]["value"] == "informational"
    assert stored["validFrom"]["value"] == (start + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert stored["validTo"]["value"] == (start + timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert stored["alertSource"]["object"] == HATTINGEN
    assert stored["data"]["value"]["measured"] == 2.8
    assert (site.root / "var" / "waterlevel-state.sqlite").is_file()

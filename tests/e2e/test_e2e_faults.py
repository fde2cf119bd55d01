"""Delivery under faults, end to end: broker down, 5xx bursts, 207 partial, 413, kill -9, SIGTERM.

The promise under test (README, "Delivery guarantees"): every entity read from the source ends up
either in the broker or in the dead-letter file with a reason; while the broker cannot take it, it
waits in the outbox, also across a crash of the process.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2e_support import (
    EXPORT_PATH,
    GARAGE_WITHOUT_COORDINATES,
    VALID_GARAGES,
    ArrivalWatchingDouble,
    Cli,
    FakeOpendatasoft,
    Site,
    delivered_ids,
    expected_ids,
    garage_id,
    outbox_status,
    read_ndjson,
    record_parking_fault,
    summaries,
    upserts,
    wait_until,
)

from adapters.core.outbox import Outbox
from adapters.testing import ProblemDetail, ProblemType


def _pending(path: Path) -> int:
    """Entities in the outbox file, read directly (cheaper than another start of the script)."""
    outbox = Outbox(path)
    try:
        return outbox.status().entities
    finally:
        outbox.close()


def _each_once() -> Counter[str]:
    return Counter(dict.fromkeys(expected_ids("dortmund"), 1))


def _replay_report(stdout: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(stdout)
    return report


def test_broker_down_the_outbox_keeps_everything_until_replay(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli
) -> None:
    site.write_config(broker_url=broker.url, source_url=source.records_url)
    broker.go_down()

    code, stdout, stderr = cli("run", "--once", "--config", str(site.config))
    assert code == 0, stderr
    (summary,) = summaries(stdout)
    assert (summary.records, summary.entities, summary.rejected) == (24, 23, 1)
    assert f"outbox: {VALID_GARAGES} entities wait for the broker" in stdout
    assert "dos-adapters outbox replay" in stdout
    assert "unreachable" in stdout

    status = outbox_status(cli, site)
    assert status["entities"] == VALID_GARAGES
    assert status["tenants"] == {"dortmund": VALID_GARAGES}
    assert "unreachable" in status["last_error"]
    assert broker.requests == []  # connection refused: nothing reached it

    broker.come_up()
    replay = cli("outbox", "replay", "--config", str(site.config))
    assert replay.returncode == 0, replay.stderr
    assert _replay_report(replay.stdout) | {"requests": None} == {
        "delivered": VALID_GARAGES,
        "rejected": 0,
        "pending": 0,
        "requests": None,
        "error": None,
        "config_error": False,
    }
    assert set(broker.entities("dortmund")) == expected_ids("dortmund")
    assert delivered_ids(broker) == _each_once()
    assert len(upserts(broker)) == 1
    assert _pending(site.outbox) == 0
    assert [d["record"]["id"] for d in read_ndjson(site.dead_letter)] == [GARAGE_WITHOUT_COORDINATES]
    assert record_parking_fault("broker down (connection refused), then `outbox replay`", broker, site) == 0


def test_a_5xx_burst_is_waited_out_and_nothing_is_lost(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli
) -> None:
    site.write_config(broker_url=broker.url, source_url=source.records_url)
    broker.fail_next(3, 503)

    code, stdout, stderr = cli("run", "--once", "--config", str(site.config))
    assert code == 0, stderr
    assert f"outbox: {VALID_GARAGES} entities wait for the broker (503" in stdout
    assert _pending(site.outbox) == VALID_GARAGES

    # Replays during the burst keep everything and say so (exit 1); the first after it delivers.
    exits = []
    for _ in range(4):
        replay = cli("outbox", "replay", "--config", str(site.config))
        exits.append(replay.returncode)
        report = _replay_report(replay.stdout)
        assert report["delivered"] + report["pending"] == VALID_GARAGES, report
        if replay.returncode == 0:
            break
        assert report["error"].startswith("503"), report
    assert exits == [1, 1, 0]

    assert [r.status for r in upserts(broker)] == [503, 503, 503, 201]
    assert all(len(r.json()) == VALID_GARAGES for r in upserts(broker))  # the same batch, whole, in order
    assert set(broker.entities("dortmund")) == expected_ids("dortmund")
    assert delivered_ids(broker) == _each_once()
    assert _pending(site.outbox) == 0
    assert len(read_ndjson(site.dead_letter)) == 1
    assert record_parking_fault("5xx burst (3 x 503), replays until it ends", broker, site) == 0


def test_207_partial_refused_entity_goes_to_dead_letters_with_the_brokers_problem(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli
) -> None:
    refused = garage_id("dortmund", "107394")
    problem = ProblemDetail(ProblemType.BAD_REQUEST_DATA, "Garage refused", "107394 is under maintenance", 400)
    broker.reject_entities(lambda entity: problem if entity["id"] == refused else None)
    site.write_config(broker_url=broker.url, source_url=source.records_url)

    code, stdout, stderr = cli("run", "--once", "--config", str(site.config))
    assert code == 0, stderr
    (summary,) = summaries(stdout)
    assert (summary.records, summary.entities, summary.rejected) == (24, 23, 1)
    assert "broker refused 1 entities" in stdout
    assert "broker refused 1 entities for good" in stderr  # logged too, for scheduled runs
    assert str(site.dead_letter) in stdout

    assert set(broker.entities("dortmund")) == expected_ids("dortmund") - {refused}
    (upsert,) = upserts(broker)
    assert upsert.status == 207
    assert len(upsert.json()) == VALID_GARAGES
    assert _pending(site.outbox) == 0  # refused for good: not retried

    by_source = {d["source"]: d for d in read_ndjson(site.dead_letter)}
    assert set(by_source) == {"dortmund-parkhaeuser", "broker"}
    dead = by_source["broker"]
    assert dead["entity"]["id"] == refused
    assert dead["tenant"] == "dortmund"
    assert dead["adapter"] == "parking"
    assert dead["problem"] == {
        "type": ProblemType.BAD_REQUEST_DATA.value,
        "title": "Garage refused",
        "detail": "107394 is under maintenance",
        "status": 400,
    }
    assert "Garage refused" in dead["reason"]
    assert "107394 is under maintenance" in dead["reason"]
    note = "refused entity dead-lettered with the broker's problem"
    assert record_parking_fault("207 with one entity refused for good", broker, site, note=note) == 0


def test_413_halves_batches_until_they_fit(
    source: FakeOpendatasoft, make_broker: Callable[..., ArrivalWatchingDouble], site: Site, cli: Cli
) -> None:
    limit = 6000
    broker: ArrivalWatchingDouble = make_broker(max_payload_bytes=limit)
    site.write_config(broker_url=broker.url, source_url=source.records_url)  # client keeps its 1 MiB

    code, stdout, stderr = cli("run", "--once", "--config", str(site.config))
    assert code == 0, stderr
    assert "outbox:" not in stdout

    sent = upserts(broker)
    too_large = [r for r in sent if r.status == 413]
    accepted = [r for r in sent if r.status in (201, 204)]
    assert too_large
    assert all(int(r.headers["Content-Length"]) > limit for r in too_large)  # read no further by the double
    assert len(accepted) >= 2
    assert len(too_large) + len(accepted) == len(sent)
    assert all(len(r.body) <= limit for r in sent)
    assert sum(len(r.json()) for r in accepted) == VALID_GARAGES
    assert set(broker.entities("dortmund")) == expected_ids("dortmund")
    assert delivered_ids(broker) == _each_once()
    assert _pending(site.outbox) == 0
    assert len(read_ndjson(site.dead_letter)) == 1  # only the garage without coordinates
    note = f"{len(too_large)} x 413, {len(accepted)} accepted"
    assert record_parking_fault("413 (broker limit 6,000 bytes): batches halved", broker, site, note=note) == 0


def test_kill_9_during_delivery_loses_nothing(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli
) -> None:
    site.write_config(broker_url=broker.url, source_url=source.records_url)
    broker.delay_seconds = 5

    process = cli.start("run", "--once", "--config", str(site.config))
    wait_until(broker.arrived.is_set, 20, "the upsert request to reach the broker double")
    assert process.poll() is None, "the run must still be waiting for the broker's answer"
    process.send_signal(signal.SIGKILL)
    killed = cli.finish(process, timeout=10)
    assert killed.returncode == -signal.SIGKILL
    # The broker never finishes the interrupted request: going down cuts it off unanswered.
    broker.delay_seconds = 0
    broker.go_down()
    broker.come_up()
    assert [r.status for r in upserts(broker)] == [0]
    assert broker.entities("dortmund") == {}

    status = outbox_status(cli, site)
    assert status["entities"] == VALID_GARAGES
    assert status["tenants"] == {"dortmund": VALID_GARAGES}

    replay = cli("outbox", "replay", "--config", str(site.config))
    assert replay.returncode == 0, replay.stderr
    assert _replay_report(replay.stdout)["delivered"] == VALID_GARAGES
    assert set(broker.entities("dortmund")) == expected_ids("dortmund")
    assert delivered_ids(broker) == _each_once()
    assert _pending(site.outbox) == 0
    assert record_parking_fault("SIGKILL during a batch upsert, then `outbox replay`", broker, site) == 0


def test_sigterm_stops_the_scheduled_run_cleanly(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli
) -> None:
    # The export endpoint, as the live default; hourly, so exactly one poll happens.
    site.write_config(broker_url=broker.url, source_url=source.export_url)
    process = cli.start("run", "--config", str(site.config))
    wait_until(lambda: len(broker.entities("dortmund")) == VALID_GARAGES, 20, "the 23 garages in the broker")
    assert process.poll() is None, "run without --once keeps polling"

    process.send_signal(signal.SIGTERM)
    code, stdout, stderr = cli.finish(process, timeout=10)
    assert code == 0, stderr
    assert stdout == ""  # the summary is for --once; a scheduled run logs
    assert "signal 15: stopping" in stderr
    assert "0 wait in the outbox" in stderr
    assert [(r.path, r.status) for r in source.requests] == [(EXPORT_PATH, 200)]
    assert delivered_ids(broker) == _each_once()
    assert _pending(site.outbox) == 0
    assert [d["record"]["id"] for d in read_ndjson(site.dead_letter)] == [GARAGE_WITHOUT_COORDINATES]
    assert record_parking_fault("SIGTERM during a scheduled run", broker, site) == 0

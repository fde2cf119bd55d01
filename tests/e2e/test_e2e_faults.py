"""Delivery under faults, end to end: broker down, 5xx bursts, 207 partial, 413, kill -9, SIGTERM, and a
30 s broker outage while the scheduler keeps polling a live feed.

The promise under test (README, "Delivery guarantees"): every entity read from the source ends up
either in the broker or in the dead-letter file with a reason; while the broker cannot take it, it
waits in the outbox, also across a crash of the process.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from e2e_support import (
    EXPORT_PATH,
    GARAGE_WITHOUT_COORDINATES,
    RECORDS_PATH,
    VALID_GARAGES,
    ArrivalWatchingDouble,
    Cli,
    FakeOpendatasoft,
    LiveParkhauser,
    Site,
    delivered_ids,
    expected_ids,
    free_port,
    garage_id,
    outbox_status,
    read_ndjson,
    record_parking_fault,
    summaries,
    upserts,
    wait_until,
)

from adapters.core.outbox import Outbox
from adapters.testing import BrokerDouble, ProblemDetail, ProblemType
from adapters.testing.fault_log import record_fault


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


# ------------------------------------------------------------------ 30 s outage, scheduler running

OUTAGE_SECONDS = 30.0
POLL_INTERVAL = 2  # seconds; the config's minimum is 1
STUCK_AFTER = 10  # [metrics] stuck_after: /readyz reports the outbox once entities waited this long


def _get_json(url: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of a GET to the adapter's health server (a 503 is an answer, not an error)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _accepted_states(double: BrokerDouble) -> Counter[tuple[str, datetime]]:
    """How often each garage state (entity id, time of its ``status``) was in an upsert the double took."""
    states: Counter[tuple[str, datetime]] = Counter()
    for request in upserts(double):
        if request.status in (201, 204):
            states.update((e["id"], datetime.fromisoformat(e["status"]["observedAt"])) for e in request.json())
    return states


def _dead_states(site: Site) -> set[tuple[str, datetime]]:
    """The garage states in the dead-letter file (each line holds the source record)."""
    return {
        (garage_id("dortmund", d["record"]["id"]), datetime.fromisoformat(d["record"]["zeitstempel"]))
        for d in read_ndjson(site.dead_letter)
    }


def test_broker_down_30_s_while_the_scheduler_polls_loses_no_garage_state(
    source: FakeOpendatasoft, broker: ArrivalWatchingDouble, site: Site, cli: Cli
) -> None:
    """``dos-adapters run`` polls a live feed every 2 s (each poll a new state of all 24 garages) while
    the broker refuses connections for 30 s. Each poll's entities must wait in the outbox, the process
    must keep polling and stay alive (/healthz 200; /readyz 503 naming only the outbox once entities
    waited longer than ``stuck_after``), and when the broker is back the deliverer drains the outbox
    by itself, with no ``outbox replay``: every garage state in the broker or dead-lettered, none lost."""
    feed = LiveParkhauser()
    source.documents[RECORDS_PATH] = feed
    port = free_port()
    site.write_config(
        broker_url=broker.url,
        source_url=source.records_url,
        parking={"interval": POLL_INTERVAL},
        outbox={"max_backoff": 1},
        metrics={"port": port, "host": "127.0.0.1", "stuck_after": STUCK_AFTER},
    )
    healthz, readyz = f"http://127.0.0.1:{port}/healthz", f"http://127.0.0.1:{port}/readyz"
    process = cli.start_logged("run", "--config", str(site.config), log=site.root / "adapter.log")

    def running() -> None:
        assert process.poll() is None, f"the adapter exited with {process.returncode}"

    started = time.monotonic()
    wait_until(lambda: _accepted_states(broker), 20, "the first poll in the broker")
    wait_until(lambda: running() or _get_json(readyz)[0] == 200, 10, "/readyz 200 before the outage")

    broker.go_down()
    down_since, polls_before = time.time(), len(feed.polls)
    health: list[tuple[int, int, dict[str, Any]]] = []  # (/healthz, /readyz, /readyz body)
    deadline = time.monotonic() + OUTAGE_SECONDS
    while time.monotonic() < deadline:
        running()
        health.append((_get_json(healthz)[0], *_get_json(readyz)))
        time.sleep(0.5)
    polls_during = len(feed.polls) - polls_before
    waiting = _pending(site.outbox)
    upserts_before = len(upserts(broker))  # none came in while it was down
    broker.come_up()

    back_at, backlog = time.monotonic(), feed.states()
    wait_until(
        lambda: running() or backlog <= set(_accepted_states(broker)) | _dead_states(site),
        30,
        "the garage states of the outage in the broker",
        interval=0.1,
    )
    drained_in = time.monotonic() - back_at

    def drained() -> bool:
        running()
        return feed.states() <= set(_accepted_states(broker)) | _dead_states(site) and _pending(site.outbox) == 0

    polls_at_recovery = len(feed.polls)
    wait_until(
        lambda: len(feed.polls) >= polls_at_recovery + 2 and drained(),
        30,
        "two more polls, every garage state polled so far in the broker and the outbox empty",
        interval=0.2,
    )
    wait_until(lambda: running() or _get_json(readyz)[0] == 200, 10, "/readyz 200 again")
    elapsed = time.monotonic() - started
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    log = (site.root / "adapter.log").read_text(encoding="utf-8")
    upserts_after = len(upserts(broker)) - upserts_before

    assert polls_during >= OUTAGE_SECONDS / POLL_INTERVAL / 2, f"only {polls_during} polls during the outage"
    assert waiting >= VALID_GARAGES * (polls_during - 1), "the polls of the outage did not wait in the outbox"
    assert {status for status, _, _ in health} == {200}, "/healthz must not fail for a broker outage"
    refused = [body for _, status, body in health if status == 503]
    assert refused, "/readyz never reported the entities waiting in the outbox"
    assert all(problem.startswith("outbox: ") for body in refused for problem in body["problems"])
    assert health[-1][2]["adapters"]["parking"]["last_success"] > down_since + OUTAGE_SECONDS - 3 * POLL_INTERVAL
    assert "Traceback" not in log, log  # the deliverer's loop met no unexpected error
    assert re.search(r"stopped: \d+ delivered on the way out, 0 wait in the outbox", log), log
    assert {r.status for r in source.requests} == {200}
    assert {r.status for r in upserts(broker)} <= {201, 204}

    sent = feed.states()
    accepted = _accepted_states(broker)
    delivered = sent & set(accepted)
    dead = (sent - delivered) & _dead_states(site)
    polls = len(feed.polls)
    lost = record_fault(
        f"broker down {OUTAGE_SECONDS:.0f} s, parking polled every {POLL_INTERVAL} s (`run`, scheduler running)",
        sent=len(sent),
        delivered=len(delivered),
        dead_lettered=len(dead),
        duplicates=sum(count - 1 for count in accepted.values()),
        unit="garage states",
        seconds=elapsed,
        note=f"{polls} polls, {polls_during} during the outage; up to {waiting} entities waited; "
        f"backlog delivered {drained_in:.1f} s after the broker's return, by the running deliverer; "
        f"{upserts_after} upserts from then on",
    )
    assert lost == 0
    assert set(accepted) <= sent, "the broker got a state the portal never served"
    assert (len(delivered), len(dead)) == (VALID_GARAGES * polls, polls)  # 101099 has no coordinates
    assert accepted.total() == len(accepted), "a refused connection took nothing: no state is sent twice"
    assert _pending(site.outbox) == 0

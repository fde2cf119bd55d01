"""Faults around a running LoRaWAN adapter, counting uplinks in and out: a slow broker, a broker
down for 30 s mid-stream, and a full disk under the outbox.

Each test publishes a known stream of QoS 1 uplinks into a real mosquitto, runs the installed
``dos-adapters run`` as a subprocess and counts what the broker double took: every uplink must end
up there (its two entity states, WasteContainer and Device), none in the dead-letter file, and an
entity state may come twice only as an idempotent upsert of the same state. The figures go to the
fault table (``scripts/fault_table.py``, docs/reliability.md) through ``record_fault``.
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from lorawan_e2e_support import (
    Publisher,
    Reading,
    Site,
    chirpstack_topic,
    chirpstack_up,
    fleet,
    observed_pairs,
    readings,
    tally,
    upsert_bodies,
    wait_until,
)

from adapters.testing import BrokerDouble
from adapters.testing.fault_log import record_fault


def _publish_paced(publisher: Publisher, uplinks: list[Reading], per_second: float) -> tuple[threading.Thread, dict]:
    """Publish in the background at about ``per_second``; the monotonic time each was handed over."""
    sent_at: dict[Reading, float] = {}

    def run() -> None:
        start = time.monotonic()
        for n, reading in enumerate(uplinks):
            sent_at[reading] = time.monotonic()
            publisher.publish(chirpstack_topic(reading.sensor.dev_eui), chirpstack_up(reading))
            time.sleep(max(0.0, start + (n + 1) / per_second - time.monotonic()))

    thread = threading.Thread(target=run, name="network-server")
    thread.start()
    return thread, sent_at


def _watch_arrivals(broker: BrokerDouble, uplinks: list[Reading], timeout: float) -> dict[Reading, float]:
    """Poll the double until every uplink's two states arrived; when each was first seen."""
    arrived: dict[Reading, float] = {}
    deadline = time.monotonic() + timeout
    while len(arrived) < len(uplinks):
        seen = set(observed_pairs(broker))
        now = time.monotonic()
        for reading in uplinks:
            if reading not in arrived and reading.pairs() <= seen:
                arrived[reading] = now
        if time.monotonic() > deadline:
            pytest.fail(f"only {len(arrived)} of {len(uplinks)} uplinks reached the broker within {timeout:.0f} s")
        time.sleep(0.05)
    return arrived


def _out_of_order(broker: BrokerDouble) -> list[str]:
    """Entities whose states reached the broker out of the order of their times (oldest first)."""
    states: dict[str, list[str]] = {}
    for body in upsert_bodies(broker):
        for entity in body:
            attribute = entity.get("status") or entity.get("dateLastValueReported") or {}
            states.setdefault(entity["id"], []).append(attribute.get("observedAt", ""))
    return [entity_id for entity_id, times in states.items() if times != sorted(times)]


def _config(site: Site, broker: BrokerDouble, port: int, client_id: str, **lorawan: object) -> None:
    site.write_config(
        broker_url=broker.url,
        mqtt={"host": "127.0.0.1", "port": port, "client_id": client_id},
        lorawan={"batch_max_delay": 0.05, **lorawan},
    )


def test_slow_broker_2_s_per_request_loses_nothing(
    tmp_path, mosquitto, broker, client_id, start_adapter, make_publisher
) -> None:
    """Every upsert takes 2 s: the intake keeps acknowledging (the outbox absorbs the stream) and the
    deliverer catches up in large batches. One request carries at most one state per entity (Orion-LD
    would merge the others), so the fleet is 100 bins each sending once: with a 2 s broker, a stream of
    repeated readings of few bins drains at (distinct entities per tenant) per 2 s, slowly but whole."""
    sensors = fleet(per_tenant=50)
    site = Site(tmp_path / "site", sensors)
    _config(site, broker, mosquitto.port, client_id)
    broker.delay_seconds = 2.0
    adapter = start_adapter(site)
    adapter.wait_subscribed()
    uplinks = readings(sensors, 100)
    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")

    started = time.monotonic()
    stream, sent_at = _publish_paced(publisher, uplinks, per_second=50)  # 2 s
    try:
        arrived = _watch_arrivals(broker, uplinks, timeout=30)
    finally:
        stream.join(timeout=30)
    elapsed = time.monotonic() - started
    counters = adapter.stop_cleanly()

    latencies = sorted(arrived[r] - sent_at[r] for r in uplinks)
    p50, worst = statistics.median(latencies), latencies[-1]
    requests = len([r for r in broker.requests if r.method == "POST"])
    delivered, dead, repeats = tally(broker, site, uplinks)
    print(f"slow broker: {requests} upserts of 2 s each; latency p50 {p50:.1f} s, max {worst:.1f} s")
    lost = record_fault(
        "broker slow (2 s per request), MQTT stream",
        sent=len(uplinks),
        delivered=delivered,
        dead_lettered=dead,
        duplicates=repeats,
        unit="uplinks",
        seconds=elapsed,
        note=f"{requests} upserts; receipt-to-broker latency p50 {p50:.1f} s, max {worst:.1f} s",
    )
    assert lost == 0
    assert (delivered, dead, repeats) == (100, 0, 0)
    assert (counters["messages"], counters["rejected"], counters["entities"]) == (100, 0, 200)
    assert requests <= 10, "a slow broker must be met with larger batches, not one request per uplink"
    assert worst >= 2.0  # every uplink waited for at least one slow request
    assert site.outbox_entities() == 0


OUTAGE_SECONDS = 30.0


def test_broker_down_for_30_seconds_mid_stream_loses_nothing(
    tmp_path, mosquitto, broker, client_id, start_adapter, make_publisher
) -> None:
    """The broker refuses connections for 30 s while 10 uplinks/s keep coming over MQTT: the stream
    starts before the outage and goes on after it. The intake keeps committing to the outbox and
    acknowledging; when the broker is back the deliverer drains the backlog by itself.

    The two tenants' bins take turns, so the backlog's small rows alternate between the tenants: it
    must still drain in few large requests (one per tenant and state of a bin), not one per row."""
    by_tenant = fleet(per_tenant=25)
    sensors = [sensor for pair in zip(by_tenant[:25], by_tenant[25:], strict=True) for sensor in pair]
    site = Site(tmp_path / "site", sensors)
    _config(site, broker, mosquitto.port, client_id)
    adapter = start_adapter(site)
    adapter.wait_subscribed()
    uplinks = readings(sensors, 400)
    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")

    started = time.monotonic()
    stream, _ = _publish_paced(publisher, uplinks, per_second=10)  # 40 s
    try:
        wait_until(lambda: len(observed_pairs(broker)) >= 40, 15, "the first deliveries")
        broker.go_down()
        down_at = publisher.published
        most_waiting = 0
        deadline = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < deadline:
            assert adapter.process.poll() is None, f"the adapter exited during the outage:\n{adapter.log}"
            most_waiting = max(most_waiting, site.outbox_entities())
            time.sleep(0.5)
        during = publisher.published - down_at
        broker.come_up()
        back_at, backlog = time.monotonic(), publisher.published
        upserts_before = len(broker.requests)  # none came in while it was down
        # Watched while the stream goes on: when the uplinks published up to the return arrived.
        backlog_arrived = _watch_arrivals(broker, uplinks[:backlog], timeout=30)
        backlog_upserts = len(broker.requests) - upserts_before  # and the live stream's meanwhile
        drained_in = max(backlog_arrived.values()) - back_at
        after_outage = len(uplinks) - backlog
    finally:
        stream.join(timeout=30)
    assert during >= OUTAGE_SECONDS * 10 / 2, f"only {during} uplinks published during the outage"
    assert after_outage > 0, "the stream ended before the broker came back"
    # Two entities per uplink: at least half of the outage's entities were seen waiting at once.
    assert most_waiting >= during, "the uplinks of the outage did not wait in the outbox"
    _watch_arrivals(broker, uplinks, timeout=30)
    elapsed = time.monotonic() - started
    counters = adapter.stop_cleanly()
    upserts_after = len(broker.requests) - upserts_before

    delivered, dead, repeats = tally(broker, site, uplinks)
    lost = record_fault(
        f"broker down {OUTAGE_SECONDS:.0f} s mid-stream, MQTT stream (adapter running)",
        sent=len(uplinks),
        delivered=delivered,
        dead_lettered=dead,
        duplicates=repeats,
        unit="uplinks",
        seconds=elapsed,
        note=f"{during} uplinks published during the outage, {after_outage} after it; "
        f"up to {most_waiting} entities waited; backlog delivered {drained_in:.1f} s after the broker's return; "
        f"{backlog_upserts} upserts until the backlog was in, {upserts_after} from then on (backlog and live stream)",
    )
    assert lost == 0
    # One state per entity per request: each tenant's 25 bins have about during / 50 states waiting,
    # so about 2 * during / 50 requests at least; one request per outbox row would be about `during`.
    assert backlog_upserts <= 2 * during / 50 + 30, f"the backlog took {backlog_upserts} upserts"
    assert _out_of_order(broker) == []  # within a tenant nothing overtook
    assert (delivered, dead) == (400, 0)
    # Connection refused means the broker took nothing, so nothing is sent twice.
    assert repeats == 0
    assert (counters["messages"], counters["rejected"], counters["entities"]) == (400, 0, 800)
    assert site.outbox_entities() == 0
    assert "wait in the outbox" in adapter.log


_FULL_DISK_HOOK = '''\
"""Test hook (loaded as sitecustomize): the outbox's SQLite file may not grow, as on a full disk."""
import sqlite3

import adapters.core.outbox as _outbox

_open = _outbox.Outbox.__init__


def _init(self, path):
    _open(self, path)
    (pages,) = self._db.execute("PRAGMA page_count").fetchone()
    self._db.execute(f"PRAGMA max_page_count = {pages}")


_outbox.Outbox.__init__ = _init
'''


def test_disk_full_under_the_outbox_keeps_messages_unacknowledged_until_space_is_back(
    tmp_path: Path,
    mosquitto,
    broker,
    client_id,
    start_adapter: Callable,
    make_publisher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outbox file cannot grow (SQLite ``max_page_count`` on the adapter's own connection, set by a
    sitecustomize hook: SQLITE_FULL, exactly what a full disk gives). The adapter says so in its log,
    commits nothing, acknowledges nothing; stopped and started again with space, it receives every
    uplink again from the persistent session and delivers it."""
    sensors = fleet(per_tenant=10)
    site = Site(tmp_path / "site", sensors)
    _config(site, broker, mosquitto.port, client_id, batch_max_delay=0.5)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_FULL_DISK_HOOK, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(hook))
    full = start_adapter(site, name="full")
    full.wait_subscribed()
    uplinks = readings(sensors, 60)
    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")
    started = time.monotonic()
    publisher.publish_all((chirpstack_topic(r.sensor.dev_eui), chirpstack_up(r)) for r in uplinks)
    full.wait_for_log("database or disk is full", timeout=30)
    full.wait_for_log("trying again in", timeout=5)  # it keeps the batch and retries; it does not drop it
    stopped = full.stop_cleanly()
    assert (stopped["messages"], stopped["entities"], stopped["commits"]) == (0, 0, 0)
    assert "not acknowledged" in full.log
    assert "nothing was accepted" in full.log
    assert observed_pairs(broker) == {}
    # Nothing half-written: the file is sound and holds no row.
    with sqlite3.connect(site.outbox) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM batches").fetchone() == (0,)
    assert site.dead_letters() == []

    monkeypatch.delenv("PYTHONPATH")  # space is back
    again = start_adapter(site, name="again")
    _watch_arrivals(broker, uplinks, timeout=20)
    elapsed = time.monotonic() - started
    counters = again.stop_cleanly()

    delivered, dead, repeats = tally(broker, site, uplinks)
    lost = record_fault(
        "disk full under the outbox (SQLITE_FULL), MQTT, then space back + restart",
        sent=len(uplinks),
        delivered=delivered,
        dead_lettered=dead,
        duplicates=repeats,
        unit="uplinks",
        seconds=elapsed,
        note="nothing committed or acknowledged while full; all redelivered by mosquitto",
    )
    assert lost == 0
    assert (delivered, dead, repeats) == (60, 0, 0)
    assert (counters["messages"], counters["rejected"], counters["entities"]) == (60, 0, 120), "not redelivered"
    assert site.outbox_entities() == 0

"""Crashes mid-stream: the adapter killed with SIGKILL, the MQTT broker restarted.

What must hold (lorawan README, "What happens to an uplink", step 7): an uplink is PUBACKed only
after its entities are in the outbox, so whatever the adapter had not committed comes again through
the persistent session, and what comes twice is dropped by its deduplication key. In the end the
set of entity states the broker received is exactly the set published — nothing lost, nothing made
up — and the broker's state is the newest reading of every bin.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from lorawan_e2e_support import (
    Mosquitto,
    Publisher,
    Reading,
    Site,
    chirpstack_topic,
    chirpstack_up,
    expected_pairs,
    fleet,
    newest_per_sensor,
    observed_pairs,
    readings,
    record_uplink_fault,
    wait_until,
)

from adapters.testing import BrokerDouble


def _assert_newest_state(broker: BrokerDouble, uplinks: list[Reading]) -> None:
    for sensor, reading in newest_per_sensor(uplinks).items():
        container = broker.entities(sensor.tenant)[sensor.container_id]
        assert container["fillingLevel"]["value"] == reading.level
        assert container["fillingLevel"]["observedAt"] == reading.observed_at


def _publish_paced(publisher: Publisher, uplinks: list[Reading], per_second: float) -> threading.Thread:
    """Publish in the background at about ``per_second`` (the network server's pace, not a burst)."""

    def run() -> None:
        start = time.monotonic()
        for n, reading in enumerate(uplinks):
            publisher.publish(chirpstack_topic(reading.sensor.dev_eui), chirpstack_up(reading))
            time.sleep(max(0.0, start + (n + 1) / per_second - time.monotonic()))

    thread = threading.Thread(target=run, name="network-server")
    thread.start()
    return thread


def test_adapter_killed_mid_stream_and_restarted_delivers_every_uplink(
    tmp_path, mosquitto, broker, client_id, start_adapter, make_publisher
) -> None:
    sensors = fleet(per_tenant=10)
    site = Site(tmp_path / "site", sensors)
    site.write_config(broker_url=broker.url, mqtt={"host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id})
    first = start_adapter(site)
    first.wait_subscribed()

    uplinks = readings(sensors, 300)
    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")
    stream = _publish_paced(publisher, uplinks, per_second=250)  # 1.2 s
    try:
        wait_until(lambda: len(observed_pairs(broker)) >= 20, 15, "the first deliveries")
        first.kill()  # SIGKILL: no goodbye, no last commit, no PUBACKs for the batch in progress
        published_before_kill = publisher.published
    finally:
        stream.join(timeout=30)
    delivered_before = len(observed_pairs(broker)) // 2
    assert 0 < delivered_before < published_before_kill < 300, "the kill did not land mid-stream"
    # What was published meanwhile waits in mosquitto for the persistent session.
    assert publisher.wait_published() == 300

    second = start_adapter(site)  # same client id, state and outbox files
    want = expected_pairs(uplinks)
    wait_until(lambda: want <= set(observed_pairs(broker)), 30, "every uplink after the restart")
    counters = second.stop_cleanly()

    pairs = observed_pairs(broker)
    assert set(pairs) == want, "an entity state was lost or made up"
    _assert_newest_state(broker, uplinks)
    assert site.dead_letters() == []
    assert site.outbox_entities() == 0
    assert counters["rejected"] == 0
    # In: the uplinks published while it was down, plus those it had received but not acknowledged.
    redelivered = counters["messages"] - (300 - published_before_kill)
    assert redelivered > 0, "nothing unacknowledged came again"
    assert counters["entities"] <= 2 * counters["messages"]
    # A pair can reach the broker twice only when the kill fell between a successful upsert and the
    # outbox noting it (the restart replays that row: an idempotent upsert of the same state).
    repeats = Counter(count for count in pairs.values() if count > 1)
    print(
        f"kill -9 with {published_before_kill} uplinks published and {delivered_before} delivered; the restarted "
        f"adapter received {counters['messages']} ({redelivered} of them again) and committed "
        f"{counters['entities'] // 2}; repeated states: {dict(repeats) or 'none'}"
    )
    assert sum(repeats.values()) <= 2 * 500, "more repeats than one outbox batch"
    note = f"killed with {published_before_kill} published; {redelivered} redelivered by mosquitto"
    assert record_uplink_fault("SIGKILL of the adapter mid-stream, restart", broker, site, uplinks, note=note) == 0


@pytest.fixture
def persistent_mosquitto(tmp_path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto", persistence=True).start()
    yield broker
    broker.stop()


def test_mqtt_broker_restart_mid_stream_loses_nothing(
    tmp_path, persistent_mosquitto, broker, client_id, start_adapter, make_publisher
) -> None:
    """mosquitto restarts (persistence on, so sessions and their messages survive) while the
    adapter holds a whole micro-batch uncommitted: the adapter reconnects with backoff, the
    unacknowledged uplinks come again, and the ones it did commit are dropped as duplicates."""
    mosquitto = persistent_mosquitto
    sensors = fleet(per_tenant=10)
    site = Site(tmp_path / "site", sensors)
    site.write_config(
        broker_url=broker.url,
        mqtt={"host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id},
        lorawan={"batch_max_delay": 1.0},
    )
    adapter = start_adapter(site)
    adapter.wait_subscribed()
    uplinks = readings(sensors, 200)
    before, after = uplinks[:100], uplinks[100:]

    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns-1")
    publisher.publish_all((chirpstack_topic(r.sensor.dev_eui), chirpstack_up(r)) for r in before)
    publisher.close()
    # The adapter has the 100 uplinks in a micro-batch that closes only in a second.
    mosquitto.restart()
    assert observed_pairs(broker) == Counter(), "the batch was committed before the restart"
    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns-2")
    publisher.publish_all((chirpstack_topic(r.sensor.dev_eui), chirpstack_up(r)) for r in after)

    want = expected_pairs(uplinks)
    wait_until(lambda: want <= set(observed_pairs(broker)), 30, "every uplink after the MQTT broker restart")
    counters = adapter.stop_cleanly()

    pairs = observed_pairs(broker)
    assert set(pairs) == want
    assert set(pairs.values()) == {1}
    _assert_newest_state(broker, uplinks)
    # In: the first 100 twice (committed after the connection was gone, so not acknowledged:
    # mosquitto sent them again) and the other 100 once. Out: 400 entities, each state once.
    assert counters["messages"] == 300
    assert (counters["rejected"], counters["entities"]) == (0, 400)
    assert "MQTT connection lost" in adapter.log
    assert adapter.log.count("MQTT connected to") == 2
    assert adapter.log.count("MQTT subscription granted") == 2  # subscribed again on the new connection
    assert site.dead_letters() == []
    note = "100 uncommitted uplinks redelivered (QoS 1, persistent session)"
    assert record_uplink_fault("MQTT broker (mosquitto) restart mid-stream", broker, site, uplinks, note=note) == 0

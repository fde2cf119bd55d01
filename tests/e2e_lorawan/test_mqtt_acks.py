"""Acknowledgements, proven by a mosquitto that allows one unacknowledged message per client.

With ``max_inflight_messages 1`` mosquitto sends a subscriber the next QoS 1 message only after the
PUBACK of the previous one. So a message that reaches the adapter proves that everything published
before it on the subscription was acknowledged — and the adapter acknowledges only after the outbox
commit.

The same window is the worst case of PUBACK-after-commit micro-batching: a batch can never hold more
uplinks than the MQTT broker lets be in flight, and it waits ``batch_max_delay`` for more before it
commits. Throughput is at most ``window / batch_max_delay``: measured here with window 1 and the
default 0.2 s, 5 uplinks/s (one commit and one broker request per uplink; the tests shorten the
delay to 20 ms). A broker that holds a window of 20 (mosquitto's default ``max_inflight_messages``)
would allow 100 uplinks/s. Debian's mosquitto 2.0.11 enforces its window only until the first
PUBACKs (measured with windows 5, 20, 100: batches of 5, 25, 125, 500… and 20, 400, 500…), so
there the limit bites only with a window of 1. Deployments should give the adapter's client a
window of at least ``batch_max_messages`` (mosquitto ``max_inflight_messages 0`` or ≥ 500) and a
queue that outlasts an adapter restart (``max_queued_messages``, default 1000: mosquitto drops QoS 1
messages beyond it while the adapter is away).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future

import pytest
from lorawan_e2e_support import (
    APP_ID,
    Mosquitto,
    Site,
    chirpstack_topic,
    chirpstack_up,
    expected_pairs,
    fleet,
    observed_pairs,
    readings,
    wait_until,
)

from adapters.core.intake import Message, MicroBatcher, MqttIntake


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto-strict"), max_inflight=1).start()
    try:
        yield broker
    finally:
        broker.stop()


def _config(site: Site, broker_url: str, mosquitto: Mosquitto, client_id: str, **mqtt: object) -> None:
    site.write_config(
        broker_url=broker_url,
        mqtt={"host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id, **mqtt},
        lorawan={"batch_max_delay": 0.02},
    )


def test_join_status_and_other_events_on_the_subscription_are_acknowledged_and_ignored(
    tmp_path, mosquitto, broker, client_id, start_adapter, make_publisher
) -> None:
    sensors = fleet(per_tenant=1)
    site = Site(tmp_path / "site", sensors)
    # Subscribed to every ChirpStack event, as an integration sharing the NS's topic tree would be.
    _config(site, broker.url, mosquitto, client_id, topics=[f"application/{APP_ID}/device/+/event/+"])
    adapter = start_adapter(site)
    adapter.wait_subscribed()

    sensor = sensors[0]
    device_info = chirpstack_up(readings(sensors, 1)[0])["deviceInfo"]
    others = {
        "join": {"deduplicationId": "6e1c", "time": "2024-11-05T05:59:00+00:00", "deviceInfo": device_info},
        "status": {"deviceInfo": device_info, "margin": 7, "batteryLevel": 87.5, "externalPowerSource": False},
        "txack": {"downlinkId": 3310, "time": "2024-11-05T06:00:01+00:00", "deviceInfo": device_info, "fCntDown": 4},
        "log": {
            "time": "2024-11-05T06:00:02+00:00",
            "deviceInfo": device_info,
            "level": "ERROR",
            "code": "UPLINK_CODEC",
        },
    }
    uplink = readings(sensors, 1)[0]
    stream = [(chirpstack_topic(sensor.dev_eui, event), document) for event, document in others.items()]
    stream.append((chirpstack_topic(sensor.dev_eui), chirpstack_up(uplink)))  # reaches the adapter only after 4 PUBACKs
    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")
    publisher.publish_all(stream)
    wait_until(lambda: expected_pairs([uplink]) <= set(observed_pairs(broker)), 15, "the uplink after the events")
    counters = adapter.stop_cleanly()

    assert counters["messages"] == 5
    assert (counters["ignored"], counters["rejected"], counters["entities"]) == (4, 0, 2)
    assert site.dead_letters() == []
    assert set(observed_pairs(broker)) == expected_pairs([uplink])


def test_uplinks_are_committed_and_acknowledged_while_the_broker_is_down(
    tmp_path, mosquitto, broker, client_id, start_adapter, make_publisher
) -> None:
    sensors = fleet(per_tenant=5)
    site = Site(tmp_path / "site", sensors)
    _config(site, broker.url, mosquitto, client_id)
    adapter = start_adapter(site)
    adapter.wait_subscribed()
    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")
    uplinks = readings(sensors, 40)
    before, during = uplinks[:10], uplinks[10:]

    publisher.publish_all((chirpstack_topic(r.sensor.dev_eui), chirpstack_up(r)) for r in before)
    wait_until(lambda: expected_pairs(before) <= set(observed_pairs(broker)), 15, "the first 10 uplinks")
    broker.go_down()
    publisher.publish_all((chirpstack_topic(r.sensor.dev_eui), chirpstack_up(r)) for r in during)
    # All 30 reached the adapter through a one-message window, so the first 29 were PUBACKed; the
    # 30th is committed too: the outbox holds all 60 entities while nothing can be delivered.
    wait_until(lambda: site.outbox_entities() == 60, 15, "60 entities in the outbox while the broker is down")
    assert set(observed_pairs(broker)) == expected_pairs(before)

    broker.come_up()
    wait_until(lambda: expected_pairs(uplinks) <= set(observed_pairs(broker)), 15, "the outbox drained")
    counters = adapter.stop_cleanly()

    assert counters["messages"] == 40
    assert (counters["rejected"], counters["entities"]) == (0, 80)
    assert set(observed_pairs(broker)) == expected_pairs(uplinks)
    assert site.outbox_entities() == 0
    assert site.dead_letters() == []
    assert "wait in the outbox" in adapter.log  # the deliverer noticed the outage and kept the entities


def test_a_failed_commit_is_retried_not_left_unacknowledged(mosquitto, client_id, make_publisher, caplog) -> None:
    """The outbox cannot be written for a while (disk full, locked): the batch is retried until it
    commits. An unacknowledged message is never resent on the same connection, so giving up on it
    would block this one-message window, and with it the intake, until a reconnect."""
    caplog.set_level(logging.INFO, logger="dos_adapters.intake")
    committed: list[bytes] = []
    attempts = 0
    lock = threading.Lock()

    def flush(messages: Sequence[Message]) -> None:
        nonlocal attempts
        with lock:
            attempts += 1
            if attempts <= 2:
                raise OSError("database or disk is full")
            committed.extend(m.payload for m in messages)

    batcher = MicroBatcher(flush, max_messages=10, max_delay=0.01, retry_delay=0.05)
    intake = MqttIntake(
        host="127.0.0.1", port=mosquitto.port, topics=["dos-e2e/retry/#"], client_id=client_id, enqueue=batcher.enqueue
    )
    intake.start()
    try:
        wait_until(lambda: "MQTT subscription granted" in caplog.text, 10, "the SUBACK")
        publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")
        payloads = [f"uplink {n}".encode() for n in range(5)]
        publisher.publish_all((f"dos-e2e/retry/{n}", payload) for n, payload in enumerate(payloads))
        wait_until(lambda: len(committed) == 5, 10, "all 5 messages committed after two failed commits")
        assert committed == payloads  # in order, each once
        assert attempts == 2 + 5
    finally:
        intake.pause()
        batcher.close()
        intake.stop()

    late: Future[None] = batcher.submit(Message("dos-e2e/retry/late", b"after close"))
    assert isinstance(late.exception(timeout=1), RuntimeError)  # not committed, so never acknowledged


def test_sigterm_commits_and_acknowledges_the_batch_in_progress(
    tmp_path, mosquitto, broker, client_id, start_adapter, make_publisher
) -> None:
    """Uplink A waits in a 5-second micro-batch, B waits in mosquitto behind it. On SIGTERM the
    adapter commits A and PUBACKs it before it disconnects, and takes nothing new: the next start
    receives B only. (Disconnecting first would make A come again, to be dropped as a duplicate.)"""
    sensors = fleet(per_tenant=1)
    site = Site(tmp_path / "site", sensors)
    site.write_config(
        broker_url=broker.url,
        mqtt={"host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id},
        lorawan={"batch_max_delay": 5.0},
    )
    first = start_adapter(site)
    first.wait_subscribed()
    a, b = readings(sensors, 2)
    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")
    publisher.publish_all((chirpstack_topic(r.sensor.dev_eui), chirpstack_up(r)) for r in (a, b))
    time.sleep(0.5)  # A reaches the adapter within milliseconds; the counters below say it did
    stopped = first.stop_cleanly()
    assert (stopped["messages"], stopped["entities"]) == (1, 2)
    assert set(observed_pairs(broker)) == expected_pairs([a])  # delivered on the way out

    site.write_config(  # the same client id, state and outbox; quick batches now
        broker_url=broker.url,
        mqtt={"host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id},
        lorawan={"batch_max_delay": 0.02},
    )
    second = start_adapter(site)
    wait_until(lambda: expected_pairs([a, b]) <= set(observed_pairs(broker)), 15, "uplink B after the restart")
    counters = second.stop_cleanly()
    assert (counters["messages"], counters["entities"]) == (1, 2), "A was redelivered: it was not acknowledged"
    assert site.dead_letters() == []

"""LoRaWAN uplinks over a real mosquitto into the broker double: volume, duplicates, replicas.

The adapter runs as ``dos-adapters run`` (a subprocess), subscribed with QoS 1 and a persistent
session; the network server is played by a paho publisher sending ChirpStack v4 ``up`` events or
The Things Stack v3 uplinks in their real JSON. Every test counts readings in (published), out
(entities in the double's upsert bodies, dead letters) and what the adapter says it did (the
counters it logs when it stops on SIGTERM).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import paho.mqtt.client as mqtt
import pytest
from lorawan_e2e_support import (
    AdapterProcess,
    Mosquitto,
    Publisher,
    Reading,
    Site,
    chirpstack_topic,
    chirpstack_up,
    delivered_ids,
    expected_pairs,
    fleet,
    newest_per_sensor,
    observed_pairs,
    readings,
    tts_topic,
    tts_up,
    upsert_bodies,
    wait_until,
)

from adapters.testing import BrokerDouble

UPSERT = "/ngsi-ld/v1/entityOperations/upsert"


def _mqtt(mosquitto: Mosquitto, client_id: str, **extra: object) -> dict[str, object]:
    return {"host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id, **extra}


def _wait_delivered(broker: BrokerDouble, uplinks: list[Reading], timeout: float = 30) -> None:
    want = expected_pairs(uplinks)
    wait_until(
        lambda: want <= set(observed_pairs(broker)), timeout, f"the {len(want)} entity states of {len(uplinks)} uplinks"
    )


def test_200_uplinks_of_two_cities_arrive_in_few_batch_requests(
    tmp_path, mosquitto, broker, client_id, start_adapter, make_publisher
) -> None:
    sensors = fleet(per_tenant=10)  # 10 bins in Dortmund, 10 in Schwerte; EM310-UDL and DL-MBX alternating
    site = Site(tmp_path / "site", sensors)
    site.write_config(broker_url=broker.url, mqtt=_mqtt(mosquitto, client_id))
    adapter = start_adapter(site)
    adapter.wait_subscribed()

    uplinks = readings(sensors, 200)  # 10 per bin: each its own frame counter, time and fill level
    publisher: Publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")
    published = publisher.publish_all((chirpstack_topic(r.sensor.dev_eui), chirpstack_up(r)) for r in uplinks)
    _wait_delivered(broker, uplinks)
    counters = adapter.stop_cleanly()

    # In: 200 uplinks. Out: 2 entities each (WasteContainer + Device), each exactly once.
    assert published == 200
    assert counters["messages"] == 200
    assert (counters["ignored"], counters["rejected"], counters["entities"]) == (0, 0, 400)
    pairs = observed_pairs(broker)
    assert set(pairs) == expected_pairs(uplinks)
    assert set(pairs.values()) == {1}, "an entity state was sent twice"
    assert sum(delivered_ids(broker).values()) == 400
    assert site.dead_letters() == []
    assert site.outbox_entities() == 0

    # The double holds the newest state of every bin and sensor, in its city's tenant only.
    newest = newest_per_sensor(uplinks)
    for tenant in ("dortmund", "schwerte"):
        mine = [s for s in sensors if s.tenant == tenant]
        stored = broker.entities(tenant)
        assert set(stored) == {s.container_id for s in mine} | {s.device_id for s in mine}
        for sensor in mine:
            container, device = stored[sensor.container_id], stored[sensor.device_id]
            reading = newest[sensor]
            assert container["type"] == "WasteContainer"
            assert container["fillingLevel"]["value"] == reading.level  # exact: the geometry is whole percents
            assert container["fillingLevel"]["observedAt"] == reading.observed_at
            assert container["storedWasteKind"]["value"] == sensor.waste_kind
            assert container["refDevice"]["value"] == [sensor.device_id]
            assert device["type"] == "Device"
            assert device["dateLastValueReported"]["value"] == reading.observed_at
    assert broker.tenants() == {"dortmund", "schwerte"}

    # Tenant header and entities agree in every request; the micro-batches make few requests.
    requests = [r for r in broker.requests if r.path == UPSERT]
    for request in requests:
        assert {e["id"].split(":")[3] for e in request.json()} == {request.headers["NGSILD-Tenant"]}
    per_100 = len(requests) / 2
    print(f"broker requests per 100 uplinks: {per_100:.1f} ({len(requests)} for 200 uplinks)")
    assert len(requests) <= 20, f"{len(requests)} requests for 200 uplinks: micro-batching is not working"


@pytest.mark.parametrize("source", ["chirpstack-v4", "tts-v3"])
def test_redelivered_uplinks_count_once_and_an_unknown_device_one_dead_letter(
    source, tmp_path, mosquitto, broker, client_id, start_adapter, make_publisher
) -> None:
    sensors = fleet(per_tenant=2)
    site = Site(tmp_path / "site", sensors)
    tts = source == "tts-v3"
    # The Things Stack speaks MQTT 3.1.1 only; ChirpStack's mosquitto also MQTT 5.
    site.write_config(
        broker_url=broker.url, source=source, mqtt=_mqtt(mosquitto, client_id, protocol="3.1.1" if tts else "5")
    )
    adapter = start_adapter(site)
    adapter.wait_subscribed()

    def message(reading: Reading) -> tuple[str, dict[str, object]]:
        if tts:
            return tts_topic(reading.sensor), tts_up(reading)
        return chirpstack_topic(reading.sensor.dev_eui), chirpstack_up(reading)

    uplinks = readings(sensors, 12)
    stream = []
    for reading in uplinks:
        topic, document = message(reading)
        stream += [(topic, document), (topic, document)]  # QoS 1 redelivery: the very same message again
        # A retry of the network server: same uplink, new envelope (other gateway metadata, correlation id).
        if tts:
            again = tts_up(reading)
            again["correlation_ids"] = ["as:up:retry"]
            again["uplink_message"]["rx_metadata"][0]["rssi"] = -101
        else:
            again = chirpstack_up(reading)  # same deduplicationId
            again["rxInfo"][0]["rssi"] = -101
        stream.append((topic, again))
    stranger = replace(sensors[0], dev_eui="24E1241FFFFF0001", entity_id="not-registered")
    for reading in readings([stranger], 3):  # three uplinks of a device not in the registry
        stream.append(message(reading))

    publisher = make_publisher(
        mosquitto.port, client_id=client_id + "-ns", protocol=mqtt.MQTTv311 if tts else mqtt.MQTTv5
    )
    published = publisher.publish_all(stream)
    _wait_delivered(broker, uplinks)
    wait_until(lambda: site.dead_letters(), 10, "the dead letter of the unknown device")
    counters = adapter.stop_cleanly()

    assert published == 12 * 3 + 3
    assert counters["messages"] == published
    assert (counters["ignored"], counters["rejected"], counters["entities"]) == (0, 1, 24)
    pairs = observed_pairs(broker)
    assert set(pairs) == expected_pairs(uplinks)
    assert set(pairs.values()) == {1}, "a redelivered uplink reached the broker twice"
    assert sum(delivered_ids(broker).values()) == 24
    (letter,) = site.dead_letters()
    assert letter["source"] == source
    assert f"device {stranger.dev_eui.upper()} is not in the device registry" in letter["reason"]
    assert stranger.dev_eui.upper() not in str(upsert_bodies(broker))


def test_two_replicas_with_one_shared_subscription_split_the_stream(
    tmp_path, mosquitto, make_broker: Callable[[], BrokerDouble], client_id, start_adapter, make_publisher
) -> None:
    """Same ``shared_group``, own client id, state and outbox each; one broker double per replica
    tells which replica delivered what."""
    sensors = fleet(per_tenant=10)
    replicas: list[tuple[AdapterProcess, BrokerDouble]] = []
    for name in ("a", "b"):
        double = make_broker()
        site = Site(tmp_path / f"site-{name}", sensors)
        site.write_config(broker_url=double.url, mqtt=_mqtt(mosquitto, f"{client_id}-{name}", shared_group="lorawan"))
        replicas.append((start_adapter(site), double))
    for adapter, _ in replicas:
        adapter.wait_subscribed()

    uplinks = readings(sensors, 100)
    publisher = make_publisher(mosquitto.port, client_id=client_id + "-ns")
    publisher.publish_all((chirpstack_topic(r.sensor.dev_eui), chirpstack_up(r)) for r in uplinks)
    want = expected_pairs(uplinks)
    wait_until(
        lambda: want <= set(observed_pairs(replicas[0][1])) | set(observed_pairs(replicas[1][1])),
        30,
        "every uplink at one of the replicas",
    )
    counters = [adapter.stop_cleanly() for adapter, _ in replicas]

    got_a, got_b = (set(observed_pairs(double)) for _, double in replicas)
    assert got_a | got_b == want
    assert got_a & got_b == set(), "an uplink reached both replicas"
    assert got_a and got_b, "one replica got nothing"
    assert [c["messages"] for c in counters] == [len(got_a) // 2, len(got_b) // 2]
    assert sum(c["messages"] for c in counters) == 100
    print(f"shared subscription split: {counters[0]['messages']} / {counters[1]['messages']} uplinks")

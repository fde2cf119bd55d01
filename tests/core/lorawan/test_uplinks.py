"""Tests for adapters.core.lorawan.uplinks.

The fixtures are shaped field for field like the upstream documentation:
``TheThingsIndustries/lorawan-stack-docs:doc/content/integrations/data-formats/_index.md`` (TTS v3)
and ``chirpstack/chirpstack-docs:src/chirpstack/integrations/events.md`` (ChirpStack v4), plus the
``network_ids`` and Packet Broker ``rx_metadata`` entries seen in real TTS captures. Their payloads
are the vendor codec examples the decoders are tested with.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.core.lorawan.uplinks import (
    PARSERS,
    UnreadableLine,
    Uplink,
    UplinkError,
    dev_eui_from_topic,
    is_uplink_topic,
    parse_chirpstack_v4,
    parse_tts_v3,
    read_ndjson_uplinks,
    tenant_from_topic,
)

FIXTURES = Path(__file__).parent / "fixtures"
TTS = "tts-v3"
CHIRPSTACK = "chirpstack-v4"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def ndjson(name: str) -> list[Any]:
    return read_ndjson_uplinks((FIXTURES / name).read_bytes())


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Recorded uplinks, exact values


def test_tts_uplink_with_formatter() -> None:
    uplink = parse_tts_v3(load("tts-v3-uplink.json"))
    assert uplink == Uplink(
        network=TTS,
        dev_eui="24E124136B502217",
        device_id="em310-glas-alter-markt",
        application_id="dortmund-abfall",
        # 2024-11-05T07:42:18.123456789Z: nanoseconds cut to microseconds
        received_at=utc(2024, 11, 5, 7, 42, 18, 123456),
        f_port=85,
        f_cnt=1842,
        payload=bytes.fromhex("01755C03824408040001"),  # Milesight EM310-UDL codec example
        decoded={"battery": 92, "distance": 2116, "position": "tilt"},
        # second gateway heard it better (-84 dBm vs -97 dBm)
        rssi=-84.0,
        snr=9.5,
        gateways=2,
        dedup_key="24E124136B502217:1842:AZL7n0bQ8xYq3mZ1c2VkZQ==",
        location=(7.46528, 51.51386),
        tenant_hint="ttn",
    )
    assert uplink.received_at.tzinfo is UTC


def test_tts_uplink_without_formatter_and_first_frame_counter() -> None:
    uplink = parse_tts_v3(load("tts-v3-uplink-no-formatter.json"))
    assert uplink.dev_eui == "FCD6BD0000011A01"
    assert uplink.payload == b"\x01"  # Bosch TPS110 status "occupied", fPort 1
    assert uplink.f_port == 1
    assert uplink.f_cnt == 0  # "f_cnt" is left out of the message: it is 0
    assert uplink.decoded is None
    assert uplink.location is None
    assert (uplink.rssi, uplink.snr, uplink.gateways) == (-109.0, -3.75, 1)
    assert uplink.dedup_key == "FCD6BD0000011A01:0:AZL8cJ1yR2mT4vXq0aB3cw=="
    assert uplink.received_at == utc(2024, 11, 5, 7, 45, 2, 500913)


def test_chirpstack_uplink_with_codec() -> None:
    uplink = parse_chirpstack_v4(load("chirpstack-v4-uplink.json"))
    assert uplink == Uplink(
        network=CHIRPSTACK,
        dev_eui="A81758FFFE0465B2",  # sent as lowercase "a81758fffe0465b2"
        device_id="ers-co2-gsa-raum-209",
        application_id="8d3f0c2e-6a41-4b7e-9c55-1f0e2d3a4b5c",
        received_at=utc(2024, 11, 5, 8, 15, 3, 482917),  # "...03.482917342+00:00"
        f_port=1,
        f_cnt=5310,
        payload=bytes.fromhex("0100E202290400270506060308"),  # Elsys ERS CO2 codec example
        decoded={"temperature": 22.6, "humidity": 41.0, "light": 39.0, "motion": 6.0, "co2": 776.0},
        rssi=-88.0,
        snr=8.25,
        gateways=2,
        dedup_key="5f2c7e1a-3b9d-4c61-8e0f-2a7d9b4c1e63",
        location=None,  # the up event carries no device position
        tenant_hint="Stadt Dortmund",
    )


def test_chirpstack_uplink_without_codec_and_frame_counter() -> None:
    uplink = parse_chirpstack_v4(load("chirpstack-v4-uplink-no-codec.json"))
    assert uplink.dev_eui == "70B3D57BA00011C4"
    assert uplink.payload == bytes.fromhex("02012F000304D200010BB1")  # Decentlab DL-MBX codec example
    assert uplink.decoded is None
    assert uplink.f_cnt == 0
    assert uplink.f_port == 1
    assert (uplink.rssi, uplink.snr, uplink.gateways) == (-115.0, -8.75, 1)
    assert uplink.dedup_key == "9b41d7e2-0c6a-4f83-b5d9-3e7a1c2f8b04"


def test_parsers_table() -> None:
    assert dict(PARSERS) == {TTS: parse_tts_v3, CHIRPSTACK: parse_chirpstack_v4}


def test_decoded_is_a_read_only_copy_and_uplinks_hash() -> None:
    document = load("tts-v3-uplink.json")
    uplink = parse_tts_v3(document)
    document["uplink_message"]["decoded_payload"]["battery"] = 1
    assert uplink.decoded is not None
    assert uplink.decoded["battery"] == 92
    with pytest.raises(TypeError):
        uplink.decoded["battery"] = 3  # type: ignore[index]
    assert hash(uplink) == hash(parse_tts_v3(load("tts-v3-uplink.json")))


# --------------------------------------------------------------------------------------------
# NDJSON captures


def test_tts_capture() -> None:
    items = ndjson("tts-v3-uplinks.ndjson")
    assert len(items) == 7
    bad = items[5]
    assert isinstance(bad, UnreadableLine)
    assert bad.number == 6
    assert bad.message.startswith("line 6: not JSON: Unterminated string")
    assert bad.text.startswith('{"end_device_ids":{"device_id":"dl-mbx-ruhr-schwerte"')

    results: list[Uplink | str] = []
    for item in items[:5] + items[6:]:
        try:
            results.append(parse_tts_v3(item))
        except UplinkError as exc:
            results.append(str(exc))
    assert results[2] == "uplink_message: missing; this is a join_accept message, not an uplink"
    uplinks = [r for r in results if isinstance(r, Uplink)]
    assert [u.dev_eui for u in uplinks] == [
        "A81758FFFE0465B1",
        "24E124136B502217",
        "FCD6BD0000011A01",
        "24E124136B502217",
        "70B3D57BA00012E7",
    ]
    # the redelivered EM310 message has the same key as the first delivery, the others differ
    keys = [u.dedup_key for u in uplinks]
    assert keys[1] == keys[3] == "24E124136B502217:1843:AZL7n0bQ8xYq3mZ1c2VkZQ=="
    assert len(set(keys)) == 4
    assert uplinks[0].payload == bytes.fromhex("0100E202290400270506060308070E10")


def test_tts_packet_broker_gateways_count_by_forwarder() -> None:
    items = ndjson("tts-v3-uplinks.ndjson")
    water = parse_tts_v3(items[6])
    # own gateway -112 dBm, a Packet Broker gateway (gateway_id "packetbroker") -118 dBm
    assert (water.rssi, water.snr, water.gateways) == (-112.0, -6.5, 2)
    assert water.location == (7.56648, 51.44306)
    assert water.payload == bytes.fromhex("0201F400030C1C00010B9A")

    doc = copy.deepcopy(items[6])
    entry = doc["uplink_message"]["rx_metadata"][1]
    second = copy.deepcopy(entry)
    second["packet_broker"]["forwarder_gateway_id"] = "eui-0000000000000001"
    doc["uplink_message"]["rx_metadata"].append(second)
    assert parse_tts_v3(doc).gateways == 3  # both are "packetbroker", but two gateways
    doc["uplink_message"]["rx_metadata"].append(copy.deepcopy(entry))
    assert parse_tts_v3(doc).gateways == 3  # same forwarder again: a second antenna


def test_chirpstack_capture() -> None:
    items = ndjson("chirpstack-v4-uplinks.ndjson")
    assert len(items) == 7  # line 7 is blank and skipped
    bad = items[5]
    assert isinstance(bad, UnreadableLine)
    assert bad.number == 6
    with pytest.raises(UplinkError, match=r"^txInfo: missing; this is a status event, not an up event$"):
        parse_chirpstack_v4(items[4])
    uplinks = [parse_chirpstack_v4(item) for item in items[:4] + items[6:]]
    assert [u.dev_eui for u in uplinks] == [
        "FCD6BD0000011A02",
        "FCD6BD0000011A03",
        "A840414A91825EB3",
        "FCD6BD0000011A02",
        "A81758FFFE0465B2",
    ]
    assert uplinks[0].dedup_key == uplinks[3].dedup_key
    assert len({u.dedup_key for u in uplinks}) == 4
    heartbeat = uplinks[1]
    assert (heartbeat.f_port, heartbeat.payload) == (2, bytes.fromhex("01FF"))
    # both gateways at -106 dBm: the one with the better SNR wins; the other's SNR 0 was omitted
    assert (heartbeat.rssi, heartbeat.snr, heartbeat.gateways) == (-106.0, 1.75, 2)
    soil = uplinks[2]
    assert soil.payload == bytes.fromhex("CE2900F107A5099B6E2890")
    assert soil.tenant_hint == "Stadt Schwerte"


def test_ndjson_reader_edge_cases() -> None:
    payload = b'\xef\xbb\xbf{"a": 1}\r\n\r\n  \n[1, 2]\n{"b": NaN}\n\xff\xfe\n"text"\n{"c":\n'
    items = read_ndjson_uplinks(payload)
    assert items[0] == {"a": 1}  # byte order mark and CRLF tolerated
    assert items[1] == [1, 2]  # any JSON value is returned; the parser rejects non-objects
    assert isinstance(items[2], UnreadableLine)
    assert items[2].message == "line 5: not JSON: NaN is not valid JSON"
    assert isinstance(items[3], UnreadableLine)
    assert items[3].message == "line 6: not JSON: invalid UTF-8 at byte 1"
    assert items[3].text == "\\xff\\xfe"
    assert items[4] == "text"
    assert isinstance(items[5], UnreadableLine)
    assert items[5].number == 8
    assert len(items) == 6
    assert read_ndjson_uplinks(b"") == []
    deep = read_ndjson_uplinks(b"[" * 100_000)
    assert isinstance(deep[0], UnreadableLine)


# --------------------------------------------------------------------------------------------
# Omitted fields: both servers leave out Protobuf default values


def tts() -> dict[str, Any]:
    return load("tts-v3-uplink.json")


def chirpstack() -> dict[str, Any]:
    return load("chirpstack-v4-uplink.json")


def test_missing_port_with_payload_is_port_0() -> None:
    doc = tts()
    del doc["uplink_message"]["f_port"]
    assert parse_tts_v3(doc).f_port == 0
    doc = chirpstack()
    del doc["fPort"]
    assert parse_chirpstack_v4(doc).f_port == 0


def test_missing_port_without_payload_is_no_port() -> None:
    doc = tts()
    for key in ("f_port", "frm_payload", "decoded_payload"):
        del doc["uplink_message"][key]
    uplink = parse_tts_v3(doc)
    assert (uplink.f_port, uplink.payload, uplink.decoded) == (None, b"", None)
    doc = chirpstack()
    for key in ("fPort", "data", "object"):
        del doc[key]
    assert parse_chirpstack_v4(doc).f_port is None


def test_null_is_treated_as_missing() -> None:
    doc = tts()
    doc["uplink_message"]["f_cnt"] = None
    doc["uplink_message"]["decoded_payload"] = None
    uplink = parse_tts_v3(doc)
    assert (uplink.f_cnt, uplink.decoded) == (0, None)
    assert uplink.dedup_key == "24E124136B502217:0:AZL7n0bQ8xYq3mZ1c2VkZQ=="


def test_missing_session_key_id_leaves_the_key_part_empty() -> None:
    doc = tts()
    del doc["uplink_message"]["session_key_id"]
    assert parse_tts_v3(doc).dedup_key == "24E124136B502217:1842:"


def test_missing_snr_on_best_gateway_is_0_and_missing_rssi_is_unheard() -> None:
    doc = tts()
    gateways = doc["uplink_message"]["rx_metadata"]
    del gateways[1]["snr"]
    assert (parse_tts_v3(doc).rssi, parse_tts_v3(doc).snr) == (-84.0, 0.0)
    del gateways[1]["rssi"]
    uplink = parse_tts_v3(doc)
    assert (uplink.rssi, uplink.snr, uplink.gateways) == (-84.0, 0.0, 2)  # channel_rssi stands in
    del gateways[1]["channel_rssi"]
    uplink = parse_tts_v3(doc)
    assert (uplink.rssi, uplink.snr, uplink.gateways) == (-97.0, 7.25, 2)


def test_no_gateways() -> None:
    doc = tts()
    del doc["uplink_message"]["rx_metadata"]  # simulated uplinks have none
    uplink = parse_tts_v3(doc)
    assert (uplink.rssi, uplink.snr, uplink.gateways) == (None, None, 0)
    doc = chirpstack()
    doc["rxInfo"] = []
    assert parse_chirpstack_v4(doc).gateways == 0


def test_antennas_of_one_gateway_count_once() -> None:
    doc = tts()
    gateways = doc["uplink_message"]["rx_metadata"]
    gateways.append({**gateways[0], "antenna_index": 1, "rssi": -80, "snr": 3})
    uplink = parse_tts_v3(doc)
    assert (uplink.rssi, uplink.snr, uplink.gateways) == (-80.0, 3.0, 2)


def test_location_coordinate_0_is_omitted() -> None:
    doc = tts()
    del doc["uplink_message"]["locations"]["user"]["longitude"]
    assert parse_tts_v3(doc).location == (0.0, 51.51386)
    doc["uplink_message"]["locations"]["user"] = {"altitude": 10, "source": "SOURCE_REGISTRY"}
    assert parse_tts_v3(doc).location is None
    doc["uplink_message"]["locations"] = {"frm-payload": {"latitude": 1.0, "longitude": 2.0}}
    assert parse_tts_v3(doc).location is None


def test_tenant_hint_absent() -> None:
    doc = tts()
    del doc["uplink_message"]["network_ids"]
    assert parse_tts_v3(doc).tenant_hint is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-11-05T07:42:18.999999999Z", utc(2024, 11, 5, 7, 42, 18, 999999)),  # cut, not rounded up
        ("2024-11-05T07:42:18Z", utc(2024, 11, 5, 7, 42, 18)),
        ("2024-11-05t07:42:18.5z", utc(2024, 11, 5, 7, 42, 18, 500000)),
        ("2024-11-05T09:42:18.1+02:00", utc(2024, 11, 5, 7, 42, 18, 100000)),
        ("2024-11-04T23:42:18-08:00", utc(2024, 11, 5, 7, 42, 18)),
    ],
)
def test_time_formats(text: str, expected: datetime) -> None:
    doc = chirpstack()
    doc["time"] = text
    received = parse_chirpstack_v4(doc).received_at
    assert received == expected
    assert received.utcoffset() is not None and received.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# Rejections: each names the field and the rule

Mutation = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Mutation:
    *parents, last = path.split(".")

    def apply(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _delete(path: str) -> Mutation:
    *parents, last = path.split(".")

    def apply(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        del target[last]

    return apply


TTS_REJECTIONS: list[tuple[Mutation, str]] = [
    (_delete("end_device_ids"), r"^end_device_ids: missing$"),
    (_set("end_device_ids", "24E124136B502217"), r"^end_device_ids: must be an object, got string"),
    (_delete("end_device_ids.dev_eui"), r"^end_device_ids\.dev_eui: missing \(device registered without a DevEUI\?\)$"),
    (
        _set("end_device_ids.dev_eui", "24E124136B5022"),
        r"^end_device_ids\.dev_eui: string '24E124136B5022' must be 16 hex",
    ),
    (_set("end_device_ids.dev_eui", "24-E1-24-13-6B-50"), r"must be 16 hex digits"),
    (_set("end_device_ids.dev_eui", 0x24E124136B502217), r"^end_device_ids\.dev_eui: must be a string, got integer"),
    (_set("end_device_ids.device_id", 7), r"^end_device_ids\.device_id: must be a string, got integer 7$"),
    (_delete("uplink_message"), r"^uplink_message: missing$"),
    (_set("uplink_message", []), r"^uplink_message: must be an object, got an array$"),
    (_delete("received_at"), r"^received_at: missing$"),
    (_set("received_at", "2024-11-05T07:42:18.123456789"), r"^received_at: .* has no time zone \(Z or \+hh:mm\)$"),
    (_set("received_at", "2024-11-05 07:42:18Z"), r"^received_at: .* is not an RFC 3339 date-time$"),
    (_set("received_at", "2024-02-30T07:42:18Z"), r"^received_at: .* is not a valid date-time \(day is out of range"),
    (_set("received_at", "2016-12-31T23:59:60Z"), r"is not a valid date-time \(second must be in 0\.\.59\)"),
    (_set("received_at", "0001-01-01T00:30:00+01:00"), r"^received_at: .* is not a valid date-time"),
    (_set("received_at", 1730792538), r"^received_at: must be a string, got integer"),
    (_set("uplink_message.frm_payload", "AXVcA4JECAQAAQ"), r"^uplink_message\.frm_payload: .* is not valid base64"),
    (_set("uplink_message.frm_payload", "AXVc A4JE"), r"is not valid base64"),
    (_set("uplink_message.frm_payload", "ÄÖÜ="), r"is not valid base64"),
    (_set("uplink_message.f_port", 256), r"^uplink_message\.f_port: integer 256 is outside 0\.\.255$"),
    (_set("uplink_message.f_port", -1), r"^uplink_message\.f_port: integer -1 is outside 0\.\.255$"),
    (_set("uplink_message.f_port", 224), r"^uplink_message\.f_port: 224 is not an application port \(the LoRaWAN test"),
    (_set("uplink_message.f_port", 250), r"^uplink_message\.f_port: 250 is not an application port \(reserved"),
    (_set("uplink_message.f_port", "85"), r"^uplink_message\.f_port: must be an integer, got string '85'$"),
    (_set("uplink_message.f_port", 85.0), r"^uplink_message\.f_port: must be an integer, got number 85\.0$"),
    (_set("uplink_message.f_port", True), r"^uplink_message\.f_port: must be an integer, got true$"),
    (_set("uplink_message.f_cnt", -1), r"^uplink_message\.f_cnt: integer -1 is outside 0\.\.4294967295$"),
    (_set("uplink_message.f_cnt", 2**32), r"^uplink_message\.f_cnt: integer 4294967296 is outside"),
    (_set("uplink_message.f_cnt", "1842"), r"^uplink_message\.f_cnt: must be an integer, got string"),
    (_set("uplink_message.decoded_payload", [92, 2116]), r"^uplink_message\.decoded_payload: must be an object"),
    (_set("uplink_message.rx_metadata", {}), r"^uplink_message\.rx_metadata: must be an array, got an object$"),
    (_set("uplink_message.rx_metadata.1", "gtw"), r"^uplink_message\.rx_metadata\[1\]: must be an object"),
    (_set("uplink_message.rx_metadata.0.rssi", "-97"), r"^uplink_message\.rx_metadata\[0\]\.rssi: must be a number"),
    (
        _set("uplink_message.rx_metadata.0.rssi", 10**400),
        r"rx_metadata\[0\]\.rssi: a very large integer is not a finite",
    ),
    (
        _set("uplink_message.rx_metadata.0.snr", float("nan")),
        r"rx_metadata\[0\]\.snr: number nan is not a finite number",
    ),
    (_set("uplink_message.rx_metadata.0.gateway_ids", "gtw"), r"rx_metadata\[0\]\.gateway_ids: must be an object"),
    (_set("uplink_message.locations.user.latitude", 151.5), r"locations\.user\.latitude: 151\.5 is outside -90\.\.90$"),
    (_set("uplink_message.locations.user.longitude", -181), r"locations\.user\.longitude: -181 is outside"),
    (_set("uplink_message.locations.user.latitude", "51.5"), r"locations\.user\.latitude: must be a number"),
    (_set("uplink_message.network_ids.tenant_id", 1), r"^uplink_message\.network_ids\.tenant_id: must be a string"),
]


@pytest.mark.parametrize(("mutate", "reason"), TTS_REJECTIONS)
def test_tts_rejections(mutate: Mutation, reason: str) -> None:
    doc = tts()
    mutate(doc)
    with pytest.raises(UplinkError, match=reason):
        parse_tts_v3(doc)


@pytest.mark.parametrize(
    ("key", "value"),
    [("join_accept", {"session_key_id": "AXBSH1Pk6Z0G166RlH16CQ=="}), ("downlink_ack", {"f_port": 15})],
)
def test_tts_other_messages_are_not_uplinks(key: str, value: object) -> None:
    doc = tts()
    del doc["uplink_message"]
    doc[key] = value
    with pytest.raises(UplinkError, match=rf"^uplink_message: missing; this is a {key} message, not an uplink$"):
        parse_tts_v3(doc)


CHIRPSTACK_REJECTIONS: list[tuple[Mutation, str]] = [
    (_delete("deviceInfo"), r"^deviceInfo: missing$"),
    (_delete("deviceInfo.devEui"), r"^deviceInfo\.devEui: missing$"),
    (_set("deviceInfo.devEui", "a81758fffe0465bz"), r"^deviceInfo\.devEui: string 'a81758fffe0465bz' must be 16 hex"),
    (_set("deviceInfo.devEui", ""), r"^deviceInfo\.devEui: must not be empty$"),
    (_delete("txInfo"), r"^txInfo: missing; every up event has one \(join, status, ack and log events do not\)$"),
    (_set("txInfo", "867500000"), r"^txInfo: must be an object"),
    (_delete("deduplicationId"), r"^deduplicationId: missing$"),
    (_set("deduplicationId", ""), r"^deduplicationId: must not be empty$"),
    (_delete("time"), r"^time: missing$"),
    (_set("time", "2022-07-18T09:34:15.775023242"), r"^time: .* has no time zone"),
    (_set("time", "yesterday"), r"^time: string 'yesterday' is not an RFC 3339 date-time$"),
    (_set("time", "2024-11-05T08:15:03+24:00"), r"^time: .* is not a valid date-time"),
    (_set("data", "qg="), r"^data: string 'qg=' is not valid base64"),
    (_set("data", 170), r"^data: must be a string, got integer 170$"),
    (_set("fPort", 224), r"^fPort: 224 is not an application port"),
    (_set("fPort", "1"), r"^fPort: must be an integer, got string '1'$"),
    (_set("fCnt", -5), r"^fCnt: integer -5 is outside 0\.\.4294967295$"),
    (_set("fCnt", 5310.5), r"^fCnt: must be an integer, got number 5310\.5$"),
    (_set("object", [22.6]), r"^object: must be an object, got an array$"),
    (_set("object", "temperature=22.6"), r"^object: must be an object, got string"),
    (_set("rxInfo", "0016c001f1500a7e"), r"^rxInfo: must be an array"),
    (_set("rxInfo.0.rssi", "-103"), r"^rxInfo\[0\]\.rssi: must be a number, got string '-103'$"),
    (_set("rxInfo.1.snr", False), r"^rxInfo\[1\]\.snr: must be a number, got false$"),
    (_set("rxInfo.0.gatewayId", 1), r"^rxInfo\[0\]\.gatewayId: must be a string"),
    (_set("deviceInfo.tenantName", ["x"]), r"^deviceInfo\.tenantName: must be a string, got an array$"),
]


@pytest.mark.parametrize(("mutate", "reason"), CHIRPSTACK_REJECTIONS)
def test_chirpstack_rejections(mutate: Mutation, reason: str) -> None:
    doc = chirpstack()
    mutate(doc)
    with pytest.raises(UplinkError, match=reason):
        parse_chirpstack_v4(doc)


@pytest.mark.parametrize("parser", [parse_tts_v3, parse_chirpstack_v4])
@pytest.mark.parametrize("document", [[], "up", None, 3, b"{}"])
def test_non_objects_are_rejected(parser: Callable[[Any], Uplink], document: object) -> None:
    with pytest.raises(UplinkError, match=r"^message: must be a JSON object, got "):
        parser(document)


def test_each_network_rejects_the_other_format() -> None:
    with pytest.raises(UplinkError, match=r"^end_device_ids: missing$"):
        parse_tts_v3(chirpstack())
    with pytest.raises(UplinkError, match=r"^deviceInfo: missing$"):
        parse_chirpstack_v4(tts())


# --------------------------------------------------------------------------------------------
# MQTT topics


@pytest.mark.parametrize(
    ("network", "topic", "uplink", "eui", "tenant"),
    [
        (TTS, "v3/dortmund-abfall@ttn/devices/em310-glas-alter-markt/up", True, None, "ttn"),
        (TTS, "v3/dortmund-abfall/devices/em310-glas-alter-markt/up", True, None, None),
        (TTS, "v3/dortmund-abfall@ttn/devices/em310-glas-alter-markt/join", False, None, "ttn"),
        (TTS, "v3/dortmund-abfall@ttn/devices/em310-glas-alter-markt/down/ack", False, None, "ttn"),
        (TTS, "v3/dortmund-abfall@ttn/devices/em310-glas-alter-markt/up/normalized", False, None, "ttn"),
        (TTS, "v3/dortmund-abfall@ttn/devices//up", False, None, None),
        (TTS, "v2/dortmund-abfall/devices/em310/up", False, None, None),
        (TTS, "application/8d3f/device/a81758fffe0465b2/event/up", False, None, None),
        (
            CHIRPSTACK,
            "application/8d3f0c2e-6a41-4b7e-9c55-1f0e2d3a4b5c/device/a81758fffe0465b2/event/up",
            True,
            "A81758FFFE0465B2",
            None,
        ),
        (CHIRPSTACK, "application/8d3f0c2e/device/A81758FFFE0465B2/event/up", True, "A81758FFFE0465B2", None),
        (CHIRPSTACK, "application/8d3f0c2e/device/a81758fffe0465b2/event/join", False, "A81758FFFE0465B2", None),
        (CHIRPSTACK, "application/8d3f0c2e/device/a81758fffe0465b2/event/status", False, "A81758FFFE0465B2", None),
        (CHIRPSTACK, "application/8d3f0c2e/device/a81758fffe0465b2/command/down", False, None, None),
        (CHIRPSTACK, "application/8d3f0c2e/device/a81758fffe0465/event/up", False, None, None),
        (CHIRPSTACK, "application/8d3f0c2e/device/a81758fffe0465b2/event/up/extra", False, None, None),
        (CHIRPSTACK, "v3/app@ttn/devices/dev/up", False, None, None),
    ],
)
def test_topics(network: str, topic: str, uplink: bool, eui: str | None, tenant: str | None) -> None:
    assert is_uplink_topic(network, topic) is uplink
    assert dev_eui_from_topic(network, topic) == eui
    assert tenant_from_topic(network, topic) == tenant


def test_topic_helpers_reject_unknown_networks() -> None:
    with pytest.raises(ValueError, match=r"unknown network 'ttn-v2' \(known: tts-v3, chirpstack-v4\)"):
        is_uplink_topic("ttn-v2", "v3/a/devices/b/up")


# --------------------------------------------------------------------------------------------
# Fuzzing: UplinkError is the only exception, whatever arrives

_HEX_EUI = re.compile(r"[0-9A-F]{16}")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "AQ==", "2024-11-05T07:42:18Z", "24E124136B502217", "a81758fffe0465b2"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)

_KEYS = sorted(
    {
        *load("tts-v3-uplink.json"),
        *load("tts-v3-uplink.json")["uplink_message"],
        *load("chirpstack-v4-uplink.json"),
        "join_accept",
        "margin",
    }
)
# Objects that use the real field names, so the parsers get past the first check more often.
keyed_objects = st.dictionaries(st.sampled_from(_KEYS), json_values, max_size=6)


def _check(uplink: Uplink, network: str) -> None:
    """What every accepted uplink guarantees."""
    assert uplink.network == network
    assert _HEX_EUI.fullmatch(uplink.dev_eui)
    assert uplink.received_at.utcoffset() is not None
    assert uplink.received_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert uplink.f_port is None or 0 <= uplink.f_port <= 223
    assert uplink.f_port is not None or uplink.payload == b""
    assert 0 <= uplink.f_cnt <= 2**32 - 1
    assert isinstance(uplink.payload, bytes)
    assert uplink.gateways >= 0
    assert (uplink.rssi is None) == (uplink.snr is None)
    assert isinstance(uplink.dedup_key, str) and uplink.dedup_key
    if uplink.location is not None:
        lon, lat = uplink.location
        assert -180 <= lon <= 180 and -90 <= lat <= 90


def _parse_all(document: Any) -> None:
    for network, parser in PARSERS.items():
        try:
            uplink = parser(document)
        except UplinkError as exc:
            reason = str(exc)
        else:
            _check(uplink, network)
            continue
        assert re.match(r"^[A-Za-z_.\[\]0-9]+: \S", reason), reason  # "field.path: rule"


FUZZ = settings(
    max_examples=2000,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(json_values)
def test_fuzz_arbitrary_json(document: Any) -> None:
    _parse_all(document)


@settings(FUZZ, max_examples=500)
@given(keyed_objects)
def test_fuzz_objects_with_real_field_names(document: Any) -> None:
    _parse_all(document)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


REAL = [
    load("tts-v3-uplink.json"),
    load("tts-v3-uplink-no-formatter.json"),
    load("chirpstack-v4-uplink.json"),
    load("chirpstack-v4-uplink-no-codec.json"),
    *(item for item in ndjson("tts-v3-uplinks.ndjson") if isinstance(item, dict)),
    *(item for item in ndjson("chirpstack-v4-uplinks.ndjson") if isinstance(item, dict)),
]


def _type_confused(value: Any) -> list[Any]:
    """The same value in the wrong JSON type: "85" for 85, 85.0, [85], {"v": 85}, true, null."""
    return [json.dumps(value), str(value), [value], {"value": value}, True, None, 0, -1, 2**70, 1.5, ""]


@st.composite
def mutated_real(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["delete", "replace", "confuse"]))
        if not path:
            if action != "delete":
                document = draw(json_values)
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        current = parent[path[-1]]
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(json_values)
        else:
            parent[path[-1]] = draw(st.sampled_from(_type_confused(current)))
        if not isinstance(document, dict | list):
            break
    return document


@FUZZ
@given(mutated_real())
def test_fuzz_mutated_real_uplinks(document: Any) -> None:
    _parse_all(document)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_ndjson_reader(payload: bytes) -> None:
    for item in read_ndjson_uplinks(payload):
        if isinstance(item, UnreadableLine):
            assert item.message.startswith(f"line {item.number}: not JSON: ")
        else:
            _parse_all(item)


def test_fixture_payloads_are_plain_base64() -> None:
    """The fixtures' frm_payload/data are standard base64 with padding, as the servers send."""
    for document in REAL:
        encoded = document.get("data") or document.get("uplink_message", {}).get("frm_payload")
        if encoded is not None:
            assert base64.b64encode(base64.b64decode(encoded)).decode() == encoded

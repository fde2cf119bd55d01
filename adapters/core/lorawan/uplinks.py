"""LoRaWAN network-server uplink messages -> one typed :class:`Uplink`, as pure functions.

The adapters take uplinks from two network servers whose JSON differs in every name and in
several conventions:

=====================  ==========================================  =====================================
                       The Things Stack v3 (``tts-v3``)             ChirpStack v4 (``chirpstack-v4``)
=====================  ==========================================  =====================================
MQTT topic             ``v3/{app}[@{tenant}]/devices/{device}/up``  ``application/{app uuid}/device/
                                                                    {devEui}/event/up``
DevEUI                 ``end_device_ids.dev_eui``, UPPERCASE        ``deviceInfo.devEui``, lowercase
time                   ``received_at`` (Application Server)         ``time``
payload / decoded      ``uplink_message.frm_payload`` /             ``data`` / ``object``
                       ``decoded_payload``
gateways               ``uplink_message.rx_metadata[]``             ``rxInfo[]``
re-delivery key        none: built from DevEUI, FCnt, session key   ``deduplicationId``
=====================  ==========================================  =====================================

Sources: ``TheThingsIndustries/lorawan-stack-docs:doc/content/integrations/data-formats/_index.md``
and ``.../integrations/mqtt/_index.md``; ``chirpstack/chirpstack-docs:src/chirpstack/integrations/
events.md`` and ``.../integrations/mqtt.md``.

Both servers write JSON from Protobuf and **leave out fields that hold the default value**
(TTS: "Empty fields are omitted from payloads"; the ChirpStack ``up`` example has no ``fCnt``).
So a missing ``f_cnt``/``fCnt`` is frame counter 0, a missing ``f_port``/``fPort`` with a payload
is port 0, and a missing ``snr`` on a gateway that reported an RSSI is 0 dB. A JSON ``null`` is
treated like a missing field.

The parsers raise only :class:`UplinkError`, whatever they are given; its message names the
field and the rule broken, so the caller can dead-letter the message with that reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from adapters.core.timecheck import time_problem

__all__ = [
    "NETWORKS",
    "PARSERS",
    "UnreadableLine",
    "Uplink",
    "UplinkError",
    "dev_eui_from_topic",
    "is_uplink_topic",
    "parse_chirpstack_v4",
    "parse_tts_v3",
    "read_ndjson_uplinks",
    "tenant_from_topic",
]

TTS_V3 = "tts-v3"
CHIRPSTACK_V4 = "chirpstack-v4"
NETWORKS = (TTS_V3, CHIRPSTACK_V4)


class UplinkError(ValueError):
    """An uplink message that cannot be used; the message names the field and the rule broken."""


@dataclass(frozen=True)
class Uplink:
    """One uplink, the same whichever network server delivered it.

    ``f_port`` is None only when the frame had no FPort at all (no payload, no port field);
    ``f_cnt`` is always set because every data frame has a counter (missing means 0).
    ``location`` is ``(lon, lat)``; ``tenant_hint`` is the network server's tenant, for logs
    only: which NGSI-LD tenant a device belongs to is decided by the device registry.
    """

    network: str
    dev_eui: str
    device_id: str | None
    application_id: str | None
    received_at: datetime
    f_port: int | None
    f_cnt: int
    payload: bytes
    decoded: Mapping[str, Any] | None = field(hash=False)
    rssi: float | None
    snr: float | None
    gateways: int
    dedup_key: str
    location: tuple[float, float] | None
    tenant_hint: str | None


@dataclass(frozen=True)
class UnreadableLine:
    """A line of an NDJSON capture that is not a JSON value; kept so it can be dead-lettered."""

    number: int
    text: str
    reason: str

    @property
    def message(self) -> str:
        return f"line {self.number}: not JSON: {self.reason}"


# --------------------------------------------------------------------------------------------
# Field readers: each names the JSON path it reads in its error message.

_HEX16 = re.compile(r"[0-9A-Fa-f]{16}")
# RFC 3339 date-time. Both servers send up to 9 fraction digits (nanoseconds); datetime holds 6.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))", re.ASCII
)
_RFC3339_NO_ZONE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?", re.ASCII)
_UINT32_MAX = 2**32 - 1
# LoRaWAN 1.0.x/1.1: FPort 1..223 carry application data, 224 is the MAC-layer test protocol
# port and 225..255 are reserved for future standardised extensions.
_LAST_APP_PORT = 223


def _describe(value: object) -> str:
    """Short description for error messages; never builds a huge repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"integer {value}" if abs(value) < 10**30 else "a very large integer"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _get(document: Mapping[str, Any], key: str) -> Any:
    """A field's value; None when absent or JSON null (both mean "not sent")."""
    return document.get(key)


def _object(value: Any, path: str, *, required: bool = False) -> Mapping[str, Any] | None:
    if value is None:
        if required:
            raise UplinkError(f"{path}: missing")
        return None
    if not isinstance(value, Mapping):
        raise UplinkError(f"{path}: must be an object, got {_describe(value)}")
    return value


def _array(value: Any, path: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise UplinkError(f"{path}: must be an array, got {_describe(value)}")
    return value


def _string(value: Any, path: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise UplinkError(f"{path}: missing")
        return None
    if not isinstance(value, str):
        raise UplinkError(f"{path}: must be a string, got {_describe(value)}")
    if required and not value:
        raise UplinkError(f"{path}: must not be empty")
    return value


def _integer(value: Any, path: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    # bool is an int in Python but true/false in JSON; "85" and 85.0 are not what either server sends.
    if isinstance(value, bool) or not isinstance(value, int):
        raise UplinkError(f"{path}: must be an integer, got {_describe(value)}")
    if not low <= value <= high:
        raise UplinkError(f"{path}: {_describe(value)} is outside {low}..{high}")
    return value


def _number(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UplinkError(f"{path}: must be a number, got {_describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise UplinkError(f"{path}: {_describe(value)} is not a finite number") from None
    if not math.isfinite(number):
        raise UplinkError(f"{path}: {_describe(value)} is not a finite number")
    return number


def _dev_eui(value: Any, path: str) -> str:
    text = _string(value, path, required=True)
    assert text is not None
    if not _HEX16.fullmatch(text):
        raise UplinkError(f"{path}: {_describe(text)} must be 16 hex digits")
    return text.upper()


def _timestamp(value: Any, path: str) -> datetime:
    """RFC 3339 with a zone, to UTC; digits beyond microseconds are cut, not rounded, so the
    result never moves past the next whole microsecond (or second, or day)."""
    text = _string(value, path, required=True)
    assert text is not None
    match = _RFC3339.fullmatch(text)
    if match is None:
        if _RFC3339_NO_ZONE.fullmatch(text):
            raise UplinkError(f"{path}: {_describe(text)} has no time zone (Z or +hh:mm)")
        raise UplinkError(f"{path}: {_describe(text)} is not an RFC 3339 date-time")
    try:
        # Fast path (a tenth of the field-by-field build): for what the pattern admits, fromisoformat
        # cuts extra fraction digits the same way; it refuses lowercase t/z, and values out of range,
        # which the field-by-field build below then reads or refuses with its own message.
        # Hour 24 is left to that build too, in case a later Python reads it as the next midnight.
        if match[4] == "24":
            raise ValueError("hour 24")
        moment = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        moment = _timestamp_by_fields(match, path, text)
    if problem := time_problem(moment, None):  # a network server's clock gone wrong
        raise UplinkError(f"{path}: {problem}")
    return moment


def _timestamp_by_fields(match: re.Match[str], path: str, text: str) -> datetime:
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        offset = timedelta(0)
        if not zulu:
            offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros, timezone(offset))
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise UplinkError(f"{path}: {_describe(text)} is not a valid date-time ({exc})") from None


def _base64(value: Any, path: str) -> bytes:
    text = _string(value, path)
    if text is None:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UplinkError(f"{path}: {_describe(text)} is not valid base64 ({exc})") from None


def _f_port(value: Any, path: str, payload: bytes) -> int | None:
    port = _integer(value, path, 0, 255)
    if port is None:
        # Omitted because it is 0 (Protobuf default). A frame with a payload always has an FPort,
        # so that is port 0; without a payload the frame may simply have had no FPort.
        return 0 if payload else None
    if port > _LAST_APP_PORT:
        what = "the LoRaWAN test port" if port == _LAST_APP_PORT + 1 else "reserved by LoRaWAN"
        raise UplinkError(f"{path}: {port} is not an application port ({what}; application ports are 1..223)")
    return port


def _f_cnt(value: Any, path: str) -> int:
    count = _integer(value, path, 0, _UINT32_MAX)
    return 0 if count is None else count  # omitted because it is 0 (Protobuf default)


def _decoded(value: Any, path: str) -> Mapping[str, Any] | None:
    decoded = _object(value, path)
    return None if decoded is None else MappingProxyType(dict(decoded))


@dataclass(frozen=True)
class _Reception:
    gateway: object
    rssi: float | None
    snr: float | None


def _best_reception(receptions: Sequence[_Reception]) -> tuple[float | None, float | None, int]:
    """(rssi, snr) of the gateway that heard it best, and how many gateways heard it.

    Best = highest RSSI, then highest SNR; gateways without an RSSI still count as hearing it.
    """
    gateways = len({reception.gateway for reception in receptions})
    heard = [r for r in receptions if r.rssi is not None]
    if not heard:
        return None, None, gateways
    best = max(heard, key=lambda r: (r.rssi, -math.inf if r.snr is None else r.snr))
    # A gateway that measured the RSSI measured the SNR too; a missing one is the omitted 0.
    return best.rssi, 0.0 if best.snr is None else best.snr, gateways


# --------------------------------------------------------------------------------------------
# The Things Stack v3

# The other ApplicationUp messages that share the topic tree and the webhook (data-formats page;
# uplink_normalized, location_solved and service_data are further ApplicationUp variants).
_TTS_OTHER_MESSAGES = (
    "join_accept",
    "downlink_ack",
    "downlink_nack",
    "downlink_sent",
    "downlink_failed",
    "downlink_queued",
    "downlink_queue_invalidated",
    "location_solved",
    "service_data",
    "uplink_normalized",
)


def _tts_reception(index: int, entry: Any) -> _Reception:
    path = f"uplink_message.rx_metadata[{index}]"
    metadata = _object(entry, path, required=True)
    assert metadata is not None
    ids = _object(_get(metadata, "gateway_ids"), f"{path}.gateway_ids") or {}
    gateway: object = _string(_get(ids, "gateway_id"), f"{path}.gateway_ids.gateway_id") or _string(
        _get(ids, "eui"), f"{path}.gateway_ids.eui"
    )
    # Every gateway reached through Packet Broker is "packetbroker"; the real one is named in
    # packet_broker.forwarder_gateway_id/_eui, when the forwarding network discloses it.
    broker = _object(_get(metadata, "packet_broker"), f"{path}.packet_broker")
    if broker is not None:
        gateway = _string(
            _get(broker, "forwarder_gateway_id"), f"{path}.packet_broker.forwarder_gateway_id"
        ) or _string(_get(broker, "forwarder_gateway_eui"), f"{path}.packet_broker.forwarder_gateway_eui")
    if gateway is None:
        gateway = ("unnamed", index)
    rssi = _number(_get(metadata, "rssi"), f"{path}.rssi")
    if rssi is None:
        rssi = _number(_get(metadata, "channel_rssi"), f"{path}.channel_rssi")
    return _Reception(gateway, rssi, _number(_get(metadata, "snr"), f"{path}.snr"))


def _tts_location(message: Mapping[str, Any]) -> tuple[float, float] | None:
    """The user-set position (device registry / console). Other keys of ``locations`` are
    solver results (e.g. ``frm-payload``), not where the device was installed."""
    locations = _object(_get(message, "locations"), "uplink_message.locations")
    if locations is None:
        return None
    user = _object(_get(locations, "user"), "uplink_message.locations.user")
    if user is None:
        return None
    lat = _number(_get(user, "latitude"), "uplink_message.locations.user.latitude")
    lon = _number(_get(user, "longitude"), "uplink_message.locations.user.longitude")
    if lat is None and lon is None:
        return None
    # One coordinate missing is the omitted 0 (equator / Greenwich meridian).
    lat, lon = lat or 0.0, lon or 0.0
    if not -90.0 <= lat <= 90.0:
        raise UplinkError(f"uplink_message.locations.user.latitude: {lat:g} is outside -90..90")
    if not -180.0 <= lon <= 180.0:
        raise UplinkError(f"uplink_message.locations.user.longitude: {lon:g} is outside -180..180")
    return lon, lat


def parse_tts_v3(document: Mapping[str, Any]) -> Uplink:
    """An ApplicationUp with ``uplink_message``, as TTS sends it over MQTT and webhooks."""
    if not isinstance(document, Mapping):
        raise UplinkError(f"message: must be a JSON object, got {_describe(document)}")
    ids = _object(_get(document, "end_device_ids"), "end_device_ids", required=True)
    assert ids is not None
    if _get(ids, "dev_eui") is None:
        # An ABP device can be registered without a DevEUI; it cannot be matched to the registry.
        raise UplinkError("end_device_ids.dev_eui: missing (device registered without a DevEUI?)")
    dev_eui = _dev_eui(_get(ids, "dev_eui"), "end_device_ids.dev_eui")
    device_id = _string(_get(ids, "device_id"), "end_device_ids.device_id")
    app_ids = _object(_get(ids, "application_ids"), "end_device_ids.application_ids") or {}
    application_id = _string(_get(app_ids, "application_id"), "end_device_ids.application_ids.application_id")

    message = _object(_get(document, "uplink_message"), "uplink_message")
    if message is None:
        other = [key for key in _TTS_OTHER_MESSAGES if _get(document, key) is not None]
        if other:
            raise UplinkError(f"uplink_message: missing; this is a {other[0]} message, not an uplink")
        raise UplinkError("uplink_message: missing")
    received_at = _timestamp(_get(document, "received_at"), "received_at")

    payload = _base64(_get(message, "frm_payload"), "uplink_message.frm_payload")
    f_port = _f_port(_get(message, "f_port"), "uplink_message.f_port", payload)
    f_cnt = _f_cnt(_get(message, "f_cnt"), "uplink_message.f_cnt")
    session_key_id = _string(_get(message, "session_key_id"), "uplink_message.session_key_id")
    decoded = _decoded(_get(message, "decoded_payload"), "uplink_message.decoded_payload")
    entries = _array(_get(message, "rx_metadata"), "uplink_message.rx_metadata")
    rssi, snr, gateways = _best_reception([_tts_reception(i, entry) for i, entry in enumerate(entries)])
    network_ids = _object(_get(message, "network_ids"), "uplink_message.network_ids") or {}
    tenant = _string(_get(network_ids, "tenant_id"), "uplink_message.network_ids.tenant_id")

    return Uplink(
        network=TTS_V3,
        dev_eui=dev_eui,
        device_id=device_id or None,
        application_id=application_id or None,
        received_at=received_at,
        f_port=f_port,
        f_cnt=f_cnt,
        payload=payload,
        decoded=decoded,
        rssi=rssi,
        snr=snr,
        gateways=gateways,
        # TTS has no delivery id: an MQTT QoS 1 redelivery or a webhook retry repeats the same
        # frame, and (DevEUI, FCnt, session) names a frame. The session key id separates the
        # FCnt restart after a re-join.
        dedup_key=f"{dev_eui}:{f_cnt}:{session_key_id or ''}",
        location=_tts_location(message),
        tenant_hint=tenant or None,
    )


# --------------------------------------------------------------------------------------------
# ChirpStack v4

# Keys that only other integration events carry (events.md): a better message than "no txInfo".
_CHIRPSTACK_EVENT_KEYS = (
    ("margin", "status"),
    ("batteryLevel", "status"),
    ("acknowledged", "ack"),
    ("queueItemId", "ack or txack"),
    ("downlinkId", "txack"),
    ("level", "log"),
    ("location", "location"),
    ("integrationName", "integration"),
)


def _chirpstack_reception(index: int, entry: Any) -> _Reception:
    path = f"rxInfo[{index}]"
    info = _object(entry, path, required=True)
    assert info is not None
    gateway: object = _string(_get(info, "gatewayId"), f"{path}.gatewayId")
    return _Reception(
        gateway.lower() if isinstance(gateway, str) and gateway else ("unnamed", index),
        _number(_get(info, "rssi"), f"{path}.rssi"),
        _number(_get(info, "snr"), f"{path}.snr"),
    )


def parse_chirpstack_v4(document: Mapping[str, Any]) -> Uplink:
    """An ``up`` event of the ChirpStack v4 MQTT/HTTP integration, JSON encoding."""
    if not isinstance(document, Mapping):
        raise UplinkError(f"message: must be a JSON object, got {_describe(document)}")
    info = _object(_get(document, "deviceInfo"), "deviceInfo", required=True)
    assert info is not None
    dev_eui = _dev_eui(_get(info, "devEui"), "deviceInfo.devEui")
    if _get(document, "txInfo") is None:
        # Every up event carries txInfo; join, status, ack, txack, log, location and
        # integration events share deviceInfo/time but have none.
        other = [event for key, event in _CHIRPSTACK_EVENT_KEYS if _get(document, key) is not None]
        if other:
            raise UplinkError(f"txInfo: missing; this is a {other[0]} event, not an up event")
        raise UplinkError("txInfo: missing; every up event has one (join, status, ack and log events do not)")
    _object(_get(document, "txInfo"), "txInfo")
    dedup = _string(_get(document, "deduplicationId"), "deduplicationId", required=True)
    assert dedup is not None
    device_name = _string(_get(info, "deviceName"), "deviceInfo.deviceName")
    # applicationId (a UUID) rather than applicationName: it is what the MQTT topic carries.
    application_id = _string(_get(info, "applicationId"), "deviceInfo.applicationId")
    tenant = _string(_get(info, "tenantName"), "deviceInfo.tenantName")
    received_at = _timestamp(_get(document, "time"), "time")

    payload = _base64(_get(document, "data"), "data")
    f_port = _f_port(_get(document, "fPort"), "fPort", payload)
    f_cnt = _f_cnt(_get(document, "fCnt"), "fCnt")
    # object is set only when the device profile has a codec (UplinkEvent docs).
    decoded = _decoded(_get(document, "object"), "object")
    entries = _array(_get(document, "rxInfo"), "rxInfo")
    rssi, snr, gateways = _best_reception([_chirpstack_reception(i, entry) for i, entry in enumerate(entries)])

    return Uplink(
        network=CHIRPSTACK_V4,
        dev_eui=dev_eui,
        device_id=device_name or None,
        application_id=application_id or None,
        received_at=received_at,
        f_port=f_port,
        f_cnt=f_cnt,
        payload=payload,
        decoded=decoded,
        rssi=rssi,
        snr=snr,
        gateways=gateways,
        dedup_key=dedup,
        # The up event has no device position (rxInfo[].location is the gateway's); ChirpStack
        # sends device positions as separate location events.
        location=None,
        tenant_hint=tenant or None,
    )


PARSERS: Mapping[str, Callable[[Mapping[str, Any]], Uplink]] = MappingProxyType(
    {TTS_V3: parse_tts_v3, CHIRPSTACK_V4: parse_chirpstack_v4}
)


# --------------------------------------------------------------------------------------------
# MQTT topics


def _topic_parts(network: str, topic: str) -> list[str] | None:
    """The topic's levels if it is a device topic of ``network``; None otherwise."""
    if network not in PARSERS:
        raise ValueError(f"unknown network {network!r} (known: {', '.join(NETWORKS)})")
    parts = topic.split("/")
    if network == TTS_V3:
        # v3/{application id}[@{tenant id}]/devices/{device id}/{message}[/...]
        ok = len(parts) >= 5 and parts[0] == "v3" and parts[2] == "devices" and all(parts[1:4])
    else:
        # application/{application id}/device/{dev eui}/event/{event}
        ok = (
            len(parts) == 6
            and parts[0] == "application"
            and parts[2] == "device"
            and parts[4] == "event"
            and bool(parts[1])
            and _HEX16.fullmatch(parts[3]) is not None
        )
    return parts if ok else None


def is_uplink_topic(network: str, topic: str) -> bool:
    """True for ``.../up`` (TTS) and ``.../event/up`` (ChirpStack) only: join, downlink, ack,
    status, log and ``up/normalized`` messages arrive on sibling topics and are not uplinks."""
    parts = _topic_parts(network, topic)
    if parts is None:
        return False
    if network == TTS_V3:
        return len(parts) == 5 and parts[4] == "up"
    return parts[5] == "up"


def dev_eui_from_topic(network: str, topic: str) -> str | None:
    """The DevEUI (UPPERCASE) a topic names. TTS topics name the device id, not the EUI: None."""
    parts = _topic_parts(network, topic)
    if parts is None or network == TTS_V3:
        return None
    return parts[3].upper()


def tenant_from_topic(network: str, topic: str) -> str | None:
    """The TTS tenant in ``v3/{app}@{tenant}/...``; None when single-tenant or for ChirpStack,
    whose topics carry only the application UUID."""
    parts = _topic_parts(network, topic)
    if parts is None or network != TTS_V3 or "@" not in parts[1]:
        return None
    return parts[1].rsplit("@", 1)[1] or None


# --------------------------------------------------------------------------------------------
# NDJSON captures


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; they are not JSON and no network server sends them.
    raise ValueError(f"{name} is not valid JSON")


# One decoder for the process: json.loads with any option builds a new JSONDecoder per call, which
# cost about as much as decoding a whole uplink.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_BOM = "\ufeff"


def read_ndjson_uplinks(payload: bytes) -> list[Any]:
    """One JSON value per line, exactly as received, in order; blank lines are skipped.

    A line that is not JSON (or not UTF-8) becomes an :class:`UnreadableLine` with its 1-based
    line number, so the caller can dead-letter it and go on with the rest.
    """
    items: list[Any] = []
    for number, raw in enumerate(payload.split(b"\n"), start=1):
        line = raw.rstrip(b"\r")
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]  # a UTF-8 byte order mark left by an editor
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = line.decode("utf-8", "backslashreplace")
            items.append(UnreadableLine(number, shown, f"invalid UTF-8 at byte {exc.start + 1}"))
            continue
        try:
            if text.startswith(_BOM):  # json.loads refuses it so; the bare decoder would say less
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
            items.append(_DECODER.decode(text))
        except json.JSONDecodeError as exc:
            items.append(UnreadableLine(number, text, f"{exc.msg} (column {exc.colno})"))
        except (ValueError, RecursionError) as exc:
            items.append(UnreadableLine(number, text, str(exc) or type(exc).__name__))
    return items

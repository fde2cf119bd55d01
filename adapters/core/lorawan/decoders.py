"""LoRaWAN device payload decoders: raw FRMPayload bytes -> named values, as pure functions.

A network server only hands over a formatter's ``decoded_payload`` / ``object`` when one is
configured, and every vendor formatter names its keys differently (``humidity`` vs ``water_SOIL``,
``tilt`` vs ``position``, values wrapped as ``{displayName, value, unit}``), returns numbers as
strings, or silently stops at the first byte it does not know. So the adapters decode
``frm_payload`` themselves, with the vendor byte layouts below, into one set of key names and units.

``decode(model, f_port, payload)`` never raises. It returns either

* :class:`Decoded` ``(model, frame, values)``: ``values`` holds only what the frame carries (a
  quantity that is not in the frame is absent, never 0), or
* :class:`Rejected` ``(model, reason)``: the reason is a sentence naming the rule that was broken.

Stricter than the vendor formatters on purpose: wrong lengths, truncated or repeated TLVs, unknown
channels or types, undocumented ports, impossible values and "no sensor" markers are rejected
instead of being decoded into plausible-looking garbage.

Shared key names and units (every model uses the same key for the same quantity):

============================  ===========  =======================================================
key                           type         meaning
============================  ===========  =======================================================
``temperature``               float        air / device temperature, °C
``relative_humidity``         float        relative humidity, % (0..100)
``co2``                       int          CO2 concentration, ppm
``illuminance``               int          light, lux
``motion``                    int          PIR motion count since the previous uplink
``battery_voltage``           float        battery / supply voltage, V
``battery_percent``           int          battery level, % (0..100)
``distance_mm``               int          distance from the sensor to the surface, mm
``valid_samples``             int          valid ultrasonic samples behind ``distance_mm``
``occupied``                  bool         parking space occupied
``tilt``                      bool         device tilted / knocked over
``soil_moisture``             float        volumetric soil water content, %
``soil_temperature``          float        soil temperature, °C
``soil_conductivity``         int          soil electrical conductivity, µS/cm
============================  ===========  =======================================================

Per model (model id -> frames -> keys):

``elsys-ers-co2`` (Elsys ERS CO2, any fPort 1..254)
    ``measurement``: temperature, relative_humidity, illuminance, motion, co2, battery_voltage
    (each only if its TLV is present).
``milesight-em310-udl`` (Milesight EM310-UDL, fPort 85)
    ``measurement`` (any telemetry channel present): battery_percent, distance_mm, tilt; a
    battery-only frame is a measurement with just battery_percent.
    ``device-info`` (only FF attribute channels): ipso_version, hardware_version,
    firmware_version, tsl_version (str "vX.Y"), serial_number (16 hex digits), lorawan_class
    ("Class A".."Class CtoB"), reset_event (True), device_status ("on").
    ``downlink-response`` (only FE/FF answers to downlinks): reboot (True),
    collection_interval_s, report_interval_s (int s), alarm_condition ("disable", "below",
    "above", "between", "outside"), alarm_release_enabled (bool), alarm_threshold_min_mm,
    alarm_threshold_max_mm (int mm), alarm_lock_time_s, alarm_continue_time_s (int s).
``decentlab-dl-mbx`` (Decentlab DL-MBX, fPort 1)
    ``measurement``: device_id (int), distance_mm and valid_samples (flag bit 0),
    battery_voltage (flag bit 1). distance_mm is left out when valid_samples is 0.
``bosch-tps110`` (Bosch Parking Lot Sensor TPS110, fPorts 1..6)
    1 ``status``: occupied. 2 ``heartbeat``: occupied, temperature (if sent).
    3 ``startup``: occupied, firmware_version ("0.29.2"), reset_cause ("watchdog", "power on",
    "system request", "other"; absent when the byte is 0), debug_codes ("804,885"; absent when
    none). 4 ``device-info`` and 5 ``usage``: raw_hex (the vendor decoder does not interpret
    them either). 6 ``debug``: debug_timestamp (int, vendor gives no epoch), debug_code,
    sequence_number (int).
``dragino-lse01`` (Dragino LSE01, fPort 2)
    ``measurement``: battery_voltage, soil_moisture, soil_temperature, soil_conductivity,
    interrupt_uplink (bool), temperature (external DS18B20, only if one reports a real value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "MODELS",
    "DecodeResult",
    "Decoded",
    "ModelInfo",
    "Rejected",
    "Value",
    "decode",
]

Value = float | int | str | bool


@dataclass(frozen=True)
class ModelInfo:
    """What a model is and which uplinks it sends; ``quantities`` are its measured value keys."""

    vendor: str
    description: str
    ports: frozenset[int]
    quantities: tuple[str, ...]


@dataclass(frozen=True)
class Decoded:
    """A frame decoded into our key names; ``values`` is read-only and holds only what was sent."""

    model: str
    frame: str
    values: Mapping[str, Value] = field(hash=False)


@dataclass(frozen=True)
class Rejected:
    """A frame that must not be used; ``reason`` names the model and the rule broken."""

    model: str
    reason: str


DecodeResult = Decoded | Rejected


class _Reject(Exception):
    """Raised inside the model decoders; :func:`decode` turns it into :class:`Rejected`."""


_Values = dict[str, Value]


def _u(data: bytes, order: Literal["big", "little"] = "big", signed: bool = False) -> int:
    """Integer from bytes; the byte order of each vendor field is spelled out at the call."""
    return int.from_bytes(data, order, signed=signed)


def _n_bytes(count: int) -> str:
    return f"{count} byte" if count == 1 else f"{count} bytes"


def _need_length(payload: bytes, allowed: tuple[int, ...], what: str) -> None:
    """Fixed-layout frames: anything shorter is truncated, anything longer is not this frame."""
    if len(payload) not in allowed:
        sizes = " or ".join(str(n) for n in allowed[:-1]) + (" or " if len(allowed) > 1 else "")
        raise _Reject(f"{what} must be {sizes}{_n_bytes(allowed[-1])}, got {len(payload)}")


def _in_range(key: str, value: float, low: float, high: float, unit: str, why: str) -> None:
    if not low <= value <= high:
        raise _Reject(f"{key} {value:g} {unit} is outside {low:g}..{high:g} {unit} ({why})")


# --------------------------------------------------------------------------------------------
# Elsys ERS CO2 -- TheThingsNetwork/lorawan-devices:vendor/elsys/elsys.js
# TLV: one type byte, then a big-endian value of a size fixed by the type.


@dataclass(frozen=True)
class _ElsysType:
    key: str
    size: int
    signed: bool = False
    divisor: int = 1
    as_float: bool = False

    def convert(self, raw: int) -> Value:
        return raw / self.divisor if self.as_float else raw


# The types an ERS CO2 sends. RH is a whole-percent byte but is a fractional quantity elsewhere,
# so it is a float like every other relative_humidity; vdd arrives in mV.
_ELSYS_TYPES: dict[int, _ElsysType] = {
    0x01: _ElsysType("temperature", 2, signed=True, divisor=10, as_float=True),
    0x02: _ElsysType("relative_humidity", 1, as_float=True),
    0x04: _ElsysType("illuminance", 2),
    0x05: _ElsysType("motion", 1),
    0x06: _ElsysType("co2", 2),
    0x07: _ElsysType("battery_voltage", 2, divisor=1000, as_float=True),
}

# Types elsys.js knows from other Elsys products (ELT, EMS, ERS Sound/Eye/VOC, ...). An ERS CO2
# never sends them; named here so the rejection says "wrong device" rather than "garbage".
_ELSYS_OTHER_PRODUCTS: dict[int, str] = {
    0x03: "acceleration",
    0x08: "analog input 1",
    0x09: "GPS",
    0x0A: "pulse count 1",
    0x0B: "absolute pulse count 1",
    0x0C: "external temperature",
    0x0D: "digital input",
    0x0E: "external distance",
    0x0F: "acceleration motion",
    0x10: "IR temperature",
    0x11: "occupancy",
    0x12: "water leak",
    0x13: "Grid-EYE",
    0x14: "pressure",
    0x15: "sound",
    0x16: "pulse count 2",
    0x17: "absolute pulse count 2",
    0x18: "analog input 2",
    0x19: "external temperature 2",
    0x1A: "digital input 2",
    0x1B: "analog input uV",
    0x1C: "TVOC",
    0x3D: "debug",
}

# key -> (low, high, unit, why). CO2 0..10000 ppm is the ERS CO2 NDIR range; 0xFFFF-style error
# fill values land outside these bounds and are rejected with them.
_ELSYS_LIMITS: dict[str, tuple[float, float, str, str]] = {
    "temperature": (-40.0, 85.0, "°C", "beyond what the sensor can report"),
    "relative_humidity": (0.0, 100.0, "%", "relative humidity cannot exceed 100 %"),
    "co2": (0, 10000, "ppm", "beyond the ERS CO2 measuring range"),
}


def _decode_elsys(f_port: int, payload: bytes) -> tuple[str, _Values]:
    """Walk the TLVs. elsys.js stops silently at an unknown type and reads past the end of a
    truncated value (yielding NaN); both are rejections here."""
    if not payload:
        raise _Reject("empty payload")
    values: _Values = {}
    offset = 0
    while offset < len(payload):
        code = payload[offset]
        spec = _ELSYS_TYPES.get(code)
        if spec is None:
            if code in _ELSYS_OTHER_PRODUCTS:
                raise _Reject(
                    f"type 0x{code:02X} ({_ELSYS_OTHER_PRODUCTS[code]}) at offset {offset} "
                    "is sent by other Elsys products, not by an ERS CO2"
                )
            raise _Reject(f"unknown type 0x{code:02X} at offset {offset}")
        left = len(payload) - offset - 1
        if left < spec.size:
            raise _Reject(f"type 0x{code:02X} needs {_n_bytes(spec.size)}, {left} left at offset {offset}")
        if spec.key in values:
            raise _Reject(f"type 0x{code:02X} ({spec.key}) appears twice, second at offset {offset}")
        raw = _u(payload[offset + 1 : offset + 1 + spec.size], signed=spec.signed)
        values[spec.key] = spec.convert(raw)
        offset += 1 + spec.size
    for key, (low, high, unit, why) in _ELSYS_LIMITS.items():
        if key in values:
            _in_range(key, float(values[key]), low, high, unit, why)
    return "measurement", values


# --------------------------------------------------------------------------------------------
# Milesight EM310-UDL -- TheThingsNetwork/lorawan-devices:vendor/milesight-iot/em310-udl.js,
# Milesight-IoT/SensorDecoders:em-series/em310-udl/{README.md,em310-udl-decoder.js}
# Channel list: [channel id][channel type][data], multi-byte data little-endian.

_LORAWAN_CLASSES = {0: "Class A", 1: "Class B", 2: "Class C", 3: "Class CtoB"}
_ALARM_CONDITIONS = {0: "disable", 1: "below", 2: "above", 3: "between", 4: "outside"}


def _em310_battery(data: bytes) -> _Values:
    if data[0] > 100:
        raise _Reject(f"battery {data[0]} % is above 100 %")
    return {"battery_percent": data[0]}


def _em310_position(data: bytes) -> _Values:
    # The README defines 0 normal, 1 tilt; the vendor JS would print "unknown" for anything else.
    if data[0] > 1:
        raise _Reject(f"position value {data[0]} is neither 0 (normal) nor 1 (tilt)")
    return {"tilt": data[0] == 1}


def _em310_class(data: bytes) -> _Values:
    if data[0] not in _LORAWAN_CLASSES:
        raise _Reject(f"LoRaWAN class code {data[0]} is not 0..3")
    return {"lorawan_class": _LORAWAN_CLASSES[data[0]]}


def _em310_alarm(data: bytes) -> _Values:
    """Distance alarm settings echoed after a downlink: condition in bits 0-2, release flag in
    bit 7, then int16 LE thresholds (mm) and uint16 LE lock/continue times (s)."""
    condition = data[0] & 0x07
    if condition not in _ALARM_CONDITIONS:
        raise _Reject(f"distance alarm condition {condition} is not 0..4")
    return {
        "alarm_condition": _ALARM_CONDITIONS[condition],
        "alarm_release_enabled": bool(data[0] >> 7),
        "alarm_threshold_min_mm": _u(data[1:3], "little", signed=True),
        "alarm_threshold_max_mm": _u(data[3:5], "little", signed=True),
        "alarm_lock_time_s": _u(data[5:7], "little"),
        "alarm_continue_time_s": _u(data[7:9], "little"),
    }


@dataclass(frozen=True)
class _Channel:
    label: str
    size: int
    kind: str  # "telemetry", "attribute" or "response": decides the frame name
    parse: Callable[[bytes], _Values]


_EM310_CHANNELS: dict[tuple[int, int], _Channel] = {
    (0x01, 0x75): _Channel("battery", 1, "telemetry", _em310_battery),
    (0x03, 0x82): _Channel("distance", 2, "telemetry", lambda d: {"distance_mm": _u(d, "little")}),
    (0x04, 0x00): _Channel("position", 1, "telemetry", _em310_position),
    (0xFF, 0x01): _Channel("IPSO version", 1, "attribute", lambda d: {"ipso_version": f"v{d[0] >> 4}.{d[0] & 0x0F}"}),
    # Quirk kept from the vendor: hardware major is printed in hex, minor is the high nibble.
    (0xFF, 0x09): _Channel(
        "hardware version", 2, "attribute", lambda d: {"hardware_version": f"v{d[0]:x}.{d[1] >> 4}"}
    ),
    # Firmware bytes are printed in hex: 01 10 -> "v1.10" (README example).
    (0xFF, 0x0A): _Channel("firmware version", 2, "attribute", lambda d: {"firmware_version": f"v{d[0]:x}.{d[1]:x}"}),
    (0xFF, 0xFF): _Channel("TSL version", 2, "attribute", lambda d: {"tsl_version": f"v{d[0]}.{d[1]}"}),
    (0xFF, 0x16): _Channel("serial number", 8, "attribute", lambda d: {"serial_number": d.hex()}),
    (0xFF, 0x0F): _Channel("LoRaWAN class", 1, "attribute", _em310_class),
    # The vendor decoder ignores the data byte of these two and always reports "reset" / "on":
    # the channel's presence is the event.
    (0xFF, 0xFE): _Channel("reset event", 1, "attribute", lambda d: {"reset_event": True}),
    (0xFF, 0x0B): _Channel("device status", 1, "attribute", lambda d: {"device_status": "on"}),
}

# Answers to downlinks; the vendor accepts them on channel 0xFE and 0xFF alike.
_EM310_RESPONSES: dict[int, _Channel] = {
    0x10: _Channel("reboot", 1, "response", lambda d: {"reboot": True}),
    0x02: _Channel("collection interval", 2, "response", lambda d: {"collection_interval_s": _u(d, "little")}),
    0x03: _Channel("report interval", 2, "response", lambda d: {"report_interval_s": _u(d, "little")}),
    0x06: _Channel("distance alarm config", 9, "response", _em310_alarm),
}


def _em310_channel(channel_id: int, channel_type: int) -> _Channel | None:
    known = _EM310_CHANNELS.get((channel_id, channel_type))
    if known is None and channel_id in (0xFE, 0xFF):
        return _EM310_RESPONSES.get(channel_type)
    return known


def _decode_em310(f_port: int, payload: bytes) -> tuple[str, _Values]:
    """Walk the channels. The vendor JS stops silently at an unknown channel and slices past the
    end of truncated data; both are rejections here, as is a channel sent twice."""
    if not payload:
        raise _Reject("empty payload")
    values: _Values = {}
    kinds: set[str] = set()
    offset = 0
    while offset < len(payload):
        if len(payload) - offset < 2:
            raise _Reject(f"channel header needs 2 bytes, 1 left at offset {offset}")
        channel_id, channel_type = payload[offset], payload[offset + 1]
        channel = _em310_channel(channel_id, channel_type)
        if channel is None:
            raise _Reject(f"unknown channel 0x{channel_id:02X} 0x{channel_type:02X} at offset {offset}")
        left = len(payload) - offset - 2
        if left < channel.size:
            raise _Reject(
                f"channel 0x{channel_id:02X} 0x{channel_type:02X} ({channel.label}) needs "
                f"{_n_bytes(channel.size)}, {left} left at offset {offset}"
            )
        decoded = channel.parse(payload[offset + 2 : offset + 2 + channel.size])
        repeated = values.keys() & decoded.keys()
        if repeated:
            raise _Reject(f"channel {channel.label} appears twice, second at offset {offset}")
        values.update(decoded)
        kinds.add(channel.kind)
        offset += 2 + channel.size
    if "telemetry" in kinds:
        return "measurement", values
    return ("device-info" if "attribute" in kinds else "downlink-response"), values


# --------------------------------------------------------------------------------------------
# Decentlab DL-MBX -- TheThingsNetwork/lorawan-devices:vendor/decentlab/dl-mbx.js
# Protocol v2: version byte, uint16 BE device id, uint16 BE flags, then for each set flag bit
# a fixed number of uint16 BE words.

_DL_MBX_VERSION = 2
_DL_MBX_WORDS = (2, 1)  # bit 0: distance mm, valid samples; bit 1: battery mV


def _decode_dl_mbx(f_port: int, payload: bytes) -> tuple[str, _Values]:
    """The vendor wraps values as {displayName, value, unit} and reads past the end of a short
    frame; here values are plain and the length must match what the flags announce."""
    if len(payload) < 5:
        raise _Reject(f"header needs 5 bytes (version, device id, flags), got {len(payload)}")
    if payload[0] != _DL_MBX_VERSION:
        raise _Reject(f"protocol version {payload[0]} is not the supported v{_DL_MBX_VERSION}")
    flags = _u(payload[3:5])
    unknown = flags & ~((1 << len(_DL_MBX_WORDS)) - 1)
    if unknown:
        raise _Reject(f"flags 0x{flags:04X} set bits the DL-MBX does not define (0x{unknown:04X})")
    words = sum(n for bit, n in enumerate(_DL_MBX_WORDS) if flags >> bit & 1)
    expected = 5 + 2 * words
    if len(payload) != expected:
        raise _Reject(f"flags 0x{flags:04X} announce {expected} bytes, got {len(payload)}")
    values: _Values = {"device_id": _u(payload[1:3])}
    pos = 5
    if flags & 0x01:
        distance, samples = _u(payload[pos : pos + 2]), _u(payload[pos + 2 : pos + 4])
        values["valid_samples"] = samples
        # With no valid sample the distance word is not a reading; do not pass it on.
        if samples:
            values["distance_mm"] = distance
        pos += 4
    if flags & 0x02:
        values["battery_voltage"] = _u(payload[pos : pos + 2]) / 1000
    return "measurement", values


# --------------------------------------------------------------------------------------------
# Bosch Parking Lot Sensor TPS110 (firmware 0.29.2) --
# TheThingsNetwork/lorawan-devices:vendor/bosch/tpl110-0292.js, examples in tps110-0292-codec.yaml
# The fPort selects the frame type.

_BOSCH_RESET_CAUSES = {1: "watchdog", 2: "power on", 3: "system request", 4: "other"}
# Plausibility bound for the int8 heartbeat temperature; the datasheet operating range
# (tps110.yaml) is -30..65 °C, a little margin keeps genuine extremes.
_BOSCH_TEMPERATURE = (-40.0, 85.0)


def _bosch_status(payload: bytes) -> tuple[str, _Values]:
    _need_length(payload, (1,), "status frame (fPort 1)")
    return "status", {"occupied": bool(payload[0] & 0x01)}


def _bosch_heartbeat(payload: bytes) -> tuple[str, _Values]:
    # The temperature byte is optional in the vendor decoder ("if length >= 2").
    _need_length(payload, (1, 2), "heartbeat frame (fPort 2)")
    values: _Values = {"occupied": bool(payload[0] & 0x01)}
    if len(payload) == 2:
        temperature = float(_u(payload[1:2], signed=True))
        _in_range("temperature", temperature, *_BOSCH_TEMPERATURE, "°C", "beyond what the sensor can report")
        values["temperature"] = temperature
    return "heartbeat", values


def _bosch_startup(payload: bytes) -> tuple[str, _Values]:
    """Three 4-byte debug slots (12-bit code: low nibble of byte 1 + byte 0, 0 = empty),
    firmware major.minor.patch, reset cause, occupancy."""
    _need_length(payload, (17,), "start-up frame (fPort 3)")
    codes = [((payload[i + 1] & 0x0F) << 8) | payload[i] for i in (0, 4, 8)]
    values: _Values = {
        "occupied": bool(payload[16] & 0x01),
        "firmware_version": f"{payload[12]}.{payload[13]}.{payload[14]}",
    }
    cause = payload[15]
    if cause > max(_BOSCH_RESET_CAUSES):
        raise _Reject(f"reset cause {cause} is not one of 0..{max(_BOSCH_RESET_CAUSES)}")
    if cause:  # 0 maps to undefined in the vendor decoder: no cause reported
        values["reset_cause"] = _BOSCH_RESET_CAUSES[cause]
    if any(codes):
        values["debug_codes"] = ",".join(str(code) for code in codes if code)
    return "startup", values


def _bosch_raw(frame: str, port: int) -> Callable[[bytes], tuple[str, _Values]]:
    """fPorts 4 and 5: the vendor decoder passes the bytes through uninterpreted; so do we."""

    def decode_raw(payload: bytes) -> tuple[str, _Values]:
        if not payload:
            raise _Reject(f"{frame} frame (fPort {port}) is empty")
        return frame, {"raw_hex": payload.hex()}

    return decode_raw


def _bosch_debug(payload: bytes) -> tuple[str, _Values]:
    """uint32 LE timestamp, 12-bit debug code, bytes 6-7 unused, uint16 LE sequence number. The
    vendor builds the timestamp with ``<< 24`` (negative in JS above 2**31); read unsigned here."""
    _need_length(payload, (10,), "debug frame (fPort 6)")
    return "debug", {
        "debug_timestamp": _u(payload[0:4], "little"),
        "debug_code": ((payload[5] & 0x0F) << 8) | payload[4],
        "sequence_number": _u(payload[8:10], "little"),
    }


_BOSCH_PORTS: dict[int, Callable[[bytes], tuple[str, _Values]]] = {
    1: _bosch_status,
    2: _bosch_heartbeat,
    3: _bosch_startup,
    4: _bosch_raw("device-info", 4),
    5: _bosch_raw("usage", 5),
    6: _bosch_debug,
}


def _decode_bosch(f_port: int, payload: bytes) -> tuple[str, _Values]:
    return _BOSCH_PORTS[f_port](payload)


# --------------------------------------------------------------------------------------------
# Dragino LSE01 -- TheThingsNetwork/lorawan-devices:vendor/dragino/lse01.js (+ lse01-codec.yaml);
# flag byte as in dragino/dragino-end-node-decoder:LSE01/LSE01_TTN Decoder V1.2.1.txt.
# fPort 2, 11 bytes, big-endian: battery mV (low 14 bits), DS18B20 int16 /10, soil moisture
# uint16 /100 %, soil temperature int16 /100, conductivity uint16 µS/cm, flag byte.

_LSE01_LENGTH = 11
# DS18B20 datasheet range. The slot is "reserved" on the LSE01 and carries fill values when no
# probe is fitted (lse01-114-codec.yaml shows 279.9 °C), so out-of-range means "not fitted".
_DS18B20_RANGE = (-55.0, 125.0)


def _decode_lse01(f_port: int, payload: bytes) -> tuple[str, _Values]:
    """The vendor JS returns the floats as strings (``toFixed``) and computes a negative soil
    temperature as ``(v - 0xFFFF) / 100``, 0.01 °C too warm (its manual: FF7E -> -1.29 °C);
    here floats are floats and the int16 is read as two's complement (FF7E -> -1.30 °C)."""
    _need_length(payload, (_LSE01_LENGTH,), "measurement frame (fPort 2)")
    flags = payload[10]
    # Bit 4 is the sensor flag: 0 means no soil probe was identified, and bytes 4-9 are zeros
    # (lse01-114-codec.yaml example). Bit 7 is the MOD flag of Dragino's v1.2.1 decoder (1 =
    # bytes 4-9 hold raw dielectric readings); lse01.js ignores it and its own codec example sets
    # it (flag byte 0x90) while expecting normal values, so it is ignored here as well.
    if not flags & 0x10:
        raise _Reject("sensor flag is 0: no soil probe detected (Dragino 'no sensor')")
    values: _Values = {"battery_voltage": (_u(payload[0:2]) & 0x3FFF) / 1000}
    ds18b20 = _u(payload[2:4], signed=True) / 10
    if _DS18B20_RANGE[0] <= ds18b20 <= _DS18B20_RANGE[1]:
        values["temperature"] = ds18b20
    moisture = _u(payload[4:6]) / 100
    _in_range("soil_moisture", moisture, 0.0, 100.0, "%", "water content cannot exceed 100 %")
    soil_temperature = _u(payload[6:8], signed=True) / 100
    _in_range("soil_temperature", soil_temperature, -40.0, 85.0, "°C", "beyond the LSE01 probe range")
    values.update(
        soil_moisture=moisture,
        soil_temperature=soil_temperature,
        soil_conductivity=_u(payload[8:10]),
        interrupt_uplink=bool(flags & 0x0F),
    )
    return "measurement", values


# --------------------------------------------------------------------------------------------
# Registry and entry point

_Decoder = Callable[[int, bytes], tuple[str, _Values]]

MODELS: Mapping[str, ModelInfo] = MappingProxyType(
    {
        "elsys-ers-co2": ModelInfo(
            vendor="Elsys",
            description="ERS CO2 indoor climate sensor (temperature, humidity, light, PIR, CO2)",
            # Elsys NFC settings: "Port integer (1-254) LoRaWAN port"; the payload does not
            # depend on the port.
            ports=frozenset(range(1, 255)),
            quantities=(
                "temperature",
                "relative_humidity",
                "illuminance",
                "motion",
                "co2",
                "battery_voltage",
            ),
        ),
        "milesight-em310-udl": ModelInfo(
            vendor="Milesight",
            description="EM310-UDL ultrasonic distance / bin fill level sensor",
            ports=frozenset({85}),
            quantities=("battery_percent", "distance_mm", "tilt"),
        ),
        "decentlab-dl-mbx": ModelInfo(
            vendor="Decentlab",
            description="DL-MBX ultrasonic distance / level sensor",
            ports=frozenset({1}),
            quantities=("distance_mm", "valid_samples", "battery_voltage"),
        ),
        "bosch-tps110": ModelInfo(
            vendor="Bosch",
            description="TPS110 parking lot sensor (occupancy), firmware 0.29.2 protocol",
            ports=frozenset(_BOSCH_PORTS),
            quantities=("occupied", "temperature"),
        ),
        "dragino-lse01": ModelInfo(
            vendor="Dragino",
            description="LSE01 soil moisture, temperature and conductivity sensor",
            ports=frozenset({2}),
            quantities=(
                "soil_moisture",
                "soil_temperature",
                "soil_conductivity",
                "battery_voltage",
                "temperature",
            ),
        ),
    }
)

_DECODERS: dict[str, _Decoder] = {
    "elsys-ers-co2": _decode_elsys,
    "milesight-em310-udl": _decode_em310,
    "decentlab-dl-mbx": _decode_dl_mbx,
    "bosch-tps110": _decode_bosch,
    "dragino-lse01": _decode_lse01,
}


def _check_port(info: ModelInfo, f_port: object) -> int:
    if f_port is None:
        # TTS leaves f_port out only when it is 0, and port 0 carries MAC commands, not data.
        raise _Reject("no fPort given (port 0 / missing carries MAC commands, not sensor data)")
    if isinstance(f_port, bool) or not isinstance(f_port, int):
        raise _Reject(f"fPort must be an integer, got {type(f_port).__name__}")
    if f_port not in info.ports:
        ports = sorted(info.ports)
        listed = f"{ports[0]}..{ports[-1]}" if len(ports) > 10 else ", ".join(map(str, ports))
        raise _Reject(f"fPort {f_port} is not an uplink port of this model (documented: {listed})")
    return f_port


def decode(model: str, f_port: int | None, payload: bytes) -> DecodeResult:
    """Decode one uplink of ``model``; never raises, whatever the arguments."""
    name = model if isinstance(model, str) else repr(model)
    try:
        decoder = _DECODERS.get(model) if isinstance(model, str) else None
        if decoder is None:
            return Rejected(name, f"{name}: unknown model (known: {', '.join(sorted(_DECODERS))})")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise _Reject(f"payload must be bytes, got {type(payload).__name__}")
        port = _check_port(MODELS[model], f_port)
        frame, values = decoder(port, bytes(payload))
        return Decoded(model, frame, MappingProxyType(dict(values)))
    except _Reject as exc:
        return Rejected(name, f"{name}: {exc}")
    except Exception as exc:
        return Rejected(name, f"{name}: decoder failure ({type(exc).__name__}: {exc})")

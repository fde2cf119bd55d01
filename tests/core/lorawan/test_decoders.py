"""Tests for adapters.core.lorawan.decoders.

Example vectors come from the vendors' own codec files; each test names its source
(``owner/repo:path``). Where our output deliberately differs from the vendor decoder (key names,
floats instead of strings, plain values instead of wrapped ones), the comment says so.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.core.lorawan.decoders import MODELS, Decoded, ModelInfo, Rejected, decode

FLOAT_KEYS = {
    "temperature",
    "relative_humidity",
    "battery_voltage",
    "soil_moisture",
    "soil_temperature",
}
INT_KEYS = {
    "co2",
    "illuminance",
    "motion",
    "battery_percent",
    "distance_mm",
    "valid_samples",
    "soil_conductivity",
    "device_id",
    "collection_interval_s",
    "report_interval_s",
    "alarm_threshold_min_mm",
    "alarm_threshold_max_mm",
    "alarm_lock_time_s",
    "alarm_continue_time_s",
    "debug_timestamp",
    "debug_code",
    "sequence_number",
}
BOOL_KEYS = {
    "occupied",
    "tilt",
    "interrupt_uplink",
    "reset_event",
    "reboot",
    "alarm_release_enabled",
}
FRAMES = {
    "elsys-ers-co2": {"measurement"},
    "milesight-em310-udl": {"measurement", "device-info", "downlink-response"},
    "decentlab-dl-mbx": {"measurement"},
    "bosch-tps110": {"status", "heartbeat", "startup", "device-info", "usage", "debug"},
    "dragino-lse01": {"measurement"},
}


def decoded(model: str, f_port: int | None, payload: bytes | str) -> Decoded:
    raw = bytes.fromhex(payload) if isinstance(payload, str) else payload
    result = decode(model, f_port, raw)
    assert isinstance(result, Decoded), result
    return result


def rejected(model: str, f_port: int | None, payload: bytes | str) -> str:
    raw = bytes.fromhex(payload) if isinstance(payload, str) else payload
    result = decode(model, f_port, raw)
    assert isinstance(result, Rejected), result
    assert result.reason.startswith(f"{model}: ")
    return result.reason


def assert_exact(values: object, expected: dict[str, object]) -> None:
    """Same keys, same values and the same Python types (22.0 is not 22)."""
    assert dict(values) == expected  # type: ignore[call-overload]
    for key, value in expected.items():
        assert type(dict(values)[key]) is type(value), key  # type: ignore[call-overload]


# ------------------------------------------------------------------------------------------
# Registry


def test_models_registry() -> None:
    assert set(MODELS) == {
        "elsys-ers-co2",
        "milesight-em310-udl",
        "decentlab-dl-mbx",
        "bosch-tps110",
        "dragino-lse01",
    }
    for info in MODELS.values():
        assert isinstance(info, ModelInfo)
        assert info.vendor and info.description and info.ports and info.quantities
    assert MODELS["bosch-tps110"].ports == frozenset(range(1, 7))
    assert MODELS["milesight-em310-udl"].ports == frozenset({85})
    assert MODELS["dragino-lse01"].ports == frozenset({2})
    assert MODELS["decentlab-dl-mbx"].ports == frozenset({1})
    assert MODELS["elsys-ers-co2"].ports == frozenset(range(1, 255))


def test_unknown_model_is_rejected() -> None:
    result = decode("acme-9000", 1, b"\x01")
    assert isinstance(result, Rejected)
    assert result.model == "acme-9000"
    assert "unknown model" in result.reason


@pytest.mark.parametrize("model", sorted(MODELS))
def test_missing_or_bad_port_is_rejected(model: str) -> None:
    assert "no fPort" in rejected(model, None, b"\x01")
    assert "not an uplink port" in rejected(model, 0, b"\x01")
    assert "not an uplink port" in rejected(model, 255, b"\x01")
    assert "must be an integer" in rejected(model, True, b"\x01")


@pytest.mark.parametrize("model", sorted(MODELS))
def test_non_bytes_payload_is_rejected(model: str) -> None:
    port = min(MODELS[model].ports)
    result = decode(model, port, "0100E2")  # type: ignore[arg-type]
    assert isinstance(result, Rejected)
    assert "payload must be bytes" in result.reason


def test_bytearray_and_memoryview_are_accepted() -> None:
    payload = bytes.fromhex("0100E2")
    expected = decode("elsys-ers-co2", 5, payload)
    assert decode("elsys-ers-co2", 5, bytearray(payload)) == expected  # type: ignore[arg-type]
    assert decode("elsys-ers-co2", 5, memoryview(payload)) == expected  # type: ignore[arg-type]


def test_values_are_read_only() -> None:
    result = decoded("bosch-tps110", 1, "01")
    with pytest.raises(TypeError):
        result.values["occupied"] = False  # type: ignore[index]


# ------------------------------------------------------------------------------------------
# Elsys ERS CO2


def test_elsys_codec_example() -> None:
    # TheThingsNetwork/lorawan-devices:vendor/elsys/ers-co2-codec.yaml (fPort 1)
    # vendor: {temperature: 22.6, humidity: 41, light: 39, motion: 6, co2: 776}
    result = decoded("elsys-ers-co2", 1, "0100E202290400270506060308")
    assert result.frame == "measurement"
    assert_exact(
        result.values,
        {
            "temperature": 22.6,
            "relative_humidity": 41.0,
            "illuminance": 39,
            "motion": 6,
            "co2": 776,
        },
    )


def test_elsys_vdd_and_negative_temperature() -> None:
    # vdd type 0x07 uint16 mV and signed int16 temperature:
    # TheThingsNetwork/lorawan-devices:vendor/elsys/elsys.js (bin16dec, TYPE_VDD)
    result = decoded("elsys-ers-co2", 5, "0100E202290400270506060308" "070E10")
    assert result.values["battery_voltage"] == 3.6
    cold = decoded("elsys-ers-co2", 5, "01FF9C")  # 0xFF9C = -100 -> -10.0 °C
    assert_exact(cold.values, {"temperature": -10.0})


def test_elsys_partial_frame_carries_only_what_was_sent() -> None:
    result = decoded("elsys-ers-co2", 5, "060308")
    assert_exact(result.values, {"co2": 776})


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("", "empty payload"),
        ("0100", "type 0x01 needs 2 bytes, 1 left at offset 0"),
        ("0100E20603", "type 0x06 needs 2 bytes, 1 left at offset 3"),
        ("01", "type 0x01 needs 2 bytes, 0 left at offset 0"),
        ("0100E220", "unknown type 0x20 at offset 3"),
        ("0100E202", "type 0x02 needs 1 byte, 0 left at offset 3"),
        ("0E04D2", "type 0x0E (external distance) at offset 0 is sent by other Elsys products"),
        ("0100E20100E3", "appears twice"),
        ("0265", "relative_humidity 101 % is outside 0..100 %"),
        ("062711", "co2 10001 ppm is outside 0..10000 ppm"),
        ("06FFFF", "co2 65535 ppm"),
        ("017FFF", "temperature 3276.7 °C is outside -40..85 °C"),
    ],
)
def test_elsys_rejections(payload: str, fragment: str) -> None:
    assert fragment in rejected("elsys-ers-co2", 5, payload)


# ------------------------------------------------------------------------------------------
# Milesight EM310-UDL


def test_em310_codec_example() -> None:
    # TheThingsNetwork/lorawan-devices:vendor/milesight-iot/em310-udl-codec.yaml (fPort 85) and
    # Milesight-IoT/SensorDecoders:em-series/em310-udl/README.md:
    # vendor: {battery: 92, distance: 2116, tilt|position: "tilt"} (key name differs by version)
    result = decoded("milesight-em310-udl", 85, "01755C03824408040001")
    assert result.frame == "measurement"
    assert_exact(result.values, {"battery_percent": 92, "distance_mm": 2116, "tilt": True})


def test_em310_battery_only_frame() -> None:
    result = decoded("milesight-em310-udl", 85, "017564")
    assert result.frame == "measurement"
    assert_exact(result.values, {"battery_percent": 100})


def test_em310_position_normal() -> None:
    assert_exact(decoded("milesight-em310-udl", 85, "040000").values, {"tilt": False})


def test_em310_device_info_frame() -> None:
    # Versions as in Milesight-IoT/SensorDecoders:em-series/em310-udl/README.md:
    # hardware "0110 -> v1.1", firmware "0110 -> v1.10"; class codes 0..3; sn 8 bytes.
    payload = "FF0110" "FF090110" "FF0A0110" "FFFF0100" "FF166789C13D2418A001" "FF0F00" "FFFE01" "FF0B01"
    result = decoded("milesight-em310-udl", 85, payload)
    assert result.frame == "device-info"
    assert_exact(
        result.values,
        {
            "ipso_version": "v1.0",
            "hardware_version": "v1.1",
            "firmware_version": "v1.10",
            "tsl_version": "v1.0",
            "serial_number": "6789c13d2418a001",
            "lorawan_class": "Class A",
            "reset_event": True,
            "device_status": "on",
        },
    )


def test_em310_telemetry_wins_the_frame_name() -> None:
    result = decoded("milesight-em310-udl", 85, "FF0B01" "01755C")
    assert result.frame == "measurement"
    assert_exact(result.values, {"device_status": "on", "battery_percent": 92})


def test_em310_downlink_responses() -> None:
    # Layouts from TheThingsNetwork/lorawan-devices:vendor/milesight-iot/em310-udl.js
    # (handle_downlink_response): FE and FF channel ids are both accepted.
    result = decoded("milesight-em310-udl", 85, "FF032C01" "FE021E00" "FF10FF")
    assert result.frame == "downlink-response"
    assert_exact(
        result.values, {"report_interval_s": 300, "collection_interval_s": 30, "reboot": True}
    )
    # 0x81: condition 1 (below) + alarm release bit 7; thresholds int16 LE; times uint16 LE
    alarm = decoded("milesight-em310-udl", 85, "FF06" "81" "6400" "E803" "3C00" "0500")
    assert_exact(
        alarm.values,
        {
            "alarm_condition": "below",
            "alarm_release_enabled": True,
            "alarm_threshold_min_mm": 100,
            "alarm_threshold_max_mm": 1000,
            "alarm_lock_time_s": 60,
            "alarm_continue_time_s": 5,
        },
    )


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("", "empty payload"),
        ("01755C03", "channel header needs 2 bytes, 1 left at offset 3"),
        ("01755C038244", "channel 0x03 0x82 (distance) needs 2 bytes, 1 left at offset 3"),
        ("0175", "channel 0x01 0x75 (battery) needs 1 byte, 0 left at offset 0"),
        ("05670101", "unknown channel 0x05 0x67 at offset 0"),
        ("FF2000", "unknown channel 0xFF 0x20 at offset 0"),
        ("FE0110", "unknown channel 0xFE 0x01 at offset 0"),
        ("017565", "battery 101 % is above 100 %"),
        ("040002", "position value 2 is neither 0 (normal) nor 1 (tilt)"),
        ("01755C01755C", "channel battery appears twice"),
        ("FF0F04", "LoRaWAN class code 4 is not 0..3"),
        ("FF06056400640000000000", "distance alarm condition 5 is not 0..4"),
    ],
)
def test_em310_rejections(payload: str, fragment: str) -> None:
    assert fragment in rejected("milesight-em310-udl", 85, payload)


def test_em310_only_port_85() -> None:
    assert "fPort 1 is not an uplink port" in rejected("milesight-em310-udl", 1, "01755C")


# ------------------------------------------------------------------------------------------
# Decentlab DL-MBX


def test_dl_mbx_codec_example_1() -> None:
    # TheThingsNetwork/lorawan-devices:vendor/decentlab/dl-mbx-codec.yaml, Example 1 (fPort 1)
    # vendor (wrapped): distance.value 1234 mm, number_of_valid_samples 1,
    # battery_voltage.value 2.993 V, device_id 303, protocol_version 2
    result = decoded("decentlab-dl-mbx", 1, "02012F000304D200010BB1")
    assert result.frame == "measurement"
    assert_exact(
        result.values,
        {"device_id": 303, "distance_mm": 1234, "valid_samples": 1, "battery_voltage": 2.993},
    )


def test_dl_mbx_codec_example_2_battery_only() -> None:
    # TheThingsNetwork/lorawan-devices:vendor/decentlab/dl-mbx-codec.yaml, Example 2
    result = decoded("decentlab-dl-mbx", 1, "02012F00020BB1")
    assert_exact(result.values, {"device_id": 303, "battery_voltage": 2.993})


def test_dl_mbx_zero_valid_samples_drops_distance() -> None:
    result = decoded("decentlab-dl-mbx", 1, "02012F000100000000")
    assert_exact(result.values, {"device_id": 303, "valid_samples": 0})


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("02012F00", "header needs 5 bytes"),
        ("03012F00020BB1", "protocol version 3 is not the supported v2"),
        ("02012F00040BB1", "flags 0x0004 set bits the DL-MBX does not define"),
        ("02012F000304D200010B", "flags 0x0003 announce 11 bytes, got 10"),
        ("02012F00020BB100", "flags 0x0002 announce 7 bytes, got 8"),
    ],
)
def test_dl_mbx_rejections(payload: str, fragment: str) -> None:
    assert fragment in rejected("decentlab-dl-mbx", 1, payload)


# ------------------------------------------------------------------------------------------
# Bosch TPS110


def test_bosch_codec_examples() -> None:
    # TheThingsNetwork/lorawan-devices:vendor/bosch/tps110-0292-codec.yaml
    status = decoded("bosch-tps110", 1, bytes([1]))
    assert status.frame == "status"
    assert_exact(status.values, {"occupied": True})

    heartbeat = decoded("bosch-tps110", 2, bytes([1, 255]))
    assert heartbeat.frame == "heartbeat"
    assert_exact(heartbeat.values, {"occupied": True, "temperature": -1.0})

    startup = decoded(
        "bosch-tps110", 3, bytes([0x24, 3, 0, 0, 0x75, 3, 0, 0, 0, 0, 0, 0, 0, 29, 2, 3, 1])
    )
    assert startup.frame == "startup"
    # vendor: debugCodes [804, 885], firmwareVersion '0.29.2', resetCause 'system request'
    assert_exact(
        startup.values,
        {
            "occupied": True,
            "firmware_version": "0.29.2",
            "reset_cause": "system request",
            "debug_codes": "804,885",
        },
    )


def test_bosch_heartbeat_without_temperature() -> None:
    # tpl110-0292.js reads the temperature only "if (input.bytes.length >= 2)"
    assert_exact(decoded("bosch-tps110", 2, "00").values, {"occupied": False})


def test_bosch_startup_without_codes_or_cause() -> None:
    result = decoded("bosch-tps110", 3, bytes(12) + bytes([0, 29, 2, 0, 0]))
    assert_exact(result.values, {"occupied": False, "firmware_version": "0.29.2"})


def test_bosch_info_usage_debug() -> None:
    # tpl110-0292.js: ports 4 and 5 pass bytes through; port 6 timestamp uint32 LE,
    # debug code 12 bit, sequence number uint16 LE at bytes 8-9
    info = decoded("bosch-tps110", 4, "0a0b0c")
    assert (info.frame, dict(info.values)) == ("device-info", {"raw_hex": "0a0b0c"})
    usage = decoded("bosch-tps110", 5, "ff")
    assert (usage.frame, dict(usage.values)) == ("usage", {"raw_hex": "ff"})
    debug = decoded("bosch-tps110", 6, "78563412" "24F3" "0000" "0500")
    assert debug.frame == "debug"
    assert_exact(
        debug.values, {"debug_timestamp": 0x12345678, "debug_code": 804, "sequence_number": 5}
    )


@pytest.mark.parametrize(
    ("port", "payload", "fragment"),
    [
        (1, "", "status frame (fPort 1) must be 1 byte, got 0"),
        (1, "0100", "status frame (fPort 1) must be 1 byte, got 2"),
        (2, "", "heartbeat frame (fPort 2) must be 1 or 2 bytes, got 0"),
        (2, "011400", "heartbeat frame (fPort 2) must be 1 or 2 bytes, got 3"),
        (2, "019C", "temperature -100 °C is outside -40..85 °C"),
        (3, "00" * 16, "start-up frame (fPort 3) must be 17 bytes, got 16"),
        (3, "00" * 15 + "05" + "01", "reset cause 5 is not one of 0..4"),
        (4, "", "device-info frame (fPort 4) is empty"),
        (5, "", "usage frame (fPort 5) is empty"),
        (6, "00" * 9, "debug frame (fPort 6) must be 10 bytes, got 9"),
        (7, "01", "fPort 7 is not an uplink port of this model (documented: 1, 2, 3, 4, 5, 6)"),
    ],
)
def test_bosch_rejections(port: int, payload: str, fragment: str) -> None:
    assert fragment in rejected("bosch-tps110", port, payload)


# ------------------------------------------------------------------------------------------
# Dragino LSE01


def test_lse01_codec_example() -> None:
    # TheThingsNetwork/lorawan-devices:vendor/dragino/lse01-codec.yaml (fPort 2)
    # vendor: {Bat: 3.625, TempC_DS18B20: "24.1", water_SOIL: "19.57", temp_SOIL: "24.59",
    #          conduct_SOIL: 28200} -- the vendor's strings are floats here.
    result = decoded("dragino-lse01", 2, "CE2900F107A5099B6E2890")
    assert result.frame == "measurement"
    assert_exact(
        result.values,
        {
            "battery_voltage": 3.625,
            "temperature": 24.1,
            "soil_moisture": 19.57,
            "soil_temperature": 24.59,
            "soil_conductivity": 28200,
            "interrupt_uplink": False,
        },
    )


def test_lse01_codec_unknown_port() -> None:
    # TheThingsNetwork/lorawan-devices:vendor/dragino/lse01-codec.yaml: fPort 42 -> "unknown FPort"
    assert "fPort 42 is not an uplink port" in rejected("dragino-lse01", 42, "CE2900F107A5099B6E2890")


def test_lse01_no_sensor_example() -> None:
    # TheThingsNetwork/lorawan-devices:vendor/dragino/lse01-114-codec.yaml: Sensor_flag 0, soil
    # values all zero, DS18B20 slot 279.90 -> no probe; the whole frame is unusable.
    reason = rejected("dragino-lse01", 2, "0D3B0AEF00000000000001")
    assert "no soil probe detected" in reason


def test_lse01_manual_register_examples() -> None:
    # Dragino LSE01 user manual §2.3 (https://www.easymanua.ls/dragino/lse01/manual?p=13 and the
    # wiki.dragino.com LSE01 page): moisture 05DC -> 15 %, soil temperature 0105 -> 2.61 °C,
    # FF7E -> -1.29 °C by the vendor's (v - 0xFFFF)/100, EC 00C8 -> 200 uS/cm.
    # We read the int16 as two's complement, so FF7E is -1.30 °C (the vendor is 0.01 °C off).
    result = decoded("dragino-lse01", 2, "0E10" "00F1" "05DC" "0105" "00C8" "11")
    assert_exact(
        result.values,
        {
            "battery_voltage": 3.6,
            "temperature": 24.1,
            "soil_moisture": 15.0,
            "soil_temperature": 2.61,
            "soil_conductivity": 200,
            "interrupt_uplink": True,
        },
    )
    negative = decoded("dragino-lse01", 2, "0E10" "00F1" "05DC" "FF7E" "00C8" "10")
    assert negative.values["soil_temperature"] == -1.3


def test_lse01_ds18b20_fill_value_is_absent() -> None:
    # DS18B20 slot out of the probe's -55..125 °C range (no probe fitted) -> key absent
    result = decoded("dragino-lse01", 2, "0E10" "0AEF" "07A5" "099B" "6E28" "10")
    assert "temperature" not in result.values
    assert result.values["soil_moisture"] == 19.57


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("CE2900F107A5099B6E28", "measurement frame (fPort 2) must be 11 bytes, got 10"),
        ("CE2900F107A5099B6E289000", "must be 11 bytes, got 12"),
        ("0E1000F12711099B6E2810", "soil_moisture 100.01 % is outside 0..100 %"),
        ("0E1000F107A523286E2810", "soil_temperature 90 °C is outside -40..85 °C"),
        ("0E1000F107A5099B6E2800", "no soil probe detected"),
    ],
)
def test_lse01_rejections(payload: str, fragment: str) -> None:
    assert fragment in rejected("dragino-lse01", 2, payload)


# ------------------------------------------------------------------------------------------
# Properties: arbitrary input never raises and always yields a well-formed result

VALID_EXAMPLES: dict[str, list[tuple[int, bytes]]] = {
    "elsys-ers-co2": [(1, bytes.fromhex("0100E202290400270506060308070E10"))],
    "milesight-em310-udl": [
        (85, bytes.fromhex("01755C03824408040001")),
        (85, bytes.fromhex("FF0110FF090110FF0A0110FF0F00FFFE01FF0B01")),
        (85, bytes.fromhex("FF032C01FF06816400E8033C000500")),
    ],
    "decentlab-dl-mbx": [(1, bytes.fromhex("02012F000304D200010BB1"))],
    "bosch-tps110": [
        (1, bytes([1])),
        (2, bytes([1, 255])),
        (3, bytes([0x24, 3, 0, 0, 0x75, 3, 0, 0, 0, 0, 0, 0, 0, 29, 2, 3, 1])),
        (6, bytes.fromhex("7856341224F300000500")),
    ],
    "dragino-lse01": [(2, bytes.fromhex("CE2900F107A5099B6E2890"))],
}


@st.composite
def mutated(draw: st.DrawFn, model: str) -> tuple[int, bytes]:
    """A documented frame, truncated, with a byte replaced, or with bytes appended."""
    port, payload = draw(st.sampled_from(VALID_EXAMPLES[model]))
    data = bytearray(payload)
    operation = draw(st.sampled_from(["truncate", "replace", "append", "none"]))
    if operation == "truncate":
        del data[draw(st.integers(0, len(data))) :]
    elif operation == "replace":
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif operation == "append":
        data += draw(st.binary(min_size=1, max_size=8))
    return port, bytes(data)


def check_well_formed(model: str, f_port: int | None, result: object) -> None:
    assert isinstance(result, Decoded | Rejected)
    assert result.model == model
    if isinstance(result, Rejected):
        assert result.reason.strip()
        assert result.reason.startswith(f"{model}: ")
        return
    assert f_port in MODELS[model].ports
    assert result.frame in FRAMES[model]
    for key, value in result.values.items():
        assert isinstance(value, float | int | str | bool), key
        if key in FLOAT_KEYS:
            assert type(value) is float and math.isfinite(value), key
        if key in INT_KEYS:
            assert type(value) is int, key
        if key in BOOL_KEYS:
            assert type(value) is bool, key
    for key in ("relative_humidity", "soil_moisture", "battery_percent"):
        value = result.values.get(key, 0)
        assert isinstance(value, int | float) and 0 <= value <= 100, key


@pytest.mark.parametrize("model", sorted(MODELS))
@settings(max_examples=2000, derandomize=True, database=None, deadline=None)
@given(data=st.data())
def test_arbitrary_bytes_and_ports_never_raise(model: str, data: st.DataObject) -> None:
    ports = st.none() | st.integers(-10, 300) | st.sampled_from(sorted(MODELS[model].ports))
    f_port, payload = data.draw(
        st.tuples(ports, st.binary(max_size=80)) | mutated(model), label="uplink"
    )
    check_well_formed(model, f_port, decode(model, f_port, payload))


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(model=st.text(max_size=20), f_port=st.none() | st.integers(), payload=st.binary())
def test_unknown_models_never_raise(model: str, f_port: int | None, payload: bytes) -> None:
    result = decode(model, f_port, payload)
    if model not in MODELS:
        assert isinstance(result, Rejected) and "unknown model" in result.reason

"""One LoRaWAN uplink -> entities: parse, look up the device, deduplicate, order, decode, map by kind.

The payload bytes are always decoded here, also when the network server sent a decoded payload:
formatter versions differ in key names and units (EM310 ``tilt`` vs ``position``), and one
validated decoder per model is the only way every reading means the same. Each *device kind*
(waste, parking, indoor, water, soil) maps a decoded reading to its Smart Data Models entity; the
``Device`` entity of the sensor itself is built here for every kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.core.adapter import RecordRejected
from adapters.core.entities import Attribute, Entity, entity_id, geo_point, make_entity, prop, utc_iso
from adapters.core.lorawan.decoders import MODELS, Decoded, decode
from adapters.core.lorawan.registry import Device, DeviceRegistry
from adapters.core.lorawan.state import DeviceMemory, UplinkState
from adapters.core.lorawan.uplinks import PARSERS, Uplink, UplinkError
from adapters.core.metrics import metrics
from adapters.core.timecheck import time_problem

__all__ = ["DeviceKind", "KindContext", "KindOutput", "Reading", "UplinkPipeline", "device_entity_id"]

# Approximate usable range per model (V), linear in between: LoRaWAN sensors report voltage, the
# data model wants a level 0..1. Lithium cells hold their voltage until shortly before they are empty.
BATTERY_RANGE_V: Mapping[str, tuple[float, float]] = {
    "elsys-ers-co2": (3.0, 3.6),
    "decentlab-dl-mbx": (2.5, 3.3),
    "dragino-lse01": (3.0, 3.6),
}


@dataclass(frozen=True)
class Reading:
    uplink: Uplink
    device: Device
    frame: str
    values: Mapping[str, Any]
    observed_at: datetime


@dataclass(frozen=True)
class KindContext:
    settings: Mapping[str, Any]
    registry: DeviceRegistry
    memory_of: Callable[[str], DeviceMemory]
    """Current (staged or stored) memory of any device, e.g. the other spots of a parking site."""


@dataclass(frozen=True)
class KindOutput:
    entities: list[Entity]
    kind_state: Mapping[str, Any] | None = None
    """What the kind wants remembered for this device (None keeps the previous state)."""


@dataclass(frozen=True)
class DeviceKind:
    name: str
    entity_types: tuple[str, ...]
    controlled_property: tuple[str, ...]
    """Device.controlledProperty values (the SDM enum: no 'co2', no 'distance')."""
    normalize: Callable[[Reading, KindContext], KindOutput]
    config_properties: Mapping[str, Any] = field(default_factory=dict)
    """JSON Schema properties of ``[adapters.lorawan.<kind>]``."""


def device_entity_id(device: Device) -> str:
    return entity_id("Device", device.tenant, device.dev_eui)


def _battery_level(model: str, values: Mapping[str, Any]) -> float | None:
    if isinstance(values.get("battery_percent"), int | float):
        return round(min(max(float(values["battery_percent"]) / 100, 0.0), 1.0), 3)
    voltage = values.get("battery_voltage")
    if isinstance(voltage, int | float) and model in BATTERY_RANGE_V:
        empty, full = BATTERY_RANGE_V[model]
        return round(min(max((float(voltage) - empty) / (full - empty), 0.0), 1.0), 3)
    return None


def device_entity(reading: Reading, kind: DeviceKind) -> Entity:
    device, uplink, observed = reading.device, reading.uplink, reading.observed_at
    attributes: dict[str, Attribute] = {
        "name": prop(device.name),
        "category": prop(["sensor"]),
        "controlledProperty": prop(list(kind.controlled_property)),
        "supportedProtocol": prop(["lora"]),
        "serialNumber": prop(device.dev_eui),
        "description": prop(f"{MODELS[device.model].vendor} {MODELS[device.model].description}"),
        "dateLastValueReported": prop(utc_iso(observed), observed_at=observed),
    }
    if device.lon is not None and device.lat is not None:
        attributes["location"] = geo_point(device.lon, device.lat)
    battery = _battery_level(device.model, reading.values)
    if battery is not None:
        attributes["batteryLevel"] = prop(battery, observed_at=observed, unit_code="C62")
    if uplink.rssi is not None:
        attributes["rssi"] = prop(float(uplink.rssi), observed_at=observed)
    if isinstance(reading.values.get("firmware_version"), str):
        attributes["firmwareVersion"] = prop(reading.values["firmware_version"])
    return make_entity("Device", device.tenant, device.dev_eui, attributes)


@dataclass
class UplinkPipeline:
    """Stateful, but the state is an input: the same uplinks on the same state give the same entities."""

    network: str
    registry: DeviceRegistry
    kinds: Mapping[str, DeviceKind]
    state: UplinkState
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per kind name, that kind's settings."""
    counters: Counter[str] = field(default_factory=Counter)
    _outcome_metrics: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    """The labelled children of ``metrics.uplinks``: ``labels()`` takes a lock and a lookup per uplink."""

    def _count(self, outcome: str) -> None:
        self.counters[outcome] += 1
        child = self._outcome_metrics.get(outcome)
        if child is None:
            child = self._outcome_metrics[outcome] = metrics.uplinks.labels(outcome=outcome)
        child.inc()

    def normalize(self, document: Any, received_at: datetime | None = None) -> list[Entity]:
        """Entities of one uplink; [] for a duplicate or a repeat of an unknown device; RecordRejected otherwise.

        ``received_at`` (when we got it) bounds the network server's time: a far-future time would become
        the device's newest state and turn every later uplink into "older than its current state".
        """
        if not isinstance(document, Mapping):
            raise RecordRejected(f"uplink is {type(document).__name__}, expected a JSON object")
        try:
            uplink = PARSERS[self.network](document)
        except UplinkError as error:
            self._count("malformed")
            raise RecordRejected(f"{self.network} uplink: {error}") from None
        if received_at is not None and (problem := time_problem(uplink.received_at, received_at)):
            self._count("malformed")
            raise RecordRejected(f"{self.network} uplink of device {uplink.dev_eui}: {problem}")
        device = self.registry.get(uplink.dev_eui)
        if device is None:
            self._count("unknown_device")
            if self.state.note_unknown(uplink.dev_eui, uplink.received_at):
                raise RecordRejected(
                    f"device {uplink.dev_eui} is not in the device registry (further uplinks of it are only counted)"
                )
            return []
        memory = self.state.memory(device.dev_eui)
        if memory.seen(uplink.dedup_key):
            self._count("duplicate")
            return []
        if memory.observed_at is not None and uplink.received_at < datetime.fromisoformat(memory.observed_at):
            self._count("stale")
            raise RecordRejected(
                f"device {device.dev_eui}: uplink of {utc_iso(uplink.received_at)} is older than its current state "
                f"({utc_iso(datetime.fromisoformat(memory.observed_at))}); not sent so it cannot overwrite newer state"
            )
        decoded = decode(device.model, uplink.f_port, uplink.payload)
        if not isinstance(decoded, Decoded):
            self._count("undecodable")
            self.state.stage(device.dev_eui, memory.after(uplink.dedup_key, uplink.received_at, None))
            raise RecordRejected(f"device {device.dev_eui} ({device.name}): {decoded.reason}")
        kind = self.kinds[device.kind]
        reading = Reading(uplink, device, decoded.frame, decoded.values, uplink.received_at)
        context = KindContext(self.settings.get(kind.name, {}), self.registry, self.state.memory)
        try:
            output = kind.normalize(reading, context)
        except RecordRejected as rejected:
            # The reading is implausible, the report itself is not: battery and signal still count,
            # and a redelivery of this uplink is a duplicate.
            self.state.stage(device.dev_eui, memory.after(uplink.dedup_key, uplink.received_at, None))
            self._count("implausible")
            raise RecordRejected(str(rejected), partial=[device_entity(reading, kind)]) from None
        self.state.stage(device.dev_eui, memory.after(uplink.dedup_key, uplink.received_at, output.kind_state))
        self._count("accepted")
        return [*output.entities, device_entity(reading, kind)]

    def commit(self) -> None:
        self.state.commit()

    def rollback(self) -> None:
        self.state.rollback()

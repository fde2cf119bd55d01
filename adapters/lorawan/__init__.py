"""LoRaWAN adapter: uplinks of The Things Stack v3 or ChirpStack v4, by MQTT or webhook, to entities.

Every uplink is matched to the device registry (CSV), decoded from its payload bytes by the device
model's decoder, and mapped by the device's *kind* (``kinds/``) to its Smart Data Models entity, plus
a ``Device`` entity for the sensor itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from adapters.core.adapter import (
    Adapter,
    Governance,
    NormalizeContext,
    Payload,
    RawRecord,
    RecordRejected,
    SourceKind,
    payload_bytes,
)
from adapters.core.config import PUSH_INTAKE_PROPERTIES
from adapters.core.entities import Entity
from adapters.core.lorawan.pipeline import DeviceKind, UplinkPipeline
from adapters.core.lorawan.registry import DeviceRegistry, RegistryError
from adapters.core.lorawan.state import UplinkState
from adapters.core.lorawan.uplinks import (
    CHIRPSTACK_V4,
    TTS_V3,
    UnreadableLine,
    is_uplink_topic,
    read_ndjson_uplinks,
)
from adapters.lorawan.kinds import KINDS

__all__ = ["LorawanAdapter", "LorawanResources"]

DEFAULT_TOPICS: Mapping[str, str] = {
    TTS_V3: "v3/+/devices/+/up",
    CHIRPSTACK_V4: "application/+/device/+/event/up",
}


@dataclass
class LorawanResources:
    pipeline: UplinkPipeline

    def commit(self) -> None:
        self.pipeline.commit()

    def rollback(self) -> None:
        self.pipeline.rollback()

    def close(self) -> None:
        self.pipeline.state.close()


# Kind settings that name a file: resolved against base_dir here, like ``devices``, because a kind
# sees only its settings and the pipeline may run in another working directory.
_KIND_PATH_SETTINGS = frozenset({"zones", "buildings_file"})


def _kind_settings(kind_settings: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    return {
        key: str(base_dir / value) if key in _KIND_PATH_SETTINGS and isinstance(value, str) and value else value
        for key, value in kind_settings.items()
    }


def _parse(payload: Payload) -> Sequence[RawRecord]:
    """One uplink JSON object per line, exactly as the network server sent it (MQTT message or webhook body)."""
    # An unreadable line keeps its text, so the dead-letter file shows what was received.
    return [
        {"_unreadable": item.message, "text": item.text} if isinstance(item, UnreadableLine) else item
        for item in read_ndjson_uplinks(payload_bytes(payload))
    ]


def _normalize(record: RawRecord, context: NormalizeContext) -> list[Entity]:
    if isinstance(record, Mapping) and "_unreadable" in record:
        raise RecordRejected(str(record["_unreadable"]))
    resources = context.resources
    if not isinstance(resources, LorawanResources):
        raise RecordRejected("no device registry loaded: set [adapters.lorawan] devices")
    return resources.pipeline.normalize(record, context.received_at)


def _label(record: RawRecord) -> str:
    ids = record.get("end_device_ids") or record.get("deviceInfo") or {}
    eui = ids.get("dev_eui") or ids.get("devEui") if isinstance(ids, Mapping) else None
    return f"dev_eui={eui}" if eui else "uplink"


def _source(network: str, title: str, sample: str) -> SourceKind:
    return SourceKind(
        name=network,
        description=f"{title} uplinks (MQTT topic {DEFAULT_TOPICS[network]} or webhook)",
        entity_types=(*dict.fromkeys(t for kind in KINDS.values() for t in kind.entity_types), "Device"),
        parse=_parse,
        normalize=_normalize,
        record_label=_label,
        default_url="mqtt://localhost:1883",
        sample=sample,
    )


class LorawanAdapter(Adapter):
    name = "lorawan"
    title = "LoRaWAN sensors: waste fill levels, parking spaces, indoor climate, water levels, soil"
    mode = "push"
    sources: ClassVar[tuple[SourceKind, ...]] = (
        _source(CHIRPSTACK_V4, "ChirpStack v4", "chirpstack-v4-uplinks.ndjson"),
        _source(TTS_V3, "The Things Stack v3", "tts-v3-uplinks.ndjson"),
    )
    default_tenant = "dortmund"
    # The city's own sensors. Both network formats carry the same mix of device kinds, and that mix
    # includes indoor climate per classroom (CO2 shows when a room is occupied: aggregated personal
    # data), so the stream stays internal; open parts (e.g. fill levels) need a dataset of their own.
    governance: ClassVar[dict[str, Governance]] = dict.fromkeys(
        (CHIRPSTACK_V4, TTS_V3),
        Governance(
            publisher="Stadt Dortmund",
            licence="http://dcat-ap.de/def/licenses/other-closed",
            attribution="Stadt Dortmund, LoRaWAN-Sensornetz",
            update_frequency="CONT",
            personal_data="aggregated",
            access="internal",
        ),
    )
    config_properties: ClassVar[dict[str, Any]] = {
        "enabled": {"type": "boolean", "default": False, "description": "Off until a device registry is set."},
        "devices": {"type": "string", "description": "Device registry CSV (see adapters/lorawan/README.md)."},
        "state_path": {
            "type": "string",
            "default": "var/lorawan-state.sqlite",
            "description": "Per-device memory: deduplication keys, newest uplink time, parking spot states.",
        },
        **PUSH_INTAKE_PROPERTIES,
        **{
            kind.name: {
                "type": "object",
                "description": f"Settings of the {kind.name} kind.",
                "properties": dict(kind.config_properties),
                "additionalProperties": False,
            }
            for kind in KINDS.values()
        },
    }

    @classmethod
    def mqtt_topics(cls, settings: Mapping[str, Any]) -> list[str]:
        return list(settings["mqtt"].get("topics") or [DEFAULT_TOPICS[settings["source"]]])

    @classmethod
    def accepts_message(cls, settings: Mapping[str, Any], topic: str) -> bool:
        """Webhook paths carry uplinks only; on MQTT, join/ack/status events share the subscription."""
        return topic.startswith("/") or is_uplink_topic(settings["source"], topic)

    @classmethod
    def offline_settings(cls, settings: Mapping[str, Any]) -> Mapping[str, Any]:
        """The sample registry and zones beside the recorded uplinks (the uplinks only match those)."""
        samples = Path(__file__).parent / "samples"
        parking = {**settings.get("parking", {}), "zones": str(samples / "zones.geojson")}
        return {**settings, "devices": str(samples / "devices.csv"), "parking": parking}

    @classmethod
    def open_resources(cls, settings: Mapping[str, Any], *, base_dir: Path, persistent: bool) -> LorawanResources:
        devices = settings.get("devices")
        if not devices:
            raise RegistryError(["[adapters.lorawan] devices: the device registry CSV is required"])
        registry = DeviceRegistry.from_csv(base_dir / devices)
        state = UplinkState(base_dir / settings["state_path"] if persistent else None)
        kinds: Mapping[str, DeviceKind] = KINDS
        pipeline = UplinkPipeline(
            network=settings["source"],
            registry=registry,
            kinds=kinds,
            state=state,
            settings={name: _kind_settings(settings.get(name, {}), base_dir) for name in kinds},
        )
        return LorawanResources(pipeline)

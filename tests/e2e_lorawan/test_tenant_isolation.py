"""Tenant isolation under crafted uplinks: the device registry alone decides the tenant.

A Schwerte device whose uplink claims Dortmund in every place a network server puts a tenant or a
name (ChirpStack ``deviceInfo.tenantName``/``tenantId``/``deviceName``, TTS ``@tenant`` in the topic,
``network_ids.tenant_id``, ``end_device_ids.device_id``) still writes only Schwerte entities, and the
push service routes them to the Schwerte tenant. An unknown DevEUI claiming Dortmund writes nothing.
The uplinks go through the same ``normalize_payload`` and ``PushService.flush`` as a running adapter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from lorawan_e2e_support import (
    Sensor,
    chirpstack_topic,
    chirpstack_up,
    fleet,
    readings,
    registry_csv,
    tts_topic,
    tts_up,
)

from adapters.core.adapter import NormalizeContext
from adapters.core.entities import Entity, tenant_of_entity
from adapters.core.intake import Message
from adapters.core.normalize import NormalizeResult, normalize_payload
from adapters.core.push import PushService
from adapters.core.sinks import DeadLetterFile, DeliveryReport
from adapters.lorawan import LorawanAdapter
from adapters.testing.cases import adapter_settings

SENSORS = fleet(per_tenant=2)
SCHWERTE = next(s for s in SENSORS if s.tenant == "schwerte")
DORTMUND = next(s for s in SENSORS if s.tenant == "dortmund" and s.model == SCHWERTE.model)


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    (tmp_path / "devices.csv").write_text(registry_csv(SENSORS), encoding="utf-8")
    return tmp_path


def _normalize(registry_dir: Path, source: str, payload: dict[str, Any], topic: str) -> NormalizeResult:
    settings = adapter_settings(LorawanAdapter, {"source": source, "devices": "devices.csv"})
    resources = LorawanAdapter.open_resources(settings, base_dir=registry_dir, persistent=False)
    try:
        # The runtime's default tenant of the lorawan adapter is Dortmund: it must not leak in either.
        context = NormalizeContext(tenant="dortmund", settings=settings, resources=resources)
        return normalize_payload(LorawanAdapter.source(source), json.dumps(payload).encode(), context, origin=topic)
    finally:
        resources.close()


def _only_schwerte(entities: Sequence[Entity]) -> None:
    assert entities, "the uplink produced nothing: the test proves nothing"
    for entity in entities:
        assert tenant_of_entity(entity) == "schwerte", entity["id"]
        assert ":dortmund:" not in json.dumps(entity), entity["id"]
    ids = {entity["id"] for entity in entities}
    assert ids == {SCHWERTE.container_id, SCHWERTE.device_id}


def _crafted_chirpstack(sensor: Sensor) -> dict[str, Any]:
    uplink = chirpstack_up(readings([sensor], 1)[0])
    uplink["deviceInfo"].update(
        tenantName="dortmund",
        tenantId="dortmund",
        deviceName=DORTMUND.entity_id,  # the name of a Dortmund bin
        applicationName="dortmund",
    )
    uplink["tenant"] = "dortmund"  # an unknown top-level key, for good measure
    return uplink


def test_chirpstack_uplink_claiming_dortmund_stays_in_schwerte(registry_dir: Path) -> None:
    result = _normalize(
        registry_dir, "chirpstack-v4", _crafted_chirpstack(SCHWERTE), chirpstack_topic(SCHWERTE.dev_eui)
    )
    _only_schwerte(result.entities)
    assert result.rejections == []


@pytest.mark.parametrize(
    "app", ["dortmund-abfall@dortmund", "dortmund-abfall@ttn", "urn:ngsi-ld:WasteContainer:dortmund:x@dortmund"]
)
def test_tts_uplink_claiming_dortmund_in_topic_and_network_ids_stays_in_schwerte(registry_dir: Path, app: str) -> None:
    uplink = tts_up(readings([SCHWERTE], 1)[0], app=app)
    uplink["end_device_ids"]["device_id"] = DORTMUND.entity_id
    uplink["uplink_message"]["network_ids"] = {"net_id": "000013", "tenant_id": "dortmund", "cluster_id": "eu1"}
    topic = tts_topic(SCHWERTE, app=app).replace(SCHWERTE.entity_id, DORTMUND.entity_id)
    result = _normalize(registry_dir, "tts-v3", uplink, topic)
    _only_schwerte(result.entities)


def test_unknown_device_claiming_dortmund_writes_nothing(registry_dir: Path) -> None:
    stranger = Sensor(
        "AABBCCDDEEFF0011", SCHWERTE.model, DORTMUND.entity_id, "dortmund", "x", 7.4, 51.5, 1600, 300, "paper"
    )
    crafted = _crafted_chirpstack(stranger)
    result = _normalize(registry_dir, "chirpstack-v4", crafted, chirpstack_topic(stranger.dev_eui))
    assert result.entities == []
    assert [r.reason for r in result.rejections if "AABBCCDDEEFF0011" in r.reason.upper()], result.rejections


class _RecordingSink:
    """Takes what the push service writes, per tenant, as the outbox would."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, list[Entity]]] = []

    @property
    def description(self) -> str:
        return "recording"

    def write(self, tenant: str, source: str, entities: Sequence[Entity]) -> None:
        self.writes.append((tenant, list(entities)))

    def deliver(self, *, force: bool = False) -> DeliveryReport:
        return DeliveryReport()

    def close(self) -> None:
        return None


@pytest.fixture
def push_service(registry_dir: Path) -> Iterator[tuple[PushService, _RecordingSink]]:
    settings = adapter_settings(LorawanAdapter, {"source": "chirpstack-v4", "devices": "devices.csv"})
    resources = LorawanAdapter.open_resources(settings, base_dir=registry_dir, persistent=False)
    sink = _RecordingSink()
    service = PushService(
        adapter=LorawanAdapter,
        settings=settings,
        default_tenant="dortmund",
        resources=resources,
        sink=sink,
        dead_letter=DeadLetterFile(registry_dir / "dead-letter.ndjson"),
        on_commit=lambda: None,
    )
    try:
        yield service, sink
    finally:
        service.batcher.close()
        resources.close()


def test_the_push_service_routes_a_crafted_uplink_to_the_registry_tenant(
    push_service: tuple[PushService, _RecordingSink],
) -> None:
    service, sink = push_service
    honest = chirpstack_up(readings([DORTMUND], 1)[0])
    crafted = _crafted_chirpstack(SCHWERTE)
    service.flush(
        [
            Message(chirpstack_topic(DORTMUND.dev_eui), json.dumps(honest).encode()),
            Message(chirpstack_topic(SCHWERTE.dev_eui), json.dumps(crafted).encode()),
        ]
    )
    by_tenant = {tenant: {entity["id"] for entity in entities} for tenant, entities in sink.writes}
    assert by_tenant == {
        "dortmund": {DORTMUND.container_id, DORTMUND.device_id},
        "schwerte": {SCHWERTE.container_id, SCHWERTE.device_id},
    }

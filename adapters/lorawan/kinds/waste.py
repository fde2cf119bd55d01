"""Kind ``waste``: an ultrasonic sensor under the lid of a container -> ``WasteContainer``.

``fillingLevel`` = (empty distance - measured) / (empty distance - full distance), from the bin
geometry in the registry. A reading outside that range (a bag right under the sensor, an echo
from the bin wall) is clamped to 0..1 and the reason logged. A tilted sensor (EM310 ``tilt``)
means the lid is open: the distance then measures the sky, so the status says ``lidOpen`` and no
fill level is sent.
"""

from __future__ import annotations

import logging

from adapters.core.entities import Attribute, geo_point, make_entity, prop
from adapters.core.lorawan.pipeline import DeviceKind, KindContext, KindOutput, Reading, device_entity_id

__all__ = ["KIND", "filling_level"]

log = logging.getLogger("dos_adapters.lorawan.waste")


def filling_level(distance_mm: int, empty_mm: int, full_mm: int) -> tuple[float, str | None]:
    """The level 0..1 and, when the reading lies outside the bin geometry, why it was clamped."""
    raw = (empty_mm - distance_mm) / (empty_mm - full_mm)
    if raw < 0:
        return 0.0, f"distance {distance_mm} mm is beyond the bottom ({empty_mm} mm): clamped to empty"
    if raw > 1:
        return 1.0, f"distance {distance_mm} mm is above the fill line ({full_mm} mm): clamped to full"
    return round(raw, 3), None


def normalize(reading: Reading, context: KindContext) -> KindOutput:
    device, values, observed = reading.device, reading.values, reading.observed_at
    tilted = values.get("tilt") is True
    distance = values.get("distance_mm")
    if not tilted and not isinstance(distance, int):
        return KindOutput([])  # battery-only or device-info frame: only the Device entity changes
    attributes: dict[str, Attribute] = {
        "name": prop(device.name),
        "location": geo_point(device.lon, device.lat),  # type: ignore[arg-type]  # required for waste by the registry
        "storedWasteKind": prop(device.params["waste_kind"]),
        "status": prop("lidOpen" if tilted else "ok", observed_at=observed),
    }
    if not tilted and isinstance(distance, int):
        level, clamped = filling_level(distance, device.params["empty_distance_mm"], device.params["full_distance_mm"])
        if clamped:
            log.warning("%s (%s): %s", device.dev_eui, device.name, clamped)
        attributes["fillingLevel"] = prop(level, observed_at=observed, unit_code="C62")
    if isinstance(values.get("temperature"), float):
        attributes["temperature"] = prop(values["temperature"], observed_at=observed, unit_code="CEL")
    # The data model wants a list here; a Relationship with a list object is stored by QuantumLeap
    # only as raw JSON, so the list travels as a Property (docs/decisions/0006).
    attributes["refDevice"] = prop([device_entity_id(device)])
    return KindOutput([make_entity("WasteContainer", device.tenant, device.entity_id, attributes)])


KIND = DeviceKind(
    name="waste",
    entity_types=("WasteContainer",),
    controlled_property=("fillingLevel",),
    normalize=normalize,
)

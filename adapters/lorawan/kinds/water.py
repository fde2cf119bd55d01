"""Kind ``water``: an ultrasonic sensor looking down at a river (Schwerte flood protection) -> ``FloodMonitoring``.

The registry's ``empty_distance_mm`` is the sensor's height above the gauge zero (or river bed):

* ``measuredDistance`` = the distance to the water surface, m;
* ``referenceLevel`` = ``empty_distance_mm`` / 1000, m;
* ``currentLevel`` = ``referenceLevel`` - ``measuredDistance``, m (the official definition);
* ``alertLevel`` / ``dangerLevel`` = the registry's ``alert_level_m`` / ``danger_level_m``, when given;
* ``floodLevelStatus`` = ``Danger`` once ``currentLevel`` reaches ``dangerLevel``, else ``Alert`` once
  it reaches ``alertLevel``, else ``Normal``; absent when the station has neither threshold. The
  capitalised words are those of the official example and description. No hysteresis: each
  reading stands on its own, so a level right at a threshold may alternate between two states.

A distance beyond the reference would be a level below the gauge zero. Up to ``zero_tolerance_mm``
(ultrasonic noise over a dry bed) the level is clamped to 0.0 and the clamp logged; further, the
reading is rejected: the echo did not come from the water, or ``empty_distance_mm`` is wrong, and
a made-up 0.0 m would hide either. A tilted EM310 (knocked off its mount) does not point at the water:
rejected. A DL-MBX frame without valid samples carries no distance: no entity.
"""

from __future__ import annotations

import logging

from adapters.core.adapter import RecordRejected
from adapters.core.entities import Attribute, geo_point, make_entity, prop, relationship, utc_iso
from adapters.core.lorawan.pipeline import DeviceKind, KindContext, KindOutput, Reading, device_entity_id

__all__ = ["FLOOD_LEVEL_STATUSES", "KIND", "ZERO_TOLERANCE_MM", "flood_level_status"]

log = logging.getLogger("dos_adapters.lorawan.water")

ZERO_TOLERANCE_MM = 50
"""Default: how far beyond the reference a distance may be and still count as level 0.0 m."""
FLOOD_LEVEL_STATUSES = ("Normal", "Alert", "Danger")


def flood_level_status(level_m: float, alert_m: float | None, danger_m: float | None) -> str | None:
    """The status at ``level_m``; None when the station has no threshold to judge by."""
    if alert_m is None and danger_m is None:
        return None
    if danger_m is not None and level_m >= danger_m:
        return "Danger"
    if alert_m is not None and level_m >= alert_m:
        return "Alert"
    return "Normal"


def normalize(reading: Reading, context: KindContext) -> KindOutput:
    device, values, observed = reading.device, reading.values, reading.observed_at
    where = f"device {device.dev_eui} ({device.name})"
    if values.get("tilt") is True:
        raise RecordRejected(
            f"{where}: the sensor reports that it is tilted, so its distance is not measured to the water; "
            "reading not sent (check the mounting)"
        )
    distance = values.get("distance_mm")
    if not isinstance(distance, int):
        return KindOutput([])  # no valid sample, battery-only or device-info frame
    reference = device.params["empty_distance_mm"]
    level_mm = reference - distance
    if level_mm < 0:
        tolerance = context.settings.get("zero_tolerance_mm", ZERO_TOLERANCE_MM)
        if -level_mm > tolerance:
            raise RecordRejected(
                f"{where}: distance {distance} mm is {-level_mm} mm beyond the gauge zero (empty_distance_mm "
                f"{reference}), more than the {tolerance} mm tolerated; reading not sent (check empty_distance_mm "
                "in the device registry and whether something deflects the sensor's beam)"
            )
        log.warning(
            "%s: distance %d mm is %d mm beyond the gauge zero: level clamped to 0.0 m", where, distance, -level_mm
        )
        level_mm = 0
    level = level_mm / 1000
    alert, danger = device.params["alert_level_m"], device.params["danger_level_m"]
    attributes: dict[str, Attribute] = {
        "name": prop(device.name),
        "location": geo_point(device.lon, device.lat),  # type: ignore[arg-type]  # required for water by the registry
        "stationID": prop(device.entity_id),
        "observationDateTime": prop(utc_iso(observed)),
        "measuredDistance": prop(distance / 1000, observed_at=observed, unit_code="MTR"),
        "referenceLevel": prop(reference / 1000, unit_code="MTR"),
        "currentLevel": prop(level, observed_at=observed, unit_code="MTR"),
    }
    if alert is not None:
        attributes["alertLevel"] = prop(float(alert), unit_code="MTR")
    if danger is not None:
        attributes["dangerLevel"] = prop(float(danger), unit_code="MTR")
    status = flood_level_status(level, alert, danger)
    if status is not None:
        attributes["floodLevelStatus"] = prop(status, observed_at=observed)
    attributes["refDevice"] = relationship(device_entity_id(device))
    return KindOutput([make_entity("FloodMonitoring", device.tenant, device.entity_id, attributes)])


KIND = DeviceKind(
    name="water",
    entity_types=("FloodMonitoring",),
    controlled_property=("waterLevel",),
    normalize=normalize,
    config_properties={
        "zero_tolerance_mm": {
            "type": "integer",
            "minimum": 0,
            "default": ZERO_TOLERANCE_MM,
            "description": "A distance up to this far beyond empty_distance_mm counts as level 0.0 m (sensor noise "
            "over a dry bed); a larger one is rejected.",
        },
    },
)

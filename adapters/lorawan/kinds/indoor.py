"""Kind ``indoor``: a CO2 sensor in a classroom ("Smarte Schulen") -> ``IndoorEnvironmentObserved``.

Mapping (Elsys ERS CO2, decoded by ``adapters.core.lorawan.decoders``):

* ``co2`` -> ``co2``: ppm as the sensor reports it, unitCode ``59`` (docs/decisions/0004-co2-in-ppm.md),
  and ``airQualityLevel``: the school traffic light ``good`` / ``ventilate`` / ``unacceptable``
  (:func:`air_quality_level`);
* ``temperature`` -> ``temperature``: °C, unitCode ``CEL``; below 0 °C the uplink is rejected;
* ``relative_humidity`` -> ``relativeHumidity``: a fraction 0..1 (the sensor sends %), unitCode ``C62``;
* ``illuminance`` -> ``illuminance``: lux, unitCode ``LUX``;
* ``motion`` -> nothing: a PIR event count since the previous uplink, not a number of people, so no
  ``peopleCount`` is derived from it.

Every quantity is sent as a JSON float (QuantumLeap fixes a column's type with its first row).
A frame without any of these quantities (battery or motion only) yields no entity.

Which building: the registry's ``building_id``; without one, the building whose footprint covers the
device's position in ``buildings_file`` (the NDJSON output of the buildings adapter; see
``adapters.buildings.index`` for shared walls and ``max_distance_m``). It is linked as
``refPointOfInterest`` to ``urn:ngsi-ld:Building:<tenant>:<building_id>``.
Where: the device's own ``lon``/``lat``, else the position of its building (kind setting ``buildings``
``{building_id: [lon, lat]}``, then ``buildings_file``), else the uplink is rejected with the fix named.
``name`` is the device (room) name.

Traffic light (Umweltbundesamt, CO2 in indoor air): below 1000 ppm hygienically harmless
(``good``), 1000 to 2000 ppm conspicuous, ventilate (``ventilate``), above 2000 ppm unacceptable
(``unacceptable``). The attribute is the Smart Data Models ``airQualityLevel`` (dataModel.Environment,
in the IndoorEnvironmentObserved @context), with these three values; both limits are settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from adapters.core.adapter import RecordRejected
from adapters.core.entities import Attribute, entity_id, geo_point, make_entity, prop, relationship, utc_iso
from adapters.core.lorawan.pipeline import DeviceKind, KindContext, KindOutput, Reading, device_entity_id
from adapters.core.lorawan.registry import Device

if TYPE_CHECKING:
    from adapters.buildings.index import BuildingIndex

__all__ = ["AIR_QUALITY_LEVELS", "CO2_UNACCEPTABLE", "CO2_VENTILATE", "KIND", "air_quality_level"]

CO2_VENTILATE = 1000
"""Default: from this CO2 (ppm, inclusive) the level is ``ventilate``."""
CO2_UNACCEPTABLE = 2000
"""Default: above this CO2 (ppm, exclusive) the level is ``unacceptable``."""
AIR_QUALITY_LEVELS = ("good", "ventilate", "unacceptable")

# The decoded keys that make an IndoorEnvironmentObserved worth sending.
_INDOOR_QUANTITIES = ("co2", "temperature", "relative_humidity", "illuminance")


def air_quality_level(co2_ppm: float, ventilate: int = CO2_VENTILATE, unacceptable: int = CO2_UNACCEPTABLE) -> str:
    """``good`` below ``ventilate``, ``ventilate`` from it up to ``unacceptable`` inclusive, then
    ``unacceptable``: with the defaults 999 good, 1000 and 2000 ventilate, 2001 unacceptable."""
    if co2_ppm > unacceptable:
        return "unacceptable"
    if co2_ppm >= ventilate:
        return "ventilate"
    return "good"


def _thresholds(settings: Mapping[str, Any]) -> tuple[int, int]:
    ventilate = settings.get("co2_ventilate", CO2_VENTILATE)
    unacceptable = settings.get("co2_unacceptable", CO2_UNACCEPTABLE)
    if ventilate > unacceptable:
        # The config schema cannot compare two keys; a kind has no start-up check, so say it here.
        raise RecordRejected(
            f"settings: [adapters.lorawan.indoor] co2_ventilate {ventilate} is above co2_unacceptable "
            f"{unacceptable}; set co2_ventilate <= co2_unacceptable"
        )
    return ventilate, unacceptable


def _index(settings: Mapping[str, Any]) -> BuildingIndex | None:
    path = settings.get("buildings_file")
    if not path:
        return None
    from adapters.buildings.index import BuildingIndexError, load_building_index  # shapely: only when configured

    try:
        return load_building_index(path)
    except BuildingIndexError as error:
        raise RecordRejected(f"settings: [adapters.lorawan.indoor] buildings_file: {error}") from None


def _building(device: Device, settings: Mapping[str, Any]) -> str:
    """The local id of the device's building: from the registry, else by its position in the footprints."""
    if device.params.get("building_id"):
        return str(device.params["building_id"])
    index = _index(settings)
    if index is None or device.lon is None or device.lat is None:
        raise RecordRejected(
            f"device {device.dev_eui} ({device.name}): no building: set building_id in the device registry, "
            "or its lon/lat and [adapters.lorawan.indoor] buildings_file (the buildings adapter's output)"
        )

    hit = index.building_of(
        device.lon, device.lat, tenant=device.tenant, max_distance_m=float(settings.get("max_distance_m", 0.0))
    )
    if hit is None:
        raise RecordRejected(
            f"device {device.dev_eui} ({device.name}): no building footprint in buildings_file covers "
            f"({device.lon}, {device.lat}); set building_id in the device registry or raise max_distance_m"
        )
    return hit.local_id


def _position(device: Device, building: str, settings: Mapping[str, Any]) -> tuple[float, float]:
    if device.lon is not None and device.lat is not None:
        return device.lon, device.lat
    buildings = settings.get("buildings") or {}
    if building in buildings:
        lon, lat = buildings[building]
        return float(lon), float(lat)
    index = _index(settings)
    position = index.position_of(building, device.tenant) if index is not None else None
    if position is not None:
        return position
    raise RecordRejected(
        f"device {device.dev_eui} ({device.name}): no position: set its lon and lat in the device registry, "
        f'or its building\'s position in the settings: [adapters.lorawan.indoor.buildings] "{building}" = [lon, lat]'
    )


def normalize(reading: Reading, context: KindContext) -> KindOutput:
    device, values, observed = reading.device, reading.values, reading.observed_at
    if not any(isinstance(values.get(key), int | float) for key in _INDOOR_QUANTITIES):
        return KindOutput([])  # battery / motion only: only the Device entity changes
    temperature = values.get("temperature")
    if isinstance(temperature, float) and temperature < 0:
        # Below the ERS CO2's operating range (0..50 °C) and impossible in a used room: the sensor is
        # outdoors, in storage or broken, so its CO2 is not trustworthy either. The SDM schema
        # (temperature minimum 0) would refuse the entity anyway.
        raise RecordRejected(
            f"device {device.dev_eui} ({device.name}): temperature {temperature:.1f} °C is below 0 °C, "
            "implausible indoors and below the sensor's operating range; reading not sent (check where the "
            "sensor is and whether it works)"
        )
    ventilate, unacceptable = _thresholds(context.settings)
    building = _building(device, context.settings)
    lon, lat = _position(device, building, context.settings)
    attributes: dict[str, Attribute] = {
        "name": prop(device.name),
        "location": geo_point(lon, lat),
        "dateObserved": prop(utc_iso(observed)),
    }
    co2 = values.get("co2")
    if isinstance(co2, int | float):
        attributes["co2"] = prop(float(co2), observed_at=observed, unit_code="59")
        level = air_quality_level(co2, ventilate, unacceptable)
        attributes["airQualityLevel"] = prop(level, observed_at=observed)
    if isinstance(temperature, float):
        attributes["temperature"] = prop(temperature, observed_at=observed, unit_code="CEL")
    humidity = values.get("relative_humidity")
    if isinstance(humidity, int | float):
        attributes["relativeHumidity"] = prop(round(humidity / 100, 4), observed_at=observed, unit_code="C62")
    illuminance = values.get("illuminance")
    if isinstance(illuminance, int | float):
        attributes["illuminance"] = prop(float(illuminance), observed_at=observed, unit_code="LUX")
    attributes["refPointOfInterest"] = relationship(entity_id("Building", device.tenant, building))
    attributes["refDevice"] = relationship(device_entity_id(device))
    return KindOutput([make_entity("IndoorEnvironmentObserved", device.tenant, device.entity_id, attributes)])


_LON_LAT = {
    "type": "array",
    "prefixItems": [
        {"type": "number", "minimum": -180, "maximum": 180},
        {"type": "number", "minimum": -90, "maximum": 90},
    ],
    "minItems": 2,
    "maxItems": 2,
}

KIND = DeviceKind(
    name="indoor",
    entity_types=("IndoorEnvironmentObserved",),
    # Device.controlledProperty enum: CO2 is airPollution; the PIR count is not published.
    controlled_property=("airPollution", "temperature", "humidity", "light"),
    normalize=normalize,
    config_properties={
        "co2_ventilate": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10000,
            "default": CO2_VENTILATE,
            "description": "CO2 (ppm) from which airQualityLevel is 'ventilate' (Umweltbundesamt: 1000).",
        },
        "co2_unacceptable": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10000,
            "default": CO2_UNACCEPTABLE,
            "description": "CO2 (ppm) above which airQualityLevel is 'unacceptable' (Umweltbundesamt: 2000); "
            "at least co2_ventilate.",
        },
        "buildings_file": {
            "type": "string",
            "minLength": 1,
            "description": "NDJSON entity file with the Building footprints (the buildings adapter's output): "
            "the building of a device without building_id, and the position of one without lon/lat.",
        },
        "max_distance_m": {
            "type": "number",
            "minimum": 0,
            "default": 0,
            "description": "A device this close to a footprint (m) but outside every one belongs to the nearest.",
        },
        "buildings": {
            "type": "object",
            "description": "Position [lon, lat] (WGS84) per building_id, for indoor devices registered without "
            "lon/lat.",
            "propertyNames": {"pattern": "^[A-Za-z0-9._~-]+$"},
            "additionalProperties": _LON_LAT,
        },
    },
)

"""Kind ``soil``: a soil probe at a city tree (smart irrigation; Dragino LSE01) -> ``DeviceMeasurement``.

One entity per quantity, ``urn:ngsi-ld:DeviceMeasurement:<tenant>:<entity_id>-<measurementType>``, so
each quantity keeps its own history (docs/decisions/0005-soil-as-devicemeasurement.md):

=====================  ===================  ====================  ========  =================================
decoded key            measurementType      controlledProperty    unit      meaning
=====================  ===================  ====================  ========  =================================
``soil_moisture``      soilMoisture         soilMoisture          P1 (%)    volumetric water content
``soil_temperature``   soilTemperature      temperature           CEL       temperature in the soil
``soil_conductivity``  soilConductivity     conductivity          G42       electrical conductivity, µS/cm
``temperature``        externalTemperature  temperature           CEL       optional DS18B20 probe on the cable
=====================  ===================  ====================  ========  =================================

``controlledProperty`` uses the words of the Device ``controlledProperty`` enum; ``measurementType``
tells the two temperatures apart. ``numValue`` is always a JSON float, ``unit`` repeats the
UN/CEFACT code of its ``unitCode`` (QuantumLeap drops ``unitCode``). A quantity the frame does not
carry (the DS18B20 when none is fitted) gets no entity. ``location`` is the device's position when
the registry has one (it is optional for soil).
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.core.entities import Attribute, Entity, geo_point, make_entity, prop, relationship, utc_iso
from adapters.core.lorawan.pipeline import DeviceKind, KindContext, KindOutput, Reading, device_entity_id

__all__ = ["KIND", "QUANTITIES", "SoilQuantity"]


@dataclass(frozen=True)
class SoilQuantity:
    key: str
    """Decoded value key (adapters.core.lorawan.decoders)."""
    measurement_type: str
    """``measurementType`` and the suffix of the entity's local id."""
    controlled_property: str
    unit_code: str
    label: str
    """Appended to the device name in ``name``."""


QUANTITIES = (
    SoilQuantity("soil_moisture", "soilMoisture", "soilMoisture", "P1", "soil moisture"),
    SoilQuantity("soil_temperature", "soilTemperature", "temperature", "CEL", "soil temperature"),
    SoilQuantity("soil_conductivity", "soilConductivity", "conductivity", "G42", "soil conductivity"),
    SoilQuantity("temperature", "externalTemperature", "temperature", "CEL", "external probe temperature"),
)


def _measurement(reading: Reading, quantity: SoilQuantity, value: float) -> Entity:
    device, observed = reading.device, reading.observed_at
    attributes: dict[str, Attribute] = {"name": prop(f"{device.name}: {quantity.label}")}
    if device.lon is not None and device.lat is not None:
        attributes["location"] = geo_point(device.lon, device.lat)
    attributes.update(
        dateObserved=prop(utc_iso(observed)),
        controlledProperty=prop(quantity.controlled_property),
        measurementType=prop(quantity.measurement_type),
        numValue=prop(value, observed_at=observed, unit_code=quantity.unit_code),
        unit=prop(quantity.unit_code),
        refDevice=relationship(device_entity_id(device)),
    )
    local_id = f"{device.entity_id}-{quantity.measurement_type}"
    return make_entity("DeviceMeasurement", device.tenant, local_id, attributes)


def normalize(reading: Reading, context: KindContext) -> KindOutput:
    entities = []
    for quantity in QUANTITIES:
        value = reading.values.get(quantity.key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            entities.append(_measurement(reading, quantity, float(value)))
    return KindOutput(entities)


KIND = DeviceKind(
    name="soil",
    entity_types=("DeviceMeasurement",),
    controlled_property=("soilMoisture", "temperature", "conductivity"),
    normalize=normalize,
)

"""Device kinds: how a decoded reading of each kind of sensor becomes its Smart Data Models entity."""

from collections.abc import Mapping
from types import MappingProxyType

from adapters.core.lorawan.pipeline import DeviceKind
from adapters.lorawan.kinds import indoor, parking, soil, waste, water

KINDS: Mapping[str, DeviceKind] = MappingProxyType(
    {kind.name: kind for kind in (waste.KIND, parking.KIND, indoor.KIND, water.KIND, soil.KIND)}
)

__all__ = ["KINDS"]

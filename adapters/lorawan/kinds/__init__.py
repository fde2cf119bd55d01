"""Device kinds: how a decoded reading of each kind of sensor becomes its Smart Data Models entity."""

from collections.abc import Mapping
from types import MappingProxyType

from adapters.core.lorawan.pipeline import DeviceKind
from adapters.lorawan.kinds import waste

KINDS: Mapping[str, DeviceKind] = MappingProxyType({kind.name: kind for kind in (waste.KIND,)})

__all__ = ["KINDS"]

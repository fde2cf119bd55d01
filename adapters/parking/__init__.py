"""Parking adapter: car-park and P+R occupancy as Smart Data Models ``OffStreetParking``."""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.core.adapter import Adapter, Governance, SourceKind
from adapters.parking.dortmund_parkhaeuser import SOURCE as DORTMUND_PARKHAEUSER

__all__ = ["ParkingAdapter"]


class ParkingAdapter(Adapter):
    name = "parking"
    title = "Car parks and P+R sites (occupancy, capacity, status)"
    mode = "poll"
    sources: ClassVar[tuple[SourceKind, ...]] = (DORTMUND_PARKHAEUSER,)
    default_tenant = "dortmund"
    governance: ClassVar[dict[str, Governance]] = {
        DORTMUND_PARKHAEUSER.name: Governance(
            publisher="Stadt Dortmund",
            licence="http://dcat-ap.de/def/licenses/dl-zero-de/2.0",
            attribution="Stadt Dortmund, Parkleitsystem (open-data.dortmund.de, Datenlizenz Deutschland Zero 2.0)",
            update_frequency="5MIN",
            personal_data="none",
            access="open",
        ),
    }
    # The Parkleitsystem refreshes about every minute; 2 minutes keeps the load on the portal low.
    default_interval = 120
    config_properties: ClassVar[dict[str, Any]] = {
        "almost_full": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.9,
            "description": "Occupancy from which status also says almostFull.",
        },
        "data_provider": {
            "type": "string",
            "default": "Stadt Dortmund",
            "description": "dataProvider of every entity.",
        },
        "locations": {
            "type": "object",
            "description": "Positions [lon, lat] (WGS84) for garages the feed sends without coordinates, by feed id.",
            "additionalProperties": {
                "type": "array",
                "prefixItems": [
                    {"type": "number", "minimum": -180, "maximum": 180},
                    {"type": "number", "minimum": -90, "maximum": 90},
                ],
                "minItems": 2,
                "maxItems": 2,
            },
            "default": {},
        },
    }

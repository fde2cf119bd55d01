"""Waste adapter: depot-container sites as Smart Data Models ``WasteContainer``, and the collection tour.

The containers' fill levels come from the LoRaWAN adapter (kind ``waste``, same entity type, other
ids); ``dos-adapters waste due`` lists the bins whose ``fillingLevel`` says they need emptying.
"""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.core.adapter import Adapter, Governance, SourceKind
from adapters.waste.edg_containers import DATA_PROVIDER
from adapters.waste.edg_containers import SOURCE as EDG_CONTAINERS

__all__ = ["DEFAULT_DUE_THRESHOLD", "WasteAdapter"]

DEFAULT_DUE_THRESHOLD = 0.8


class WasteAdapter(Adapter):
    name = "waste"
    title = "Waste containers: EDG depot-container sites (glass, paper); bins due for emptying"
    mode = "poll"
    sources: ClassVar[tuple[SourceKind, ...]] = (EDG_CONTAINERS,)
    default_tenant = "dortmund"
    governance: ClassVar[dict[str, Governance]] = {
        EDG_CONTAINERS.name: Governance(
            publisher="Stadt Dortmund",
            licence="http://dcat-ap.de/def/licenses/dl-zero-de/2.0",
            attribution="EDG Entsorgung Dortmund GmbH (open-data.dortmund.de, Datenlizenz Deutschland Zero 2.0)",
            update_frequency="IRREG",
            personal_data="none",
            access="open",
        ),
    }
    # The container sites change a few times a year; once a day is plenty.
    default_interval = 86400
    config_properties: ClassVar[dict[str, Any]] = {
        # Off unless switched on: installing the package must not start polling a new source, and
        # 'waste due' works without it (it reads the broker or an entity file).
        "enabled": {"type": "boolean", "default": False, "description": "Poll the EDG container sites."},
        "due_threshold": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": DEFAULT_DUE_THRESHOLD,
            "description": "fillingLevel (0..1) from which 'dos-adapters waste due' lists a bin for emptying.",
        },
        "category": {
            "type": "array",
            "items": {"enum": ["fixed", "ground", "other", "portable", "underground"]},
            "uniqueItems": True,
            "default": ["ground"],
            "description": "WasteContainer category of every depot container; [] leaves the attribute out.",
        },
        "data_provider": {
            "type": "string",
            "minLength": 1,
            "default": DATA_PROVIDER,
            "description": "dataProvider of every entity.",
        },
    }

"""Water-level adapter: river and canal gauges as Smart Data Models ``WaterObserved``, with flood ``Alert``s.

An adapter per kind of observation (water, air, weather) rather than one ``environment`` adapter
with three sources: each source has its own schedule, endpoint and on/off switch, and the core runs
one source per adapter. A second water-level source (Ruhrverband, LANUV) would be a second source
kind here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from adapters.core.adapter import Adapter, Governance, SourceKind
from adapters.core.alerts import THRESHOLDS_SCHEMA, AlertStore, check_thresholds
from adapters.waterlevel.pegelonline import DATA_PROVIDER, DEFAULT_HYSTERESIS, DEFAULT_MAX_AGE
from adapters.waterlevel.pegelonline import SOURCE as PEGELONLINE

__all__ = ["WaterlevelAdapter"]


class WaterlevelAdapter(Adapter):
    name = "waterlevel"
    title = "Water levels and discharge at river and canal gauges; flood warnings by threshold"
    mode = "poll"
    sources: ClassVar[tuple[SourceKind, ...]] = (PEGELONLINE,)
    default_tenant = "dortmund"
    governance: ClassVar[dict[str, Governance]] = {
        PEGELONLINE.name: Governance(
            publisher="Stadt Dortmund",
            licence="http://dcat-ap.de/def/licenses/dl-zero-de/2.0",
            attribution="Wasserstraßen- und Schifffahrtsverwaltung des Bundes (WSV), PEGELONLINE",
            update_frequency="15MIN",
            personal_data="none",
            access="open",
        ),
    }
    # PEGELONLINE measures every 15 minutes; polling every 5 catches a new value within 5 minutes,
    # which is what an early warning needs, at one small request per poll.
    default_interval = 300
    config_properties: ClassVar[dict[str, Any]] = {
        # Off unless switched on: installing the package must not start polling a new source.
        "enabled": {"type": "boolean", "default": False, "description": "Poll PEGELONLINE."},
        "waters": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": [],
            "description": "Keep only stations on these waters (short or long name, e.g. RUHR, DEK); [] keeps all.",
        },
        "stations": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "default": [],
            "description": "Keep only these stations (UUID, number or name); [] keeps all.",
        },
        "max_age": {
            "type": "integer",
            "minimum": 0,
            "default": DEFAULT_MAX_AGE,
            "description": "Seconds after which a measurement is stale and left out; 0 = never.",
        },
        "locations": {
            "type": "object",
            "description": "Positions [lon, lat] (WGS84) of stations sent without any, by UUID, number or name.",
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
        "alerts": {
            "type": "object",
            "description": "Warning and alarm water levels in metres above the gauge zero, by station.",
            "additionalProperties": THRESHOLDS_SCHEMA,
            "default": {},
        },
        "alert_hysteresis": {
            "type": "number",
            "minimum": 0,
            "default": DEFAULT_HYSTERESIS,
            "description": "Metres below a threshold the level must fall before its alert ends.",
        },
        "state_path": {
            "type": "string",
            "default": "var/waterlevel-state.sqlite",
            "description": "Alert levels per station, kept across restarts.",
        },
        "data_provider": {
            "type": "string",
            "minLength": 1,
            "default": DATA_PROVIDER,
            "description": "dataProvider of every entity.",
        },
    }

    @classmethod
    def open_resources(cls, settings: Mapping[str, Any], *, base_dir: Path, persistent: bool) -> AlertStore | None:
        """The alert memory, when thresholds are configured (checked here, every problem at once)."""
        alerts = settings.get("alerts") or {}
        if not alerts:
            return None
        check_thresholds(
            ((f"adapters.waterlevel.alerts.{station}", table) for station, table in alerts.items()),
            settings.get("alert_hysteresis", DEFAULT_HYSTERESIS),
        )
        return AlertStore(base_dir / settings["state_path"] if persistent else None)

    @classmethod
    def offline_settings(cls, settings: Mapping[str, Any]) -> Mapping[str, Any]:
        """The recorded sample is days old by now; replayed, it must not count as stale."""
        return {**settings, "max_age": 0}

"""Air-quality adapter: citizen sensors as Smart Data Models ``AirQualityObserved``, with pollution ``Alert``s."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from adapters.airquality.sensor_community import DATA_PROVIDER, DEFAULT_HYSTERESIS
from adapters.airquality.sensor_community import SOURCE as SENSOR_COMMUNITY
from adapters.core.adapter import Adapter, Governance, SourceKind
from adapters.core.alerts import THRESHOLDS_SCHEMA, AlertStore, check_thresholds

__all__ = ["AirqualityAdapter"]


class AirqualityAdapter(Adapter):
    name = "airquality"
    title = "Air quality from citizen sensors (PM10, PM2.5, temperature, humidity, pressure); pollution alerts"
    mode = "poll"
    sources: ClassVar[tuple[SourceKind, ...]] = (SENSOR_COMMUNITY,)
    default_tenant = "dortmund"
    governance: ClassVar[dict[str, Governance]] = {
        SENSOR_COMMUNITY.name: Governance(
            publisher="Stadt Dortmund",
            # ODbL share-alike: a database derived from sensor.community data is published under the ODbL.
            licence="http://dcat-ap.de/def/licenses/odbl",
            attribution="sensor.community contributors, ODbL",
            update_frequency="5MIN",
            personal_data="none",
            access="open",
        ),
    }
    # The area endpoint covers the last five minutes and sensors send about every 145 s.
    default_interval = 300
    config_properties: ClassVar[dict[str, Any]] = {
        # Off unless switched on: installing the package must not start polling a new source.
        "enabled": {"type": "boolean", "default": False, "description": "Poll sensor.community."},
        "include_indoor": {
            "type": "boolean",
            "default": False,
            "description": "Also publish sensors their owners marked as indoor (typeofLocation indoor).",
        },
        "alerts": {
            "type": "object",
            "description": "Warning and alarm levels in µg/m³ per sensor.community location id, for pm10 and pm25.",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {"pm10": THRESHOLDS_SCHEMA, "pm25": THRESHOLDS_SCHEMA},
            },
            "default": {},
        },
        "alert_hysteresis": {
            "type": "number",
            "minimum": 0,
            "default": DEFAULT_HYSTERESIS,
            "description": "µg/m³ below a threshold a value must fall before its alert ends.",
        },
        "state_path": {
            "type": "string",
            "default": "var/airquality-state.sqlite",
            "description": "Alert levels per location and pollutant, kept across restarts.",
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
            (
                (f"adapters.airquality.alerts.{location}.{pollutant}", table)
                for location, pollutants in alerts.items()
                for pollutant, table in pollutants.items()
            ),
            settings.get("alert_hysteresis", DEFAULT_HYSTERESIS),
        )
        return AlertStore(base_dir / settings["state_path"] if persistent else None)

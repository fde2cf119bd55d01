"""Weather adapter: current observations of the DWD's weather stations as Smart Data Models ``WeatherObserved``."""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.core.adapter import Adapter, Governance, SourceKind
from adapters.weather.brightsky import DATA_PROVIDER
from adapters.weather.brightsky import SOURCE as BRIGHTSKY

__all__ = ["WeatherAdapter"]


class WeatherAdapter(Adapter):
    name = "weather"
    title = "Current weather at the nearest DWD station (temperature, humidity, pressure, wind, precipitation)"
    mode = "poll"
    sources: ClassVar[tuple[SourceKind, ...]] = (BRIGHTSKY,)
    default_tenant = "dortmund"
    governance: ClassVar[dict[str, Governance]] = {
        BRIGHTSKY.name: Governance(
            publisher="Stadt Dortmund",
            licence="http://dcat-ap.de/def/licenses/cc-by/4.0",
            attribution="Quelle: Deutscher Wetterdienst (via Bright Sky)",
            update_frequency="HOURLY",
            personal_data="none",
            access="open",
        ),
    }
    # SYNOP stations report every 10 minutes (wind, precipitation) to hourly (the rest).
    default_interval = 600
    config_properties: ClassVar[dict[str, Any]] = {
        # Off unless switched on: installing the package must not start polling a new source.
        "enabled": {"type": "boolean", "default": False, "description": "Poll Bright Sky."},
        "data_provider": {
            "type": "string",
            "minLength": 1,
            "default": DATA_PROVIDER,
            "description": "dataProvider of every entity.",
        },
    }

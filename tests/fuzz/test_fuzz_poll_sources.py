"""Fuzzed payloads of every polled source kind, through ``normalize_payload`` as ``run`` calls it.

Each source kind gets 10,000 generated payloads grown from its recorded sample and recorded cases:
JSON sources with structure-aware edits and byte damage, CSV exports with column, quoting, encoding
and formula damage, GeoJSON inventories with broken geometries and CRS declarations.
"""

from __future__ import annotations

from typing import Any

import pytest
from fuzz_support import (
    PayloadMaker,
    assert_clean,
    broker_refusals,
    csv_cases,
    formats_balanced,
    inventory_cases,
    json_cases,
    official_schema_problems,
    run_fuzz,
    seeds,
)

from adapters.airquality import AirqualityAdapter
from adapters.buildings import BuildingsAdapter
from adapters.core.adapter import Adapter
from adapters.parking import ParkingAdapter
from adapters.waste import WasteAdapter
from adapters.waterlevel import WaterlevelAdapter
from adapters.weather import WeatherAdapter

CASES_PER_PARSER = 10_000

SOURCES: list[Any] = [
    # adapter, source kind, how its payloads are damaged, fixed seed
    (ParkingAdapter, "dortmund-parkhaeuser", json_cases, 101),
    (WasteAdapter, "edg-containers", json_cases, 102),
    (WaterlevelAdapter, "pegelonline", json_cases, 103),
    (AirqualityAdapter, "sensor-community", json_cases, 104),
    (WeatherAdapter, "brightsky", json_cases, 105),
    (BuildingsAdapter, "buildings", inventory_cases, 106),
    (BuildingsAdapter, "building-meters", csv_cases, 107),
]


@pytest.mark.parametrize(
    ("adapter", "source_name", "make_payload", "seed"), SOURCES, ids=[source[1] for source in SOURCES]
)
def test_damaged_payloads_become_valid_entities_or_rejections_with_reasons(
    adapter: type[Adapter], source_name: str, make_payload: PayloadMaker, seed: int
) -> None:
    seed_list = seeds(adapter, source_name)
    assert len(seed_list) >= 2, "the sample and at least one recorded case seed the fuzz"
    if source_name == "buildings":
        seed_list = formats_balanced(seed_list)
    tally = run_fuzz(seed_list, make_payload, cases=CASES_PER_PARSER, seed=seed)
    assert tally.cases == CASES_PER_PARSER
    assert tally.unreadable < CASES_PER_PARSER / 2, "most damaged payloads still carry records to normalise"
    assert_clean(tally, at_least_entities=CASES_PER_PARSER // 20)


def test_every_polled_source_kind_is_fuzzed() -> None:
    """A new source kind must join SOURCES (or this fails): no parser goes unfuzzed."""
    from adapters.core.adapter import discover_adapters

    polled = {
        source.name for adapter in discover_adapters().values() if adapter.mode == "poll" for source in adapter.sources
    }
    assert polled == {source[1] for source in SOURCES}


def test_the_yardsticks_refuse_what_they_must() -> None:
    """Guards assert_clean against passing vacuously: the official schema and the broker double do refuse."""
    seed = seeds(WeatherAdapter, "brightsky")[0]
    tally = run_fuzz([seed], lambda mutator, chosen: chosen.payload, cases=1, seed=0)
    (entity,) = tally.sample
    assert official_schema_problems([entity]) == []
    assert broker_refusals([entity]) == []
    percent = {**entity, "relativeHumidity": {**entity["relativeHumidity"], "value": 72.0}}
    assert official_schema_problems([percent]), "relativeHumidity is 0..1 in the official schema"
    bad_time = {**entity, "temperature": {**entity["temperature"], "observedAt": "yesterday"}}
    assert broker_refusals([bad_time]), "Orion-LD refuses an observedAt that is not ISO 8601"

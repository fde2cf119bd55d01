"""German building uses (Nutzung) -> the Smart Data Models ``Building.category`` enum.

The SDM enum follows OpenStreetMap's ``building=*`` values. It has ``school``, ``kindergarten``,
``office``, ``university``, ``hospital`` …, but no fire station, town hall, sports hall or
library; for those the OSM wiki's generic values apply: ``public`` ("a building constructed as
accessible to the public: town hall, police station, court house") and ``civic`` ("basically the
same meaning", used here for cultural and sports buildings). The table is ordered: the first rule
whose keyword occurs in the folded text wins, so ``Volkshochschule`` and ``Hochschule`` come
before ``schule``, and ``Verwaltung`` before the uses an administration building is named after.

A use the table does not know is rejected naming the setting that maps it
(``[adapters.buildings.categories]``, exact text -> list of enum values; checked first).
An inventory that already writes SDM values (``school``) is taken as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapters.buildings.tables import fold

__all__ = ["RULES", "SDM_CATEGORIES", "CategoryRule", "UnknownCategory", "categories_of"]

# Smart Data Models Building.category (dataModel.Building, schema 0.0.3), in the schema's order.
SDM_CATEGORIES: tuple[str, ...] = (
    "apartments", "bakehouse", "barn", "bridge", "bungalow", "bunker", "cathedral", "cabin", "carport",
    "cemetery", "chapel", "church", "civic", "commercial", "conservatory", "construction", "cowshed",
    "detached", "digester", "dormitory", "farm", "farm_auxiliary", "garage", "garages", "garbage_shed",
    "grandstand", "greenhouse", "hangar", "hospital", "hotel", "house", "houseboat", "hut", "industrial",
    "kindergarten", "kiosk", "mosque", "office", "parking", "pavilion", "public", "residential", "retail",
    "riding_hall", "roof", "ruins", "school", "service", "shed", "shrine", "stable", "stadium",
    "static_caravan", "sty", "synagogue", "temple", "terrace", "train_station", "transformer_tower",
    "transportation", "university", "warehouse", "water_tower",
)  # fmt: skip
_SDM = frozenset(SDM_CATEGORIES)


@dataclass(frozen=True)
class CategoryRule:
    keywords: tuple[str, ...]
    """Folded words (see :func:`adapters.buildings.tables.fold`), matched as substrings."""
    categories: tuple[str, ...]


RULES: tuple[CategoryRule, ...] = (
    CategoryRule(("kindertages", "kita", "kindergarten", "familienzentrum"), ("kindergarten",)),
    CategoryRule(("volkshochschule",), ("school",)),
    CategoryRule(("hochschule", "universitaet"), ("university",)),
    CategoryRule(("schule", "gymnasium", "berufskolleg", "schulzentrum"), ("school",)),
    CategoryRule(("feuerwehr", "feuerwache", "geraetehaus", "rettungswache"), ("public",)),
    CategoryRule(("polizei",), ("public",)),
    CategoryRule(("rathaus",), ("public", "office")),
    CategoryRule(("buergeramt", "buergerbuero", "buergerdienste"), ("public",)),
    CategoryRule(("verwaltung", "buero", "dienstgebaeude", "stadthaus", "amtsgebaeude"), ("office",)),
    CategoryRule(("turnhalle", "sporthalle", "mehrzweckhalle", "hallenbad", "schwimm", "freibad"), ("civic",)),
    CategoryRule(("bibliothek", "buecherei", "museum", "theater", "opernhaus", "konzerthaus"), ("civic",)),
    CategoryRule(
        (
            "jugendzentrum",
            "jugendfreizeit",
            "jugendtreff",
            "jugendhaus",
            "buergerhaus",
            "begegnung",
            "gemeinschaftshaus",
            "seniorenzentrum",
        ),
        ("civic",),
    ),
    CategoryRule(("krankenhaus", "klinik"), ("hospital",)),
    CategoryRule(("wohnheim",), ("dormitory",)),
    CategoryRule(("unterkunft", "wohngebaeude", "wohnhaus", "wohnung"), ("residential",)),
    CategoryRule(("tiefgarage", "parkhaus"), ("parking",)),
    CategoryRule(("garage",), ("garage",)),
    CategoryRule(("betriebshof", "bauhof", "werkstatt", "klaeranlage"), ("industrial",)),
    CategoryRule(("lager", "magazin"), ("warehouse",)),
    CategoryRule(("trauerhalle", "kapelle"), ("chapel",)),
    CategoryRule(("kirche",), ("church",)),
    CategoryRule(("stadion",), ("stadium",)),
    CategoryRule(("bahnhof",), ("train_station",)),
    CategoryRule(("umspann", "trafostation"), ("transformer_tower",)),
    CategoryRule(("gewaechshaus",), ("greenhouse",)),
)


class UnknownCategory(ValueError):
    """The use is in neither the settings nor the table; the message says how to map it."""


def categories_of(text: str, overrides: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """SDM categories for a use as written in the inventory; UnknownCategory when there is no mapping."""
    folded = fold(text)
    for key, mapped in (overrides or {}).items():
        if fold(key) == folded:
            return list(dict.fromkeys(mapped))
    as_written = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    if as_written and all(part in _SDM for part in as_written):
        return list(dict.fromkeys(as_written))
    for rule in RULES:
        if any(keyword in folded for keyword in rule.keywords):
            return list(rule.categories)
    raise UnknownCategory(
        f"building use {text!r} has no Smart Data Models category: map it in [adapters.buildings.categories], "
        f'e.g. "{text}" = ["civic"] (values: {", ".join(SDM_CATEGORIES[:6])}, … see the README)'
    )

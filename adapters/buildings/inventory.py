"""Source kind ``buildings``: a city's building inventory (GeoJSON or CSV) -> Smart Data Models ``Building``.

What municipal GIS and property-management systems export, and what we do with it:

* **GeoJSON** FeatureCollection, footprints as Polygon/MultiPolygon (a Point where the inventory
  has no footprint). The legacy ``crs`` member (GeoJSON 2008, still written by GDAL for anything
  but WGS84) declares the CRS of the whole file; without it the file is WGS84 (RFC 7946) unless
  ``[adapters.buildings] crs`` says otherwise.
* **CSV** (``;`` or ``,``, UTF-8 or Windows-1252): the footprint as WKT or PostGIS EWKT in a
  column (``WKT``, ``geom``, …; QGIS writes ``WKT``), or a point as ``Rechtswert``/``Hochwert``
  (or ``x``/``y``, ``lon``/``lat``). The CRS comes from ``SRID=`` in EWKT, a ``crs``/``epsg``
  column, or the setting.
* Columns and properties are found by name, case- and umlaut-insensitively, from the candidates
  in :data:`COLUMNS` (``[adapters.buildings.fields]`` names another column per attribute).
* Coordinates are transformed and footprints repaired by :mod:`adapters.buildings.geo`;
  what cannot be repaired is rejected with the reason.
* ``address``: street and house number (also as one ``Adresse`` column, ``Friedensplatz 1``),
  ``PLZ`` (5 digits; a 4-digit PLZ lost its leading zero in a spreadsheet and gets it back),
  ``Ort`` (also ``44135 Dortmund``; else the ``locality`` setting), ``Ortsteil`` as ``district``,
  ``addressCountry`` ``DE``. ``streetAddress`` is the postal street line (``Friedensplatz 1``),
  ``streetNr`` the house number alone.
* ``category`` from the German use (:mod:`adapters.buildings.categories`); an unknown use is
  rejected naming the setting that maps it.
* The id is the inventory's building number, made URN-safe (``4711/01`` -> ``4711-01``): the
  ``building_id`` of the LoRaWAN device registry and of the meter export must be the same.
  A second record with an id already seen in the same file is rejected naming the first.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.buildings.categories import UnknownCategory, categories_of
from adapters.buildings.tables import TableError, decode_text, parse_number, pick, read_csv
from adapters.core.adapter import (
    NormalizeContext,
    Payload,
    PayloadError,
    RawRecord,
    RecordRejected,
    SourceKind,
    payload_bytes,
)
from adapters.core.entities import (
    Attribute,
    Entity,
    EntityError,
    entity_id,
    geo_property,
    local_id,
    make_entity,
    prop,
)

if TYPE_CHECKING:
    from adapters.buildings import geo

__all__ = [
    "COLUMNS",
    "DEFAULT_BBOX",
    "DEFAULT_URL",
    "SOURCE",
    "InventoryRecord",
    "normalize_record",
    "parse_payload",
]

log = logging.getLogger("dos_adapters.buildings")

# There is no public endpoint for a city's building inventory: the URL must be configured. The
# reserved .invalid domain (RFC 6761) never resolves, so an unconfigured live poll fails naming it.
DEFAULT_URL = "https://configure-adapters-buildings-url.invalid/inventory.geojson"
DEFAULT_BBOX = (5.8, 47.2, 15.1, 55.1)
"""Germany: catches swapped lat/lon and gross CRS errors anywhere a partner city may be."""
DEFAULT_DATA_PROVIDER = "Stadt Dortmund"

COLUMNS: Mapping[str, tuple[str, ...]] = {
    "id": ("gebaeude_id", "gebaeudenummer", "gebaeude_nr", "objektnummer", "objekt_nr", "objekt_id", "id"),
    "name": ("bezeichnung", "gebaeudename", "gebaeudebezeichnung", "objektname", "objektbezeichnung", "name"),
    "category": ("nutzung", "gebaeudenutzung", "nutzungsart", "gebaeudeart", "gebaeudetyp", "kategorie", "category"),
    "street": ("strasse", "strassenname", "str", "street"),
    "house_number": ("hausnummer", "hausnr", "hnr", "house_number"),
    "house_number_suffix": ("hausnummernzusatz", "hausnummerzusatz", "hausnr_zusatz", "zusatz"),
    "address": ("adresse", "anschrift", "address"),
    "postal_code": ("plz", "postleitzahl", "postal_code"),
    "locality": ("ort", "gemeinde", "stadt", "locality"),
    "district": ("ortsteil", "stadtteil", "stadtbezirk", "district"),
    "floors_above_ground": (
        "geschosse_oberirdisch",
        "oberirdische_geschosse",
        "anzahl_geschosse",
        "geschosszahl",
        "geschosse",
        "vollgeschosse",
        "floors_above_ground",
        "building_levels",
    ),
    "floors_below_ground": (
        "geschosse_unterirdisch",
        "unterirdische_geschosse",
        "untergeschosse",
        "floors_below_ground",
    ),
    "owner": ("eigentuemer", "eigentuemerin", "owner"),
    "crs": ("crs", "epsg", "srid", "koordinatensystem"),
    "wkt": ("wkt", "geom", "geometry", "geometrie", "the_geom", "shape"),
    "x": ("rechtswert", "ostwert", "x", "easting", "lon", "laenge"),
    "y": ("hochwert", "nordwert", "y", "northing", "lat", "breite"),
}
"""Attribute -> candidate column names, first present and non-empty wins (compared folded)."""

_NUMBER_AND_SUFFIX = re.compile(r"^(\d+)\s*([a-zA-Z]?)$")
_STREET_AND_NUMBER = re.compile(r"^(?P<street>.*?\D)\s*(?P<number>\d+\s*[a-zA-Z]?(?:\s*[-/]\s*\d+\s*[a-zA-Z]?)?)$")
_POSTCODE_AND_PLACE = re.compile(r"^(\d{4,5})\s+(.+)$")
_URI = re.compile(r"^(?:urn|https?):\S+$")
MAX_FLOORS = 200


class InventoryRecord(dict[str, Any]):
    """A GeoJSON Feature or a CSV row exactly as received, with what the file says about all records."""

    declared_crs: str | None = None
    """The file's CRS (GeoJSON ``crs`` member), already read as ``AUTHORITY:CODE``."""
    csv_line: int | None = None
    decimal_comma: bool = True


# --------------------------------------------------------------------------------------------
# Parsing


def _declared_crs(crs: Any) -> str | None:
    from adapters.buildings import geo  # shapely loads when a footprint is read, not at every start

    if crs is None:
        return None
    if not isinstance(crs, Mapping) or not isinstance(crs.get("properties"), Mapping):
        raise PayloadError(f"crs member {crs!r}: expected {{type: name, properties: {{name: ...}}}}")
    properties = crs["properties"]
    declared = properties.get("name") if crs.get("type") == "name" else properties.get("code")
    if declared is None:
        raise PayloadError(f"crs member {json.dumps(crs)}: no CRS name or code")
    try:
        return geo.crs_code(str(declared))
    except geo.GeoError as error:
        raise PayloadError(f"crs member: {error}") from None


def _geojson_records(text: str) -> list[InventoryRecord]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply ("[" * 100000)
        raise PayloadError(f"not JSON: {error}") from None
    if isinstance(document, Mapping) and document.get("type") == "Feature":
        features: Any = [document]
    elif isinstance(document, Mapping) and document.get("type") == "FeatureCollection":
        features = document.get("features")
    else:
        raise PayloadError("expected a GeoJSON FeatureCollection (or a CSV file)")
    if not isinstance(features, list):
        raise PayloadError("FeatureCollection.features must be an array")
    crs = _declared_crs(document.get("crs"))
    records = []
    for feature in features:
        record = InventoryRecord(feature) if isinstance(feature, Mapping) else InventoryRecord(_not_a_feature=feature)
        record.declared_crs = crs
        records.append(record)
    return records


def _csv_records(text: str) -> list[InventoryRecord]:
    try:
        table = read_csv(text)
    except TableError as error:
        raise PayloadError(f"neither GeoJSON nor a readable CSV table: {error}") from None
    records = []
    for line, values in table.rows:
        record = InventoryRecord(values)
        record.csv_line = line
        record.decimal_comma = table.decimal_comma
        records.append(record)
    return records


def parse_payload(payload: Payload) -> Sequence[RawRecord]:
    """Features of a GeoJSON FeatureCollection, or rows of a CSV file."""
    text = decode_text(payload_bytes(payload))
    if text.lstrip().startswith(("{", "[")):
        return _geojson_records(text)
    return _csv_records(text)


# --------------------------------------------------------------------------------------------
# Reading one record


def _properties(record: RawRecord) -> Mapping[str, Any]:
    if record.get("type") == "Feature":
        properties = record.get("properties")
        return properties if isinstance(properties, Mapping) else {}
    return record


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


@dataclass(frozen=True)
class _View:
    record: RawRecord
    fields: Mapping[str, str]

    def find(self, key: str) -> tuple[str, Any] | None:
        override = self.fields.get(key)
        candidates = (override,) if override else COLUMNS[key]
        found = pick(_properties(self.record), candidates)
        if found is None and key == "id" and not override and self.record.get("type") == "Feature":
            feature_id = self.record.get("id")
            if feature_id not in (None, ""):
                return "Feature.id", feature_id
        return found

    def text(self, key: str) -> str | None:
        found = self.find(key)
        if found is None or isinstance(found[1], Mapping | list | bool):
            return None
        return _text(found[1]) or None

    def tried(self, key: str) -> str:
        override = self.fields.get(key)
        return repr(override) if override else ", ".join(COLUMNS[key])


def record_label(record: RawRecord) -> str:
    view = _View(record, {})
    parts = [f"line {record.csv_line}"] if isinstance(record, InventoryRecord) and record.csv_line else []
    parts += [f"id={view.text('id')!r}", f"name={view.text('name')!r}"]
    return ", ".join(parts)


def _crs(view: _View, record: RawRecord, settings: Mapping[str, Any], srid: str | None) -> str:
    from adapters.buildings import geo  # shapely loads when a footprint is read, not at every start

    declared = srid or view.text("crs")
    if declared:
        try:
            return geo.crs_code(declared)
        except geo.GeoError as error:
            raise RecordRejected(f"geometry: {error}") from None
    if isinstance(record, InventoryRecord) and record.declared_crs:
        return record.declared_crs
    return geo.crs_code(str(settings.get("crs") or geo.WGS84))


def _footprint(view: _View, record: RawRecord, settings: Mapping[str, Any]) -> geo.Footprint:
    from adapters.buildings import geo  # shapely loads when a footprint is read, not at every start

    decimal_comma = record.decimal_comma if isinstance(record, InventoryRecord) else True
    srid = None
    try:
        if record.get("type") == "Feature":
            shape, repairs = geo.geometry_from_geojson(record.get("geometry"))
        elif (wkt := view.text("wkt")) is not None:
            shape, srid, repairs = geo.geometry_from_wkt(wkt)
        else:
            x, y = view.find("x"), view.find("y")
            if x is None and y is None:
                raise geo.GeoError(
                    f"no geometry: no WKT column ({view.tried('wkt')}) and no x/y columns ({view.tried('x')} / "
                    f"{view.tried('y')})"
                )
            if x is None or y is None:
                given, missing = (x, "y") if y is None else (y, "x")
                assert given is not None
                raise geo.GeoError(f"{given[0]} is given but no {missing} value ({view.tried(missing)})")
            try:
                point = [
                    parse_number(x[1], decimal_comma=decimal_comma),
                    parse_number(y[1], decimal_comma=decimal_comma),
                ]
            except ValueError as error:
                raise geo.GeoError(f"point {x[0]}/{y[0]}: {error}") from None
            shape, repairs = geo.geometry_from_geojson({"type": "Point", "coordinates": point})
        crs = _crs(view, record, settings, srid)
        bbox = settings.get("bbox", DEFAULT_BBOX)
        return geo.normalise_geometry(
            shape,
            crs,
            min_area_m2=float(settings.get("min_area_m2", 1.0)),
            bbox=tuple(bbox) if bbox else None,
            repairs=repairs,
        )
    except geo.GeoError as error:
        raise RecordRejected(f"geometry: {error}") from None


def _house_number(number: str | None, suffix: str | None) -> str | None:
    if not number:
        return None
    number = re.sub(r"\s+", "", number) if _NUMBER_AND_SUFFIX.match(number) else number
    if suffix:
        number = f"{number}{suffix}" if suffix.isalpha() else f"{number} {suffix}"
    return re.sub(r"\s*([-/])\s*", r"\1", number)  # "76 - 78" -> "76-78"


def _postal_code(text: str) -> str:
    digits = text.replace(" ", "")
    if re.fullmatch(r"\d{4}", digits):
        return "0" + digits  # a spreadsheet dropped the leading zero (Dresden 01067 -> 1067)
    if not re.fullmatch(r"\d{5}", digits):
        raise RecordRejected(f"postal code {text!r}: not a 5-digit German PLZ")
    return digits


def _address(view: _View, settings: Mapping[str, Any]) -> dict[str, str]:
    street, number = view.text("street"), view.text("house_number")
    place = view.text("locality")
    postcode = view.text("postal_code")
    combined = view.text("address")
    if not street and combined:
        first, _, rest = combined.partition(",")
        parsed = _STREET_AND_NUMBER.match(first.strip())
        street, number = (parsed.group("street").strip(), parsed.group("number")) if parsed else (first.strip(), None)
        postcode_and_place = _POSTCODE_AND_PLACE.match(rest.strip())
        if postcode_and_place and not postcode:
            postcode = postcode_and_place.group(1)
        if postcode_and_place and not place:
            place = postcode_and_place.group(2)
    if place and (postcode_and_place := _POSTCODE_AND_PLACE.match(place)):
        postcode = postcode or postcode_and_place.group(1)
        place = postcode_and_place.group(2)
    place = place or settings.get("locality")
    if not place:
        raise RecordRejected(
            f"no locality: no column {view.tried('locality')} and no [adapters.buildings] locality "
            "(Building requires an address)"
        )
    house_number = _house_number(number, view.text("house_number_suffix"))
    address: dict[str, str] = {}
    if street:
        address["streetAddress"] = f"{street} {house_number}" if house_number else street
    if house_number:
        address["streetNr"] = house_number
    if postcode:
        address["postalCode"] = _postal_code(postcode)
    address["addressLocality"] = str(place)
    if district := view.text("district"):
        address["district"] = district
    address["addressCountry"] = "DE"
    return address


def _floors(view: _View, key: str, decimal_comma: bool) -> int | None:
    found = view.find(key)
    if found is None:
        return None
    column, value = found
    try:
        number = parse_number(value, decimal_comma=decimal_comma)
    except ValueError as error:
        raise RecordRejected(f"{column}: {error}") from None
    if not number.is_integer() or not 0 <= number <= MAX_FLOORS:
        raise RecordRejected(f"{column} {_text(value)!r}: not a whole number of floors (0..{MAX_FLOORS})")
    return int(number)


def _owner(view: _View, tenant: str, settings: Mapping[str, Any]) -> list[str] | None:
    owner = view.text("owner") or settings.get("owner")
    if not owner:
        return None
    if _URI.match(owner):
        return [owner]
    return [entity_id("Organization", tenant, owner)]


def _categories(view: _View, settings: Mapping[str, Any]) -> list[str]:
    use = view.text("category")
    if not use:
        raise RecordRejected(
            f"no building use: no column {view.tried('category')} (Building requires a category; "
            'name the column in [adapters.buildings.fields] category = "..."'
        )
    try:
        return categories_of(use, settings.get("categories") or {})
    except UnknownCategory as error:
        raise RecordRejected(str(error)) from None


def _building_id(view: _View, record: RawRecord, context: NormalizeContext) -> str:
    raw = view.text("id")
    if raw is None:
        raise RecordRejected(
            f"no building id: none of the columns {view.tried('id')} has a value "
            '(name it in [adapters.buildings.fields] id = "...")'
        )
    try:
        local = local_id(raw)
    except EntityError as error:
        raise RecordRejected(str(error)) from None
    # The resources of a poll remember the ids of this payload (``BuildingsResources.seen``).
    seen = getattr(context.resources, "seen", None)
    if isinstance(seen, dict):
        first = seen.get(local)
        if first is not None:
            raise RecordRejected(f"building id {local!r} was already given to {first}; kept that one")
        seen[local] = record_label(record)
    return local


def normalize_record(record: RawRecord, context: NormalizeContext) -> list[Entity]:
    if not isinstance(record, Mapping) or "_not_a_feature" in record:
        raise RecordRejected("record is not a GeoJSON Feature")
    settings = context.settings
    view = _View(record, settings.get("fields") or {})
    decimal_comma = record.decimal_comma if isinstance(record, InventoryRecord) else True
    building = _building_id(view, record, context)
    footprint = _footprint(view, record, settings)
    if footprint.repairs:
        log.info("building %s: footprint repaired: %s", building, "; ".join(footprint.repairs))
    address = _address(view, settings)
    categories = _categories(view, settings)
    name = view.text("name") or address.get("streetAddress") or building
    attributes: dict[str, Attribute] = {
        "name": prop(name),
        "category": prop(categories),
        "address": prop(address),
        "location": geo_property(footprint.geometry),
    }
    above = _floors(view, "floors_above_ground", decimal_comma)
    if above is not None:
        attributes["floorsAboveGround"] = prop(above)
    below = _floors(view, "floors_below_ground", decimal_comma)
    if below is not None:
        attributes["floorsBelowGround"] = prop(below)
    owner = _owner(view, context.tenant, settings)
    if owner:
        attributes["owner"] = prop(owner)  # a list of ids in the SDM: a Property (docs/decisions/0006)
    attributes["dataProvider"] = prop(settings.get("data_provider") or DEFAULT_DATA_PROVIDER)
    if settings.get("url"):
        attributes["source"] = prop(str(settings["url"]))
    return [make_entity("Building", context.tenant, building, attributes)]


SOURCE = SourceKind(
    name="buildings",
    description=(
        "Municipal building inventory as GeoJSON or CSV (footprints in EPSG:25832, with or without zone "
        "prefix, or WGS84): Building entities with footprint, address, category"
    ),
    entity_types=("Building",),
    parse=parse_payload,
    normalize=normalize_record,
    record_label=record_label,
    default_url=DEFAULT_URL,
    sample="gebaeude-dortmund.geojson",
)

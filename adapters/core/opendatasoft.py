"""Opendatasoft portals (open-data.dortmund.de and many German cities): the two JSON shapes they serve.

The records are read a window at a time, so an export of any size costs the memory of a window of
its text and the records in it, not of the document. The whole records a window holds are decoded
by one ``orjson.loads`` call (a third of the time of ``json``); whatever orjson refuses or might read
differently from ``json.loads`` (NaN, Infinity, integers of 19 digits or more, lone surrogate escapes,
broken JSON) is decoded record by record by ``json``'s own scanner (``raw_decode``), which also writes
every error message. So a record reads exactly as ``json.loads`` would read it; only the skeleton
around the records (``{"total_count": ..., "results": [`` ... ``]}`` or ``[`` ... ``]``) is walked
here. What differs from ``json.loads`` on the whole document: bytes that are not valid UTF-8/16/32 are refused
(``json.loads`` lets encoded surrogates pass), a lone UTF-16 surrogate escape (``"\\ud800"``) reads as
U+FFFD (as :mod:`adapters.core.jsonpayload` reads it), and of a repeated top-level ``results`` key
the first counts.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Generator, Iterator
from typing import IO, Any

import orjson

from adapters.core.adapter import Payload, PayloadError, payload_stream
from adapters.core.jsonpayload import without_lone_surrogates

__all__ = ["iter_records"]

_SHAPE = "expected an Opendatasoft records response {results: [...]} or an export JSON array"
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
READ_BYTES = 64 * 1024
_NEAR_END = 32
"""A decoding error this close to the end of the window may only mean the value goes on beyond it."""
_AFTER_OBJECT_ITEM = re.compile(r"[ \t\n\r]*(?:,[ \t\n\r]*\{|\])")
"""What follows an object that is an array item: another object item, or the array's end."""
_DIGITS_AS_ZEROS = bytes.maketrans(b"0123456789", b"0" * 10)
_NINETEEN_DIGITS = b"0" * 19
"""orjson reads integers beyond 64 bits as floats where json keeps them (and refuses over 4300 digits);
every such integer has 19 digits or more. Found by translate + find, ten times faster than a regex."""


def iter_records(payload: Payload) -> Iterator[Any]:
    """The flat records of an Explore v2.1 records response (``{total_count, results}``) or of an
    ``exports/json`` dump (a bare array), in payload order; both carry the same record objects.

    Raises PayloadError when the payload is not such a document; for a truncated or corrupt one,
    after the records before the damage.
    """
    stream = payload_stream(payload)
    try:
        text = _Text(stream)
        first = text.peek()
        if first == "[":
            yield from _array(text)
        elif first == "{":
            found = yield from _records_response(text)
            if not found:
                text.end()
                raise PayloadError(_SHAPE)
        else:
            text.value()
            text.end()
            raise PayloadError(_SHAPE)
        text.end()
    finally:
        if stream is not payload:  # a copy made here (of bytes, or of a stream that cannot seek)
            stream.close()


def _array(text: _Text) -> Iterator[Any]:
    text.expect("[")
    if text.peek() == "]":
        text.pos += 1
        return
    while True:
        yield from text.items()
        if text.delimiter("]"):
            return


def _records_response(text: _Text) -> Generator[Any, None, bool]:
    """The records of the top-level ``results`` array; returns whether there was one."""
    text.expect("{")
    found = False
    if text.peek() == "}":
        text.pos += 1
        return found
    while True:
        key = text.value()
        if not isinstance(key, str):
            raise text.error("Expecting property name enclosed in double quotes")
        text.expect(":")
        if key == "results" and not found and text.peek() == "[":
            found = True
            yield from _array(text)
        else:
            text.value()
        if text.delimiter("}"):
            return found


class _Text:
    """The payload's text, decoded as it is read; only the part from ``pos`` on stays in memory."""

    def __init__(self, stream: IO[bytes]) -> None:
        head = stream.read(4)
        # The encodings json.loads recognises (UTF-8 with or without BOM, UTF-16, UTF-32), but strict.
        self._decoder = codecs.getincrementaldecoder(json.detect_encoding(head))("strict")
        self._stream = stream
        self._eof = False
        self._dropped = 0
        self.text = ""
        self.pos = 0
        self._json_until = 0
        """Up to here (a position in the whole text) json alone reads the items: orjson refused or may misread them."""
        self._decode(head)

    def _decode(self, data: bytes) -> None:
        """Appends ``data`` (b"": the end) to the window, dropping what lies before ``pos``."""
        self._eof = not data
        try:
            tail = self._decoder.decode(data, final=self._eof)
        except UnicodeDecodeError as error:
            raise PayloadError(f"not JSON: {error}") from None
        self._dropped += self.pos
        self.text = self.text[self.pos :] + tail
        self.pos = 0

    def _read(self) -> bool:
        """More text (the window at least doubles, so a long value costs linear time); False at the end."""
        if self._eof:
            return False
        self._decode(self._stream.read(max(READ_BYTES, len(self.text) - self.pos)))
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end), without taking it."""
        while True:
            self.pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # matches ""
            if self.pos < len(self.text) or not self._read():
                return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.error(f"Expecting {char!r}")
        self.pos += 1

    def delimiter(self, closing: str) -> bool:
        """Takes a ``,`` (False: another item follows) or ``closing`` (True)."""
        char = self.peek()
        if char not in (",", closing):
            raise self.error(f"Expecting ',' or {closing!r}")
        self.pos += 1
        return char == closing

    def items(self) -> list[Any]:
        """The next array items: every whole one up to the window's last object item, in one orjson call.

        Objects delimit themselves, so when ``[`` + the text up to an object's ``}`` + ``]`` reads as an
        array, its items are exactly the document's items. Where orjson refuses them, json reads the
        same text item by item (one wasted orjson call per window at worst).
        """
        if self.peek() == "{" and self._dropped + self.pos >= self._json_until:
            end = self._last_object_item_end()
            if end < 0 and self._read():
                end = self._last_object_item_end()
            if end >= 0:
                items = f"[{self.text[self.pos : end]}]".encode()
                if items.translate(_DIGITS_AS_ZEROS).find(_NINETEEN_DIGITS) < 0:
                    try:
                        records: list[Any] = orjson.loads(items)
                    except orjson.JSONDecodeError:
                        pass
                    else:
                        self.pos = end
                        return records
                self._json_until = self._dropped + end
        return [self.value()]

    def _last_object_item_end(self) -> int:
        """The position after the window's last ``}`` that ends an object array item; -1 if none."""
        end = len(self.text)
        while (end := self.text.rfind("}", self.pos, end)) >= 0:
            if _AFTER_OBJECT_ITEM.match(self.text, end + 1):
                return end + 1
        return -1

    def value(self) -> Any:
        """The next JSON value, read as json.loads reads it."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as error:
                maybe_cut = error.pos >= len(self.text) - _NEAR_END or error.msg.startswith("Unterminated string")
                if maybe_cut and self._read():
                    continue
                raise self.error(error.msg, error.pos) from None
            except RecursionError:
                raise PayloadError("not JSON that can be read: nested too deeply (over about 1000 levels)") from None
            except ValueError as error:  # an integer of more than sys.get_int_max_str_digits() (4300) digits
                raise self.error(str(error).split(";")[0]) from None
            if end > len(self.text) - _NEAR_END and self._read():
                continue  # a number at the window's end may go on ("1" of "1e5")
            if _SURROGATE_ESCAPE.search(self.text, self.pos, end):
                value = without_lone_surrogates(value)
            self.pos = end
            return value

    def end(self) -> None:
        if self.peek():
            raise self.error("Extra data")

    def error(self, message: str, at: int | None = None) -> PayloadError:
        position = self._dropped + (self.pos if at is None else at)
        return PayloadError(f"not JSON: {message} at character {position}")

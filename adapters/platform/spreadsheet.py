"""CSV cells that a spreadsheet opens as text, never as a formula (OWASP "CSV injection").

Entity values come from sources we do not control: a building name from a city's inventory, a street
from the EDG list, a device name from the registry may start with ``=``, ``+``, ``-`` or ``@``.
NGSI-LD carries such text safely as data; only where we write CSV for people (``query --format csv``,
``history --format csv``) would Excel or LibreOffice run it, e.g. ``=HYPERLINK(...)`` leaking data.
"""

from __future__ import annotations

import re

__all__ = ["spreadsheet_safe"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Signs, digits and separators only ("-3.5", "7.46,51.51"): no function, no cell reference, stays a number.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9.,]+(?:[eE][+-]?[0-9]+)?")


def spreadsheet_safe(cell: str) -> str:
    """``cell``, or ``'cell`` when a spreadsheet would take it for a formula (the quote makes it text)."""
    if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell

"""Opendatasoft portals (open-data.dortmund.de and many German cities): the two JSON shapes they serve."""

from __future__ import annotations

import json
from typing import Any

from adapters.core.adapter import PayloadError

__all__ = ["records_from_payload"]


def records_from_payload(payload: bytes) -> list[Any]:
    """The flat records of an Explore v2.1 records response (``{total_count, results}``) or of an
    ``exports/json`` dump (a bare array); both carry the same record objects."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadError(f"not JSON: {error}") from None
    records = document.get("results") if isinstance(document, dict) else document
    if not isinstance(records, list):
        raise PayloadError("expected an Opendatasoft records response {results: [...]} or an export JSON array")
    return records

"""Whole-document JSON payloads, read the same way by every parser that needs the document at once.

``json.loads`` has three surprises for a parser facing a hostile or broken source: a deeply nested
document ("[" * 100000) raises RecursionError, not ValueError; a lone UTF-16 surrogate escape
(``"\\ud800"``) and surrogate bytes (ED A0 80, which UTF-8 forbids) both yield a str that cannot be
encoded as UTF-8, so it fails later, far from the payload. Here the nesting and the bytes are a
PayloadError that says what is wrong, and the escape reads as U+FFFD (as the Opendatasoft reader does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from adapters.core.adapter import Payload, PayloadError, payload_bytes

__all__ = ["load_json", "without_lone_surrogates"]

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_BYTES = re.compile(rb"\xed[\xa0-\xbf]")  # what UTF-8 cannot hold; json.loads lets it pass
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def load_json(payload: Payload) -> Any:
    """The JSON document of ``payload``; PayloadError naming the problem when it is not readable JSON."""
    data = payload_bytes(payload)
    encoded = _SURROGATE_BYTES.search(data)
    if encoded and json.detect_encoding(data).startswith("utf-8"):
        raise PayloadError(f"not JSON: invalid UTF-8 (an encoded UTF-16 surrogate) at byte {encoded.start() + 1}")
    try:
        document = json.loads(data)
    except RecursionError:
        raise PayloadError("not JSON that can be read: nested too deeply (over about 1000 levels)") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadError(f"not JSON: {error}") from None
    if _SURROGATE_ESCAPE.search(data):
        document = without_lone_surrogates(document)
    return document


def without_lone_surrogates(value: Any) -> Any:
    """Every lone surrogate in ``value``'s strings and keys becomes U+FFFD: it cannot be encoded as UTF-8 and would
    fail far from the payload. Iterative: the document may be nested nearly as deep as the recursion limit."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    pending = [value] if isinstance(value, dict | list) else []
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            items = [(_LONE_SURROGATE.sub("\ufffd", key), item) for key, item in node.items()]
            node.clear()
            node.update(items)
            keys: Iterable[Any] = node.keys()
        else:
            keys = range(len(node))
        for key in keys:
            item = node[key]
            if isinstance(item, str):
                node[key] = _LONE_SURROGATE.sub("\ufffd", item)
            elif isinstance(item, dict | list):
                pending.append(item)
    return value

"""The part of the NGSI-LD ``q`` language the double evaluates.

Supported: terms joined by ``;`` (AND), each ``attr``, ``attr.sub`` (a sub-attribute or
``observedAt``/``unitCode``/``datasetId``) alone (existence) or compared with ``==``, ``!=``, ``>``,
``<``, ``>=``, ``<=`` to a number, ``true``/``false``, a quoted string or a bare token (Orion-LD takes
unquoted date-times, ``ngsild_dateTime_without_quotes.test``). ``==``/``!=`` also take a list
``a,b,c`` and ``==`` a range ``a..b``. A Property compares its ``value``, a Relationship its
``object``; an array value matches when one element does. Anything else (``|``, parentheses,
patterns) is refused with 400 rather than answered wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from adapters.testing._validation import VALUE_MEMBER
from adapters.testing.problems import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_TERM = re.compile(r"(?P<path>[^=!<>~]+?)(?:(?P<op>==|!=|>=|<=|>|<)(?P<value>.+))?")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_META = frozenset({"observedAt", "unitCode", "datasetId"})


def parse_q(q: str) -> Predicate:
    """Compile ``q`` into a predicate over stored (normalized) entities."""
    if any(ch in _outside_quotes(q) for ch in "|()"):
        raise _unsupported(q, "only ';'-joined terms are supported, not '|' or parentheses")
    terms = [_term(text, q) for text in _split(q, ";")]
    return lambda entity: all(term(entity) for term in terms)


def _term(text: str, q: str) -> Predicate:
    match = _TERM.fullmatch(text.strip())
    if match is None:
        raise _unsupported(q, f"cannot parse the term {text!r}")
    path = tuple(match["path"].strip().split("."))
    if len(path) > 2 or not all(path):
        raise _unsupported(q, f"attribute paths are 'attr' or 'attr.sub', not {match['path']!r}")
    op = match["op"]
    if op is None:
        return lambda entity: bool(_values(entity, path))
    raw = match["value"].strip()
    if op == "==" and len(bounds := _split(raw, "..")) == 2:
        low, high = _literal(bounds[0]), _literal(bounds[1])
        return lambda entity: any(_compare(v, ">=", low) and _compare(v, "<=", high) for v in _values(entity, path))
    options = [_literal(item) for item in _split(raw, ",")]
    if len(options) > 1 and op not in ("==", "!="):
        raise _unsupported(q, f"a value list only works with '==' and '!=', not {op!r}")
    if op == "!=":
        return lambda entity: (
            bool(values := _values(entity, path))
            and not any(_compare(v, "==", option) for v in values for option in options)
        )
    return lambda entity: any(_compare(v, op, option) for v in _values(entity, path) for option in options)


def _values(entity: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
    """Every scalar the path points at (all instances, array values flattened)."""
    found: list[Any] = []
    attribute = entity.get(path[0])
    instances = attribute if isinstance(attribute, list) else [attribute]
    for instance in instances:
        if not isinstance(instance, dict):
            continue
        target: Any = instance
        if len(path) == 2:
            if path[1] in _META:
                if path[1] in instance:
                    found.append(instance[path[1]])
                continue
            target = instance.get(path[1])
            if not isinstance(target, dict):
                continue
        member = VALUE_MEMBER.get(str(target.get("type")), "value")
        if member in target:
            value = target[member]
            found.extend(value if isinstance(value, list) else [value])
    return found


def _compare(actual: Any, op: str, expected: Any) -> bool:
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (actual, expected))
    same_kind = numbers or type(actual) is type(expected)
    if op == "==":
        return same_kind and actual == expected
    if not same_kind or isinstance(actual, bool | dict | list) or actual is None:
        return False
    if op == ">":
        return bool(actual > expected)
    if op == "<":
        return bool(actual < expected)
    if op == ">=":
        return bool(actual >= expected)
    return bool(actual <= expected)


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.fullmatch(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    return text


def _outside_quotes(text: str) -> str:
    """``text`` with the contents of double-quoted strings blanked out."""
    return re.sub(r'"[^"]*"', lambda m: " " * len(m.group()), text)


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not inside a quoted string."""
    blanked = _outside_quotes(text)
    parts, start = [], 0
    index = blanked.find(separator)
    while index != -1:
        parts.append(text[start:index])
        start = index + len(separator)
        index = blanked.find(separator, start)
    parts.append(text[start:])
    return parts


def _unsupported(q: str, why: str) -> Exception:
    return bad_request("Invalid Q-Filter", f"{q!r}: {why}")

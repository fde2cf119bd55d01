"""The pure step shared by ``run``, ``normalize``, the push intake and the tests: payload -> entities.

Every record either becomes valid entities or a rejection with its reason; what a test sees is
exactly what a deployment sends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from adapters.core.adapter import NormalizeContext, PayloadError, RawRecord, RecordRejected, SourceKind
from adapters.core.entities import Entity, EntityError
from adapters.core.validation import entity_problems

__all__ = ["NormalizeResult", "PayloadError", "Rejection", "normalize_payload"]

log = logging.getLogger("dos_adapters.normalize")


@dataclass(frozen=True)
class Rejection:
    where: str
    reason: str
    record: Any


@dataclass
class NormalizeResult:
    records: int = 0
    entities: list[Entity] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def _label(source: SourceKind, index: int, record: RawRecord) -> str:
    try:
        return f"record {index} ({source.record_label(record)})"
    except Exception:  # a label must never hide the real problem
        return f"record {index}"


def normalize_payload(
    source: SourceKind, payload: bytes, context: NormalizeContext, *, origin: str = ""
) -> NormalizeResult:
    """Every record either becomes valid entities or a rejection with its reason; never an exception.

    Raises PayloadError only when the payload as a whole cannot be read.
    """
    result = NormalizeResult()
    records = source.parse(payload)
    result.records = len(records)
    prefix = f"{origin}: " if origin else ""
    for index, record in enumerate(records, start=1):
        where = prefix + _label(source, index, record)
        try:
            entities = source.normalize(record, context)
        except (RecordRejected, EntityError) as rejected:
            result.rejections.append(Rejection(where, str(rejected), record))
            entities = rejected.partial if isinstance(rejected, RecordRejected) else []
        except Exception as error:  # a bug must cost one record, not the whole run
            log.exception("%s: normaliser failed", where)
            result.rejections.append(Rejection(where, f"internal error in {source.name}: {error!r}", record))
            continue
        for entity in entities:
            problems = entity_problems(entity)
            if problems:
                result.rejections.append(Rejection(where, "; ".join(problems), record))
            else:
                result.entities.append(entity)
    return result

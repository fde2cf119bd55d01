"""The pure step shared by ``run``, ``normalize``, the push intake and the tests: payload -> entities.

Every record either becomes valid entities or a rejection with its reason; what a test sees is
exactly what a deployment sends. ``normalize_chunks`` hands the result over a bounded number of
records at a time, so the runner can write each chunk before it reads on and the records, entities
and encoded batches of a large payload are never in memory together; ``normalize_payload`` is the
same walk gathered into one result.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from adapters.core.adapter import NormalizeContext, Payload, PayloadError, RawRecord, RecordRejected, SourceKind
from adapters.core.entities import Entity, EntityError
from adapters.core.validation import entity_problems

__all__ = [
    "CHUNK_RECORDS",
    "REJECTION_KINDS",
    "NormalizeResult",
    "PayloadError",
    "Rejection",
    "normalize_chunks",
    "normalize_payload",
]

log = logging.getLogger("dos_adapters.normalize")

CHUNK_RECORDS = 500
"""Records per chunk: about 5 MiB of records and entities for parking (100: 1 MiB, 1000: 8 MiB, measured),
and fewer than the 1000 entities of one broker batch, so a chunk never splits into a small tail batch."""


@dataclass(frozen=True)
class Rejection:
    where: str
    reason: str
    record: Any
    kind: str = "record_invalid"
    """One of REJECTION_KINDS: a bounded label for ``dos_rejected_total``, where ``reason`` is free text."""


REJECTION_KINDS = ("record_invalid", "entity_invalid", "normaliser_error", "message_unreadable")


@dataclass
class NormalizeResult:
    records: int = 0
    entities: list[Entity] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def _label(source: SourceKind, prefix: str, index: int, record: RawRecord) -> str:
    """Written only for a rejection: most records never need it, and it costs a repr or two."""
    try:
        return f"{prefix}record {index} ({source.record_label(record)})"
    except Exception:  # a label must never hide the real problem
        return f"{prefix}record {index}"


def _normalize_record(
    source: SourceKind, record: RawRecord, context: NormalizeContext, prefix: str, index: int, result: NormalizeResult
) -> None:
    try:
        entities = source.normalize(record, context)
    except (RecordRejected, EntityError) as rejected:
        result.rejections.append(Rejection(_label(source, prefix, index, record), str(rejected), record))
        entities = rejected.partial if isinstance(rejected, RecordRejected) else []
    except Exception as error:  # a bug must cost one record, not the whole run
        label = _label(source, prefix, index, record)
        log.exception("%s: normaliser failed", label)
        result.rejections.append(
            Rejection(label, f"internal error in {source.name}: {error!r}", record, kind="normaliser_error")
        )
        return
    for entity in entities:
        problems = entity_problems(entity)
        if problems:
            label = _label(source, prefix, index, record)
            result.rejections.append(Rejection(label, "; ".join(problems), record, kind="entity_invalid"))
        else:
            result.entities.append(entity)


def normalize_chunks(
    source: SourceKind,
    payload: Payload,
    context: NormalizeContext,
    *,
    origin: str = "",
    chunk_records: int = CHUNK_RECORDS,
) -> Iterator[NormalizeResult]:
    """The payload's records, normalised and validated, ``chunk_records`` at a time, in payload order.

    Raises PayloadError when the payload as a whole cannot be read; with a streaming parser possibly
    after some chunks (a truncated download). The chunks before it are right: only the rest is unknown.
    """
    records = iter(source.parse(payload))
    prefix = f"{origin}: " if origin else ""
    index = 0
    while batch := list(islice(records, chunk_records)):
        chunk = NormalizeResult(records=len(batch))
        for record in batch:
            index += 1
            _normalize_record(source, record, context, prefix, index, chunk)
        del batch  # while the caller writes the chunk, only its rejected records need to stay alive
        yield chunk


def normalize_payload(
    source: SourceKind, payload: Payload, context: NormalizeContext, *, origin: str = ""
) -> NormalizeResult:
    """Every record either becomes valid entities or a rejection with its reason; never an exception.

    Raises PayloadError only when the payload as a whole cannot be read (then nothing is returned).
    """
    result = NormalizeResult()
    for chunk in normalize_chunks(source, payload, context, origin=origin):
        result.records += chunk.records
        result.entities += chunk.entities
        result.rejections += chunk.rejections
    return result

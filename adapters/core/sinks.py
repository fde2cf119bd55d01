"""Where entities go: the broker (through the outbox) or an NDJSON file; rejects go to the dead-letter file.

``BrokerSink.write`` commits entities to the outbox first and only then tries the broker, so a crash
at any point after ``write`` returns loses nothing: the next start replays the outbox.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, overload

from adapters.core.broker import BrokerClient, BrokerConfigError, encoded_batches
from adapters.core.entities import Entity
from adapters.core.logs import mask_secrets, secret_forms
from adapters.core.metrics import metrics
from adapters.core.outbox import Outbox, OutboxRow

__all__ = ["BrokerSink", "DeadLetterFile", "DeliveryReport", "FileSink", "Sink"]

log = logging.getLogger("dos_adapters.sink")


def _ndjson_line(document: Mapping[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


class _AppendOnlyFile:
    """Whole lines only: each write is one ``write`` call on an O_APPEND file, then flushed and synced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, lines: Sequence[bytes]) -> None:
        if not lines:
            return
        data = b"".join(lines)
        with self._lock:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(descriptor, data)
                while written < len(data):
                    written += os.write(descriptor, data[written:])
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


class DeadLetterFile(_AppendOnlyFile):
    """NDJSON of everything rejected, each with source, where, reason and time, so nothing is silently lost.

    ``secrets`` (the configured tokens, passwords, webhook secret) are replaced by ``***`` wherever
    they turn up in a line, as in the log: a rejected record is kept verbatim otherwise.
    """

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        super().__init__(path)
        self._secrets = secret_forms(secrets)

    def reject(
        self,
        *,
        adapter: str,
        source: str,
        reason: str,
        record: Any = None,
        entity: Entity | None = None,
        where: str | None = None,
        tenant: str | None = None,
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "adapter": adapter,
            "source": source,
        }
        if tenant is not None:
            entry["tenant"] = tenant
        if where is not None:
            entry["where"] = where
        entry["reason"] = reason
        if problem is not None:
            entry["problem"] = dict(problem)
        if record is not None:
            entry["record"] = record
        if entity is not None:
            entry["entity"] = entity
        self.append([mask_secrets(_ndjson_line(entry), self._secrets).encode("utf-8")])


@dataclass
class DeliveryReport:
    delivered: int = 0
    rejected: int = 0
    pending: int = 0
    requests: int = 0
    error: str | None = None
    config_error: bool = False
    """The broker refused us for a reason only a configuration change fixes (401, 403, 404, TLS)."""


class Sink(Protocol):
    @property
    def description(self) -> str: ...

    def write(self, tenant: str, source: str, entities: Sequence[Entity]) -> None: ...

    def deliver(self, *, force: bool = False) -> DeliveryReport: ...

    def close(self) -> None: ...


class FileSink(_AppendOnlyFile):
    """The embedded default without a broker: one entity per line, the format ``normalize`` prints."""

    @property
    def description(self) -> str:
        return f"file {self.path}"

    def write(self, tenant: str, source: str, entities: Sequence[Entity]) -> None:
        self.append([_ndjson_line(entity).encode("utf-8") for entity in entities])

    def deliver(self, *, force: bool = False) -> DeliveryReport:
        return DeliveryReport()

    def close(self) -> None:
        return None


class _RowEntities(Sequence[Entity]):
    """The entities of outbox rows, decoded on first use: a request the broker takes whole needs
    only their ids, so a draining backlog is never held decoded (its entities were the deliverer's
    largest share of memory)."""

    def __init__(self, rows: Sequence[OutboxRow]) -> None:
        self._rows = rows
        self._count = sum(len(row.ids) for row in rows)
        self._entities: list[Entity] | None = None

    def _decoded(self) -> list[Entity]:
        if self._entities is None:
            self._entities = [entity for row in self._rows for entity in row.entities]
        return self._entities

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Entity: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entity]: ...

    def __getitem__(self, index: int | slice) -> Entity | list[Entity]:
        return self._decoded()[index]

    def __iter__(self) -> Iterator[Entity]:
        return iter(self._decoded())


class BrokerSink:
    def __init__(
        self,
        client: BrokerClient,
        outbox: Outbox,
        dead_letter: DeadLetterFile,
        *,
        max_backoff: float = 300.0,
        base_backoff: float = 1.0,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.dead_letter = dead_letter
        self.max_backoff = max_backoff
        self.base_backoff = base_backoff
        self._failures = 0
        self._next_attempt = 0.0
        self._deliver_lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"broker {self.client.base_url} (outbox {self.outbox.path})"

    def write(self, tenant: str, source: str, entities: Sequence[Entity]) -> None:
        """Durable once this returns (raises OutboxError otherwise); delivery happens in ``deliver``."""
        batches = encoded_batches(entities, self.client.max_batch_entities, self.client.max_payload_bytes)
        self.outbox.append_encoded(
            tenant, source, [([entity.get("id") for entity in batch], body.decode("utf-8")) for batch, body in batches]
        )

    def backoff_remaining(self) -> float:
        return max(0.0, self._next_attempt - time.monotonic())

    def _back_off(self, retry_after: float | None) -> None:
        self._failures += 1
        ceiling = min(self.max_backoff, self.base_backoff * 2 ** (self._failures - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff))
        self._next_attempt = time.monotonic() + delay

    def deliver(self, *, force: bool = False) -> DeliveryReport:
        """Drain the outbox in order until it is empty or the broker fails; honours the backoff unless forced."""
        report = DeliveryReport()
        with self._deliver_lock:
            if not force and time.monotonic() < self._next_attempt:
                report.pending = self.outbox.pending_entities()
                report.error = f"backing off for {self.backoff_remaining():.1f} s"
                return report
            while rows := self.outbox.head(self.client.max_batch_entities, self.client.max_payload_bytes):
                tenant = rows[0].tenant
                entities = _RowEntities(rows)
                # The rows' stored JSON arrays joined into one: no entity is encoded again.
                body = b"[" + b",".join(row.body[1:-1].encode("utf-8") for row in rows) + b"]"
                started = time.monotonic()
                try:
                    result = self.client.upsert(tenant, entities, body=body, ids=[i for row in rows for i in row.ids])
                except BrokerConfigError as error:
                    self.outbox.record_error(rows, str(error))
                    self._back_off(None)
                    report.error = str(error)
                    report.config_error = True
                    log.error("broker configuration problem, %d entities kept in the outbox: %s", len(entities), error)
                    break
                metrics.broker_latency.observe(time.monotonic() - started)
                report.requests += result.requests
                report.delivered += len(result.delivered)
                metrics.broker_requests.inc(result.requests)
                metrics.delivered.inc(len(result.delivered))
                # A request may join rows of several adapters of one tenant; each id is in it once.
                source_of = {entity_id: row.source for row in rows for entity_id in row.ids}
                for entity, problem in result.rejected:
                    self.dead_letter.reject(
                        adapter=source_of[entity.get("id")],
                        source="broker",
                        tenant=tenant,
                        entity=entity,
                        reason=f"broker refused entity {entity.get('id')}: "
                        f"{problem.get('title', '')} {problem.get('detail', '')}".strip(),
                        problem=problem,
                    )
                report.rejected += len(result.rejected)
                if result.rejected:
                    log.warning(
                        "broker refused %d entities for good; see the dead-letter file %s",
                        len(result.rejected),
                        self.dead_letter.path,
                    )
                self.outbox.settle(rows, result.pending, result.transient_error)
                if result.pending:
                    metrics.broker_failures.inc()
                    self._back_off(result.retry_after)
                    report.error = result.transient_error
                    log.warning(
                        "broker not reachable (%s); %d entities wait in the outbox, next try in %.1f s",
                        result.transient_error,
                        self.outbox.pending_entities(),
                        self.backoff_remaining(),
                    )
                    break
                self._failures = 0
                self._next_attempt = 0.0
            report.pending = self.outbox.pending_entities()
            metrics.outbox_pending.set(report.pending)
        return report

    def close(self) -> None:
        self.client.close()
        self.outbox.close()

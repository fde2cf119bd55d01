"""Push adapters at run time: intake (MQTT, webhook) -> micro-batch -> normalise -> outbox -> acknowledge.

Delivery to the broker runs on its own thread (``Deliverer``), woken after every commit, so a slow
or absent broker never holds up the intake: the outbox absorbs it, on disk, not in memory.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.core.adapter import Adapter, NormalizeContext, PayloadError, Resources, SourceKind
from adapters.core.entities import Entity, tenant_of_entity
from adapters.core.intake import Message, MicroBatcher, MqttIntake, WebhookIntake
from adapters.core.metrics import metrics
from adapters.core.normalize import Rejection, normalize_payload
from adapters.core.sinks import DeadLetterFile, Sink

__all__ = ["Deliverer", "PushCounters", "PushService"]

log = logging.getLogger("dos_adapters.push")

WEBHOOK_IDLE_CLOSE = 0.01
"""Seconds without a new webhook request after which a batch is committed (see ``MicroBatcher.close_when_idle``)."""


class Deliverer:
    """Drains the sink's outbox in the background; ``wake`` after a commit for low latency."""

    def __init__(self, sink: Sink, *, idle_interval: float = 1.0) -> None:
        self._sink = sink
        self._idle_interval = idle_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deliverer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._idle_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._sink.deliver()
            except Exception:  # the loop must outlive any single failure; the outbox keeps the data
                log.exception("delivery attempt failed")


@dataclass
class PushCounters:
    messages: int = 0
    entities: int = 0
    rejected: int = 0
    ignored: int = 0
    commits: int = 0


class PushService:
    """One push adapter: its intakes, its micro-batcher and its resources (registry, state)."""

    def __init__(
        self,
        *,
        adapter: type[Adapter],
        settings: Mapping[str, Any],
        default_tenant: str,
        resources: Resources | None,
        sink: Sink,
        dead_letter: DeadLetterFile,
        on_commit: Callable[[], None],
        is_relevant: Callable[[str], bool] = lambda topic: True,
    ) -> None:
        self.adapter = adapter
        self.settings = settings
        self.source: SourceKind = adapter.source(settings["source"])
        self.default_tenant = default_tenant
        self.resources = resources
        self.sink = sink
        self.dead_letter = dead_letter
        self.on_commit = on_commit
        self.is_relevant = is_relevant
        self.counters = PushCounters()
        self._lock = threading.Lock()
        self.batcher = MicroBatcher(
            self.flush,
            max_messages=settings.get("batch_max_messages", 500),
            max_delay=settings.get("batch_max_delay", 0.2),
        )
        self.intakes: list[MqttIntake | WebhookIntake] = []

    def add_mqtt(self, **options: Any) -> MqttIntake:
        intake = MqttIntake(enqueue=self.batcher.enqueue, **options)
        self.intakes.append(intake)
        return intake

    def add_webhook(self, **options: Any) -> WebhookIntake:
        intake = WebhookIntake(submit=self.batcher.submit, **options)
        self.intakes.append(intake)
        return intake

    def start(self) -> None:
        if self.intakes and all(isinstance(intake, WebhookIntake) for intake in self.intakes):
            # Webhook senders wait for their 202 before they send more; an MQTT stream does not, and
            # with one it keeps the full batch_max_delay, which is what keeps its commits large.
            self.batcher.close_when_idle(WEBHOOK_IDLE_CLOSE)
        for intake in self.intakes:
            intake.start()

    def stop(self) -> None:
        """Stop receiving, commit what was received and acknowledge it, then disconnect and release
        the resources. (Disconnecting first would leave the last batch unacknowledged: committed,
        yet redelivered on the next start.)"""
        for intake in self.intakes:
            intake.pause()
        self.batcher.close()
        for intake in self.intakes:
            intake.stop()
        if self.resources is not None:
            self.resources.close()
        c = self.counters
        log.info(
            "%s: %d messages received, %d ignored, %d rejected, %d entities committed in %d commits",
            self.adapter.name,
            c.messages,
            c.ignored,
            c.rejected,
            c.entities,
            c.commits,
        )

    def flush(self, messages: Sequence[Message]) -> None:
        """Normalise a micro-batch and commit it to the outbox; raising leaves every message unacknowledged."""
        with self._lock:
            context = NormalizeContext(
                tenant=self.default_tenant,
                settings=self.settings,
                received_at=datetime.now(UTC),
                resources=self.resources,
            )
            by_tenant: dict[str, list[Entity]] = defaultdict(list)
            rejections: list[Rejection] = []
            ignored = 0  # counted once committed: a failed commit is retried with the same messages
            for message in messages:
                if not self.is_relevant(message.topic):
                    ignored += 1
                    continue
                try:
                    result = normalize_payload(self.source, message.payload, context, origin=message.topic)
                except PayloadError as error:
                    record = message.payload.decode("utf-8", "replace")
                    rejections.append(Rejection(message.topic, str(error), record, kind="message_unreadable"))
                    continue
                for entity in result.entities:
                    by_tenant[tenant_of_entity(entity)].append(entity)
                rejections.extend(result.rejections)
            try:
                for tenant, entities in by_tenant.items():
                    self.sink.write(tenant, self.adapter.name, entities)
            except Exception:
                if self.resources is not None:
                    self.resources.rollback()
                raise
            # Dead letters only once the batch is committed: a redelivery would otherwise write them twice.
            for rejection in rejections:
                self.dead_letter.reject(
                    adapter=self.adapter.name,
                    source=self.source.name,
                    where=rejection.where,
                    reason=rejection.reason,
                    record=rejection.record,
                )
            if self.resources is not None:
                self.resources.commit()
            entity_count = sum(len(e) for e in by_tenant.values())
            self.counters.messages += len(messages)
            self.counters.ignored += ignored
            metrics.messages.labels(adapter=self.adapter.name, outcome="ignored").inc(ignored)
            self.counters.entities += entity_count
            self.counters.rejected += len(rejections)
            self.counters.commits += 1
            metrics.messages.labels(adapter=self.adapter.name, outcome="acknowledged").inc(len(messages))
            metrics.entities.labels(adapter=self.adapter.name).inc(entity_count)
            for kind, count in Counter(rejection.kind for rejection in rejections).items():
                metrics.rejected.labels(adapter=self.adapter.name, reason=kind).inc(count)
        self.on_commit()

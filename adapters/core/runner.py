"""Runs adapters: fetch -> parse -> normalise -> validate -> sink, once or on a schedule.

The pure part (``normalize_payload``) is shared by ``run``, ``normalize`` and the tests, so the
entities a test sees are exactly the ones a deployment sends.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from adapters.core.adapter import Adapter, NormalizeContext, PayloadError, RawRecord, RecordRejected, SourceKind
from adapters.core.broker import BrokerClient
from adapters.core.entities import Entity, EntityError, tenant_name
from adapters.core.fetch import FetchError, SourceFetcher
from adapters.core.outbox import Outbox, OutboxError
from adapters.core.sinks import BrokerSink, DeadLetterFile, DeliveryReport, FileSink, Sink
from adapters.core.validation import entity_problems

__all__ = ["NormalizeResult", "Rejection", "RunSummary", "Runtime", "normalize_payload"]

log = logging.getLogger("dos_adapters.runner")


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
            continue
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


@dataclass
class RunSummary:
    adapter: str
    source: str
    tenant: str
    records: int = 0
    entities: int = 0
    rejected: int = 0
    not_modified: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Runtime:
    """One adapter process: the configured adapters sharing one sink, one dead-letter file, one fetcher."""

    def __init__(
        self, config: Mapping[str, Any], adapters: Mapping[str, type[Adapter]], *, offline: bool = False
    ) -> None:
        self.config = config
        self.offline = offline
        self.adapters = {name: cls for name, cls in adapters.items() if config["adapters"][name]["enabled"]}
        self.dead_letter = DeadLetterFile(Path(config["dead_letter"]["path"]))
        self.fetcher = SourceFetcher()
        self.sink: Sink = self._make_sink()

    def _make_sink(self) -> Sink:
        broker = self.config["broker"]
        if not broker.get("url"):
            return FileSink(Path(self.config["output"]["path"]))
        client = BrokerClient(
            broker["url"],
            context_url=broker["context"],
            token=broker.get("token"),
            oauth2=broker.get("oauth2"),
            verify_tls=broker["verify_tls"],
            timeout=broker["timeout"],
            max_batch_entities=broker["max_batch_entities"],
            max_payload_bytes=broker["max_payload_bytes"],
        )
        outbox = Outbox(Path(self.config["outbox"]["path"]))
        return BrokerSink(client, outbox, self.dead_letter, max_backoff=self.config["outbox"]["max_backoff"])

    def tenant_of(self, name: str) -> str:
        settings = self.config["adapters"][name]
        return tenant_name(
            settings.get("tenant") or self.config["broker"].get("tenant") or self.adapters[name].default_tenant
        )

    def poll(self, name: str) -> RunSummary:
        adapter = self.adapters[name]
        settings = self.config["adapters"][name]
        source = adapter.source(settings["source"])
        tenant = self.tenant_of(name)
        summary = RunSummary(name, source.name, tenant)
        fetched = None
        try:
            if self.offline:
                payload = adapter.sample_payload(source)
                origin = f"{source.name} sample {source.sample}"
            else:
                fetched = self.fetcher.get(settings.get("url") or source.default_url, timeout=settings["timeout"])
                if fetched.payload is None:
                    summary.not_modified = True
                    return summary
                payload, origin = fetched.payload, fetched.url
            context = NormalizeContext(tenant=tenant, settings=settings, received_at=datetime.now(UTC))
            result = normalize_payload(source, payload, context, origin=origin)
        except (FetchError, PayloadError) as error:
            summary.error = str(error)
            log.error("%s: %s", name, error)
            return summary
        summary.records, summary.entities, summary.rejected = (
            result.records,
            len(result.entities),
            len(result.rejections),
        )
        for rejection in result.rejections:
            self.dead_letter.reject(
                adapter=name,
                source=source.name,
                tenant=tenant,
                where=rejection.where,
                reason=rejection.reason,
                record=rejection.record,
            )
            log.warning("%s: rejected %s: %s", name, rejection.where, rejection.reason)
        try:
            self.sink.write(tenant, name, result.entities)
        except OutboxError as error:
            summary.error = str(error)
            log.error("%s: %s", name, error)
            return summary
        if fetched is not None:
            self.fetcher.remember(fetched)
        log.info(
            "%s: %d records -> %d entities, %d rejected", name, summary.records, summary.entities, summary.rejected
        )
        return summary

    def run_once(self, names: Sequence[str] | None = None) -> tuple[list[RunSummary], DeliveryReport]:
        summaries = [self.poll(name) for name in (names or list(self.adapters))]
        return summaries, self.sink.deliver(force=True)

    def _trigger(self, name: str) -> CronTrigger | IntervalTrigger:
        settings = self.config["adapters"][name]
        if settings.get("cron"):
            return CronTrigger.from_crontab(settings["cron"], timezone="Europe/Berlin", jitter=settings["jitter"])
        interval = settings.get("interval") or self.adapters[name].default_interval
        return IntervalTrigger(seconds=interval, jitter=settings["jitter"])

    def run_forever(self) -> None:
        """Poll on schedule until SIGTERM/SIGINT; then finish the running polls and try one last delivery."""
        scheduler = BlockingScheduler(
            timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
        )
        for name in self.adapters:
            scheduler.add_job(
                self.poll, self._trigger(name), args=[name], id=name, name=name, next_run_time=datetime.now(UTC)
            )
        scheduler.add_job(self.sink.deliver, IntervalTrigger(seconds=2), id="deliver", name="deliver outbox")

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: stopping after the running polls", signum)
            scheduler.shutdown(wait=True)  # joins the worker threads; they never need the main thread

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            report = self.sink.deliver(force=True)
            log.info("stopped: %d delivered on the way out, %d wait in the outbox", report.delivered, report.pending)

    def close(self) -> None:
        self.sink.close()
        self.fetcher.close()

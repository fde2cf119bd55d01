"""Runs adapters: fetch -> parse -> normalise -> validate -> sink, once or on a schedule.

The pure part (``normalize_chunks``, gathered by ``normalize_payload``) is shared by ``run``,
``normalize``, the push intake and the tests, so the entities a test sees are exactly the ones a
deployment sends. A poll writes chunk by chunk, so its memory does not grow with the payload.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from adapters.core.adapter import Adapter, NormalizeContext, Payload, PayloadError
from adapters.core.broker import BrokerClient
from adapters.core.config import build_schema, secret_values
from adapters.core.entities import Entity, tenant_name, tenant_of_entity
from adapters.core.fetch import FetchError, SourceFetcher
from adapters.core.metrics import HealthServer, metrics
from adapters.core.normalize import NormalizeResult, Rejection, normalize_chunks, normalize_payload
from adapters.core.outbox import Outbox, OutboxError
from adapters.core.sinks import BrokerSink, DeadLetterFile, DeliveryReport, FileSink, Sink

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from adapters.core.push import Deliverer, PushService

__all__ = ["NormalizeResult", "Rejection", "RunSummary", "Runtime", "normalize_payload"]

log = logging.getLogger("dos_adapters.runner")


@dataclass
class RunSummary:
    adapter: str
    source: str
    tenant: str
    records: int = 0
    entities: int = 0
    rejected: int = 0
    not_modified: bool = False
    skipped: str | None = None
    error: str | None = None


class Runtime:
    """One adapter process: the configured adapters sharing one sink, one dead-letter file, one fetcher."""

    def __init__(
        self, config: Mapping[str, Any], adapters: Mapping[str, type[Adapter]], *, offline: bool = False
    ) -> None:
        self.config = config
        self.offline = offline
        self.adapters = {name: cls for name, cls in adapters.items() if config["adapters"][name]["enabled"]}
        # Secrets of the core sections and of the adapters given (all of them, enabled or not).
        schema = build_schema({name: cls.section_schema() for name, cls in adapters.items()})
        self.dead_letter = DeadLetterFile(Path(config["dead_letter"]["path"]), secret_values(config, schema))
        self.fetcher = SourceFetcher()
        self.sink: Sink = self._make_sink()
        self.last_success: dict[str, float] = {}

    def _make_sink(self) -> Sink:
        broker = self.config["broker"]
        if not broker.get("url"):
            return FileSink(Path(self.config["output"]["path"]))
        client = BrokerClient.from_settings(broker)
        outbox = Outbox(Path(self.config["outbox"]["path"]))
        return BrokerSink(client, outbox, self.dead_letter, max_backoff=self.config["outbox"]["max_backoff"])

    def tenant_of(self, name: str) -> str:
        settings = self.config["adapters"][name]
        return tenant_name(
            settings.get("tenant") or self.config["broker"].get("tenant") or self.adapters[name].default_tenant
        )

    def poll(self, name: str) -> RunSummary:
        started = time.monotonic()
        summary = self._poll(name)
        metrics.poll_seconds.labels(adapter=name).observe(time.monotonic() - started)
        outcome = "error" if summary.error else "skipped" if summary.skipped else "ok"
        metrics.polls.labels(adapter=name, outcome=outcome).inc()
        if outcome == "ok":
            self.last_success[name] = time.time()
            metrics.last_success.labels(adapter=name).set(self.last_success[name])
        if outcome == "ok" or summary.records:  # a poll failing midway wrote what it counted
            metrics.records.labels(adapter=name, source=summary.source).inc(summary.records)
            metrics.entities.labels(adapter=name).inc(summary.entities)
        return summary

    def _poll(self, name: str) -> RunSummary:
        """Fetch, then normalise and write chunk by chunk (bounded memory whatever the payload's size).

        A payload that breaks midway (truncated download) fails the poll after the chunks before the
        damage were written: their entities are valid states. The resources roll back and the
        validators are not remembered, so the next poll reads the whole payload again.
        """
        adapter = self.adapters[name]
        settings = self.config["adapters"][name]
        source = adapter.source(settings["source"])
        tenant = self.tenant_of(name)
        summary = RunSummary(name, source.name, tenant)
        if adapter.mode == "push" and not self.offline:
            summary.skipped = "push adapter: receives uplinks while 'dos-adapters run' runs (MQTT / webhook)"
            return summary
        if self.offline:
            settings = adapter.offline_settings(settings)
        fetched = None
        resources = None
        payload: Payload
        try:
            resources = adapter.open_resources(settings, base_dir=Path.cwd(), persistent=not self.offline)
            if self.offline:
                payload = adapter.sample_payload(source)
                origin = f"{source.name} sample {source.sample}"
            else:
                fetched = self.fetcher.get(settings.get("url") or source.default_url, timeout=settings["timeout"])
                if fetched.payload is None:
                    summary.not_modified = True
                    return summary
                payload, origin = fetched.payload, fetched.url
            context = NormalizeContext(
                tenant=tenant, settings=settings, received_at=datetime.now(UTC), resources=resources
            )
            for chunk in normalize_chunks(source, payload, context, origin=origin):
                self._write(name, chunk.entities)
                self._reject(name, source.name, tenant, chunk.rejections)
                summary.records += chunk.records
                summary.entities += len(chunk.entities)
                summary.rejected += len(chunk.rejections)
            if resources is not None:
                resources.commit()
        except (FetchError, PayloadError, OutboxError, ValueError) as error:
            if resources is not None:
                resources.rollback()
            summary.error = str(error)
            if summary.records:
                log.error(
                    "%s: %s (after %d records: %d entities written, %d rejected; the next poll reads it all again)",
                    name,
                    error,
                    summary.records,
                    summary.entities,
                    summary.rejected,
                )
            else:
                log.error("%s: %s", name, error)
            return summary
        finally:
            if resources is not None:
                resources.close()
            if fetched is not None:
                fetched.close()
        if fetched is not None:
            self.fetcher.remember(fetched)
        log.info(
            "%s: %d records -> %d entities, %d rejected", name, summary.records, summary.entities, summary.rejected
        )
        return summary

    def _reject(self, name: str, source: str, tenant: str, rejections: Sequence[Rejection]) -> None:
        for rejection in rejections:
            self.dead_letter.reject(
                adapter=name,
                source=source,
                tenant=tenant,
                where=rejection.where,
                reason=rejection.reason,
                record=rejection.record,
            )
            log.warning("%s: rejected %s: %s", name, rejection.where, rejection.reason)
            metrics.rejected.labels(adapter=name, reason=rejection.kind).inc()

    def _write(self, name: str, entities: Sequence[Entity]) -> None:
        """One outbox write per tenant: the tenant is part of every entity id."""
        by_tenant: dict[str, list[Entity]] = {}
        for entity in entities:
            by_tenant.setdefault(tenant_of_entity(entity), []).append(entity)
        for tenant, group in by_tenant.items():
            self.sink.write(tenant, name, group)

    def run_once(self, names: Sequence[str] | None = None) -> tuple[list[RunSummary], DeliveryReport]:
        summaries = [self.poll(name) for name in (names or list(self.adapters))]
        return summaries, self.sink.deliver(force=True)

    def _trigger(self, name: str) -> CronTrigger | IntervalTrigger:
        from apscheduler.triggers.cron import CronTrigger  # the scheduler only loads for 'run' without --once
        from apscheduler.triggers.interval import IntervalTrigger

        settings = self.config["adapters"][name]
        if settings.get("cron"):
            return CronTrigger.from_crontab(settings["cron"], timezone="Europe/Berlin", jitter=settings["jitter"])
        interval = settings.get("interval") or self.adapters[name].default_interval
        return IntervalTrigger(seconds=interval, jitter=settings["jitter"])

    def _poll_and_deliver(self, name: str, deliverer: Deliverer) -> None:
        self.poll(name)
        deliverer.wake()

    def _on_push_commit(self, name: str, deliverer: Deliverer) -> Callable[[], None]:
        """After each push commit: note the source as fresh (staleness gauge), wake the deliverer."""

        def committed() -> None:
            self.last_success[name] = time.time()
            deliverer.wake()

        return committed

    def _push_service(self, name: str, on_commit: Callable[[], None]) -> PushService:
        from adapters.core.push import PushService  # MQTT and the webhook server only load for push adapters

        adapter = self.adapters[name]
        settings = self.config["adapters"][name]
        resources = adapter.open_resources(settings, base_dir=Path.cwd(), persistent=True)
        service = PushService(
            adapter=adapter,
            settings=settings,
            default_tenant=self.tenant_of(name),
            resources=resources,
            sink=self.sink,
            dead_letter=self.dead_letter,
            on_commit=on_commit,
            is_relevant=lambda topic: adapter.accepts_message(settings, topic),
        )
        mqtt, webhook = settings.get("mqtt", {}), settings.get("webhook", {})
        if mqtt.get("enabled"):
            service.add_mqtt(
                host=mqtt["host"],
                port=mqtt["port"],
                tls=mqtt["tls"],
                topics=adapter.mqtt_topics(settings),
                client_id=mqtt["client_id"],
                username=mqtt.get("username"),
                password=mqtt.get("password"),
                shared_group=mqtt.get("shared_group"),
                protocol=mqtt["protocol"],
            )
        if webhook.get("enabled"):
            service.add_webhook(
                host=webhook["host"],
                port=webhook["port"],
                path=webhook["path"],
                secret=webhook["secret"],
                secret_header=webhook["secret_header"],
                max_body_bytes=webhook["max_body_bytes"],
            )
        return service

    def _health_server(self) -> HealthServer | None:
        settings = self.config["metrics"]
        if not settings["port"]:
            return None
        intervals = {
            name: float(self.config["adapters"][name].get("interval") or adapter.default_interval)
            for name, adapter in self.adapters.items()
            if adapter.mode == "poll" and not self.config["adapters"][name].get("cron")
        }
        outbox = self.sink.outbox if isinstance(self.sink, BrokerSink) else None
        return HealthServer(
            settings["host"],
            settings["port"],
            intervals=intervals,
            push_adapters=[name for name, adapter in self.adapters.items() if adapter.mode == "push"],
            last_success=self.last_success,
            oldest_pending=outbox.oldest_age if outbox is not None else lambda: None,
            stuck_after=settings["stuck_after"],
        )

    def run_forever(self) -> None:
        """Poll on schedule and receive pushes until SIGTERM/SIGINT; then commit what was received,
        finish the running polls and try one last delivery."""
        from apscheduler.schedulers.background import BackgroundScheduler

        from adapters.core.push import Deliverer

        scheduler = BackgroundScheduler(
            timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
        )
        deliverer = Deliverer(self.sink)
        services = [
            self._push_service(name, self._on_push_commit(name, deliverer))
            for name, a in self.adapters.items()
            if a.mode == "push"
        ]
        for name, adapter in self.adapters.items():
            if adapter.mode == "poll":
                scheduler.add_job(
                    self._poll_and_deliver,
                    self._trigger(name),
                    args=[name, deliverer],
                    id=name,
                    name=name,
                    next_run_time=datetime.now(UTC),
                )

        stopping = threading.Event()

        def stop(signum: int, _frame: FrameType | None) -> None:
            # Only set a flag here: the real shutdown takes locks the interrupted main thread may hold.
            log.info("signal %d: stopping after the running polls", signum)
            stopping.set()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        health = self._health_server()
        if health is not None:
            health.start()
        deliverer.start()
        try:
            for service in services:
                service.start()
            scheduler.start()
            while not stopping.wait(1.0):
                pass
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=True)  # lets running polls finish and commit
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for service in services:
                service.stop()
            deliverer.stop()
            if health is not None:
                health.stop()
            report = self.sink.deliver(force=True)
            log.info("stopped: %d delivered on the way out, %d wait in the outbox", report.delivered, report.pending)

    def close(self) -> None:
        self.sink.close()
        self.fetcher.close()

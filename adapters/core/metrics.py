"""Prometheus metrics and a health endpoint, for integrators running adapters as containers.

``GET /metrics`` is the Prometheus text format. ``GET /readyz`` (and its older name ``/health``)
answers 200 while every enabled poll adapter has succeeded recently (within three of its intervals,
after a start-up grace) and nothing in the outbox has waited longer than ``stuck_after`` seconds,
else 503, with a JSON body that says why. ``GET /healthz`` is liveness only: 200 whenever the process
answers (a broker outage must not get the container restarted: the outbox is doing its job). The
metric objects live in one registry per process, as Prometheus clients expect; the source staleness
gauge is brought up to date at each scrape.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["REGISTRY", "HealthServer", "Metrics", "metrics"]

REGISTRY = CollectorRegistry(auto_describe=True)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter("dos_records_total", "Source records read", ["adapter", "source"], registry=registry)
        self.entities = Counter(
            "dos_entities_total", "Valid entities handed to the sink", ["adapter"], registry=registry
        )
        self.rejected = Counter(
            "dos_rejected_total",
            "Records or entities sent to the dead-letter file, by reason (adapters.core.normalize.REJECTION_KINDS)",
            ["adapter", "reason"],
            registry=registry,
        )
        self.polls = Counter("dos_polls_total", "Polls by outcome", ["adapter", "outcome"], registry=registry)
        self.poll_seconds = Histogram(
            "dos_poll_duration_seconds", "Duration of one poll", ["adapter"], registry=registry
        )
        self.last_success = Gauge(
            "dos_last_success_timestamp_seconds",
            "Unix time of the last successful poll",
            ["adapter"],
            registry=registry,
        )
        self.messages = Counter(
            "dos_push_messages_total", "Push messages by outcome", ["adapter", "outcome"], registry=registry
        )
        self.uplinks = Counter("dos_uplinks_total", "LoRaWAN uplinks by outcome", ["outcome"], registry=registry)
        self.delivered = Counter("dos_delivered_entities_total", "Entities the broker confirmed", registry=registry)
        self.broker_requests = Counter("dos_broker_requests_total", "Upsert requests sent", registry=registry)
        self.broker_failures = Counter(
            "dos_broker_failures_total", "Delivery attempts that left entities waiting", registry=registry
        )
        self.outbox_pending = Gauge("dos_outbox_pending_entities", "Entities waiting in the outbox", registry=registry)
        self.outbox_oldest = Gauge(
            "dos_outbox_oldest_age_seconds",
            "Seconds the oldest entity in the outbox has waited for the broker; 0 when nothing waits",
            registry=registry,
        )
        self.broker_latency = Histogram(
            "dos_broker_upsert_duration_seconds",
            "Duration of one delivery attempt to the broker (one upsert call, split batches included)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.staleness = Gauge(
            "dos_source_staleness_seconds",
            "Seconds since the adapter last had data from its source (poll succeeded / push committed);"
            " since start-up while it has had none",
            ["adapter"],
            registry=registry,
        )


metrics = Metrics(REGISTRY)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None  # scraped every few seconds: not worth a log line

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self.server.refresh()
            self._send(HTTPStatus.OK, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        elif path in ("/readyz", "/health"):
            healthy, report = self.server.health()
            status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(status, json.dumps(report, indent=2).encode(), "application/json")
        elif path == "/healthz":
            self._send(HTTPStatus.OK, b'{"alive": true}', "application/json")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"GET /metrics, /healthz, /readyz or /health\n", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    health: Callable[[], tuple[bool, dict[str, Any]]]
    refresh: Callable[[], None]


class HealthServer:
    """Serves /metrics, /healthz, /readyz and /health; ``intervals`` are the poll adapters' seconds
    between polls; ``push_adapters`` are named for the staleness gauge only (no readiness check)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        intervals: Mapping[str, float],
        last_success: Mapping[str, float],
        oldest_pending: Callable[[], float | None],
        stuck_after: float = 3600.0,
        grace: float = 300.0,
        push_adapters: Sequence[str] = (),
    ) -> None:
        self.intervals = dict(intervals)
        self.push_adapters = tuple(push_adapters)
        self.last_success = last_success
        self.oldest_pending = oldest_pending
        self.stuck_after = stuck_after
        self.started = time.time()
        self.grace = grace
        self._server = _Server((host, port), _Handler)
        self._server.health = self.health
        self._server.refresh = self.refresh
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def refresh(self) -> None:
        """Bring the time-based gauges up to date (called before each scrape): they age between events."""
        now = time.time()
        for name in (*self.intervals, *self.push_adapters):
            metrics.staleness.labels(adapter=name).set(max(0.0, now - (self.last_success.get(name) or self.started)))
        metrics.outbox_oldest.set(self.oldest_pending() or 0.0)

    def health(self) -> tuple[bool, dict[str, Any]]:
        now = time.time()
        problems: list[str] = []
        adapters: dict[str, Any] = {}
        for name, interval in self.intervals.items():
            last = self.last_success.get(name)
            adapters[name] = {"last_success": last, "interval": interval}
            allowed = max(3 * interval, self.grace)
            since = now - (last or self.started)
            if since > allowed:
                problems.append(f"{name}: no successful poll for {since:.0f} s (allowed {allowed:.0f} s)")
        waiting = self.oldest_pending()
        if waiting is not None and waiting > self.stuck_after:
            problems.append(f"outbox: entities have waited {waiting:.0f} s for the broker")
        return not problems, {
            "healthy": not problems,
            "problems": problems,
            "adapters": adapters,
            "outbox_oldest_seconds": waiting,
        }

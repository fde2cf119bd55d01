"""Push intake: MQTT and HTTP webhook messages, acknowledged only once they are safe in the outbox.

Messages are collected into micro-batches (``MicroBatcher``): up to ``max_messages`` or ``max_delay``
seconds, then processed and committed in one outbox transaction, then acknowledged. So an MQTT
QoS 1 message is PUBACKed, and a webhook request answered 2xx, only after the commit: a crash before
that makes the network server redeliver it (MQTT persistent session / webhook retry); duplicates
that causes are dropped downstream by their deduplication key.
"""

from __future__ import annotations

import hmac
import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["Message", "MicroBatcher", "MqttIntake", "WebhookIntake"]

log = logging.getLogger("dos_adapters.intake")


@dataclass(frozen=True)
class Message:
    topic: str
    """MQTT topic, or for the webhook the request path (with ``?event=`` of ChirpStack's HTTP integration)."""
    payload: bytes
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


Flush = Callable[[Sequence[Message]], None]
"""Processes and commits a batch; raising means nothing of it is acknowledged."""


class MicroBatcher:
    """Turns a stream of messages into few, larger outbox commits (and so few broker requests)."""

    def __init__(self, flush: Flush, *, max_messages: int = 500, max_delay: float = 0.2) -> None:
        self._flush = flush
        self._max_messages = max_messages
        self._max_delay = max_delay
        self._queue: queue.Queue[tuple[Message, Future[None]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    def submit(self, message: Message) -> Future[None]:
        """The future completes when the message is committed (or fails with the reason it was not)."""
        done: Future[None] = Future()
        self._queue.put((message, done))
        return done

    def close(self) -> None:
        """Commit what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = time.monotonic() + self._max_delay
            while len(batch) < self._max_messages:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Message, Future[None]]]) -> None:
        try:
            self._flush([message for message, _ in batch])
        except Exception as error:
            log.error("could not commit %d messages; they are not acknowledged: %s", len(batch), error)
            for _, done in batch:
                done.set_exception(error)
            return
        for _, done in batch:
            done.set_result(None)


class MqttIntake:
    """Subscriber with QoS 1, a persistent session, manual acks and reconnect with backoff.

    With ``shared_group`` the subscriptions become MQTT 5 shared subscriptions
    (``$share/<group>/<topic>``): replicas of an adapter then split the messages between them.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        topics: Sequence[str],
        client_id: str,
        submit: Callable[[Message], Future[None]],
        username: str | None = None,
        password: str | None = None,
        shared_group: str | None = None,
        protocol: str = "5",
        tls: bool = False,
        session_expiry: int = 86_400,
    ) -> None:
        self.topics = [f"$share/{shared_group}/{t}" if shared_group else t for t in topics]
        self._submit = submit
        self._host, self._port = host, port
        self._protocol = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        self._session_expiry = session_expiry
        self.connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=self._protocol,
            clean_session=None if self._protocol == mqtt.MQTTv5 else False,
            manual_ack=True,
        )
        if username:
            self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(min_delay=1, max_delay=60)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        properties = None
        if self._protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._session_expiry
        self._client.connect_async(
            self._host,
            self._port,
            keepalive=30,
            clean_start=False if self._protocol == mqtt.MQTTv5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT %s:%d refused the connection: %s", self._host, self._port, reason)
            return
        client.subscribe([(topic, 1) for topic in self.topics])
        log.info("MQTT connected to %s:%d, subscribed to %s", self._host, self._port, ", ".join(self.topics))
        self.connected.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("MQTT connection lost (%s); reconnecting with backoff", reason)

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        done = self._submit(Message(message.topic, bytes(message.payload)))
        mid, qos = message.mid, message.qos

        def acknowledge(future: Future[None]) -> None:
            if future.exception() is None and qos > 0:
                client.ack(mid, qos)

        done.add_done_callback(acknowledge)


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _WebhookServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("webhook %s: " + format, self.client_address[0], *args)

    def _answer(self, status: HTTPStatus, text: str = "") -> None:
        body = (text + "\n").encode() if text else b""
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/health":
            self._answer(HTTPStatus.OK, "ok")
        else:
            self._answer(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        intake = self.server.intake
        target = urlsplit(self.path)
        if target.path != intake.path:
            self._answer(HTTPStatus.NOT_FOUND, f"POST uplinks to {intake.path}")
            return
        if intake.secret is not None:
            given = self.headers.get(intake.secret_header, "")
            if not hmac.compare_digest(given.encode(), intake.secret.encode()):
                self._answer(HTTPStatus.UNAUTHORIZED, f"missing or wrong {intake.secret_header}")
                return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return
        if length > intake.max_body_bytes:
            self.close_connection = True
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body above {intake.max_body_bytes} bytes")
            return
        body = self.rfile.read(length)
        # ChirpStack's HTTP integration posts every event type to one URL with ?event=<type>.
        event = parse_qs(target.query).get("event", ["up"])[0]
        if event != "up":
            self._answer(HTTPStatus.NO_CONTENT)
            return
        done = intake.submit(Message(self.path, body))
        try:
            done.result(timeout=intake.commit_timeout)
        except Exception:
            # Not committed: tell the network server to retry later.
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, "not stored, retry later")
            return
        self._answer(HTTPStatus.ACCEPTED)


class _WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    intake: WebhookIntake


class WebhookIntake:
    """HTTP receiver for TTS webhooks and ChirpStack's HTTP integration, authenticated by a shared secret."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        path: str,
        submit: Callable[[Message], Future[None]],
        secret: str | None,
        secret_header: str = "X-Webhook-Secret",
        max_body_bytes: int = 65_536,
        commit_timeout: float = 30.0,
    ) -> None:
        self.path = path
        self.submit = submit
        self.secret = secret
        self.secret_header = secret_header
        self.max_body_bytes = max_body_bytes
        self.commit_timeout = commit_timeout
        self._server = _WebhookServer((host, port), _WebhookHandler)
        self._server.intake = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

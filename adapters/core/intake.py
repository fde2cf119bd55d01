"""Push intake: MQTT and HTTP webhook messages, acknowledged only once they are safe in the outbox.

Messages are collected into micro-batches (``MicroBatcher``): up to ``max_messages`` or ``max_delay``
seconds, then processed and committed in one outbox transaction, then acknowledged. So an MQTT
QoS 1 message is PUBACKed, and a webhook request answered 2xx, only after the commit: a crash before
that makes the network server redeliver it (MQTT persistent session / webhook retry); duplicates
that causes are dropped downstream by their deduplication key.

The batcher holds at most ``max_pending`` messages besides the batch it commits; beyond that,
``enqueue`` blocks. For MQTT that stops paho's network thread from reading, so a backlog waits
unacknowledged in the MQTT broker (and the socket) instead of in this process's memory.
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
from dataclasses import dataclass
from functools import partial
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


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    """MQTT topic, or for the webhook the request path (with ``?event=`` of ChirpStack's HTTP integration)."""
    payload: bytes


Flush = Callable[[Sequence[Message]], None]
"""Processes and commits a batch; raising means nothing of it is acknowledged."""

Done = Callable[[BaseException | None], None]
"""Called once per message: with None after its commit, or with the reason it was not committed."""


class MicroBatcher:
    """Turns a stream of messages into few, larger outbox commits (and so few broker requests).

    A commit that fails (outbox or state file not writable, locked, disk full) is retried with
    backoff until it succeeds or the batcher is closed: its messages stay unacknowledged meanwhile,
    and an MQTT broker never resends them on the same connection, so giving up would leave them
    (and, once they fill the broker's in-flight window, every later message) stuck until a reconnect.
    """

    def __init__(
        self,
        flush: Flush,
        *,
        max_messages: int = 500,
        max_delay: float = 0.2,
        max_pending: int | None = None,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
    ) -> None:
        """``max_pending``: messages waiting for the next batch before ``enqueue`` blocks (default half
        of ``max_messages``: enough to go on reading while a batch commits, so the next batch still
        fills; a full second batch waiting in memory only added to the peak at saturation)."""
        self._flush = flush
        self._max_messages = max_messages
        self._max_delay = max_delay
        self._idle_close: float | None = None
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._queue: queue.Queue[tuple[Message, Done] | None] = queue.Queue(max_pending or max(1, max_messages // 2))
        self._closing = threading.Event()
        self._submit_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    def enqueue(self, message: Message, done: Done) -> None:
        """Queue a message, blocking while ``max_pending`` wait; ``done`` is called once it is committed
        (with None) or will not be (with the reason)."""
        with self._submit_lock:  # close() waits for a blocked enqueue: the batcher drains meanwhile
            if self._closing.is_set():
                done(RuntimeError("stopping: message not committed"))
            else:
                self._queue.put((message, done))

    def submit(self, message: Message) -> Future[None]:
        """``enqueue`` with a future that completes when the message is committed (or fails with the reason)."""
        future: Future[None] = Future()

        def done(error: BaseException | None) -> None:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        self.enqueue(message, done)
        return future

    def close_when_idle(self, seconds: float) -> None:
        """Close a batch also once no message came for ``seconds``, not only at ``max_delay``.

        For senders that wait for their answer before they send again (webhook requests): once every
        open request is in the batch, no further message can come until the batch is committed, so
        waiting out ``max_delay`` would only add to every request's time and cap the rate at
        (senders / max_delay).
        """
        self._idle_close = seconds

    def close(self) -> None:
        """Commit what is queued (one more try if commits are failing), then stop."""
        with self._submit_lock:
            if self._closing.is_set():
                return
            self._closing.set()
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
                timeout = max(0.0, deadline - time.monotonic())
                if self._idle_close is not None:
                    timeout = min(timeout, self._idle_close)
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Message, Done]]) -> None:
        delay = self._retry_delay
        while True:
            try:
                self._flush([message for message, _ in batch])
            except Exception as error:
                if self._closing.is_set():
                    log.error("could not commit %d messages; stopping, not acknowledged: %s", len(batch), error)
                    _report(batch, error)
                    return
                log.error(
                    "could not commit %d messages (%s); not acknowledged, trying again in %.1f s",
                    len(batch),
                    error,
                    delay,
                )
                self._closing.wait(delay)
                delay = min(delay * 2, self._max_retry_delay)
                continue
            _report(batch, None)
            return


def _report(batch: Sequence[tuple[Message, Done]], error: BaseException | None) -> None:
    """Tell each message's sender; a sender that fails (e.g. a PUBACK on a closed socket) must not stop
    the batcher, or every later message would wait forever."""
    for _, done in batch:
        try:
            done(error)
        except Exception:
            log.exception("could not report a message as %s", "not committed" if error else "committed")


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
        enqueue: Callable[[Message, Done], None],
        username: str | None = None,
        password: str | None = None,
        shared_group: str | None = None,
        protocol: str = "5",
        tls: bool = False,
        session_expiry: int = 86_400,
    ) -> None:
        self.topics = [f"$share/{shared_group}/{t}" if shared_group else t for t in topics]
        self._enqueue = enqueue
        self._host, self._port = host, port
        self._protocol = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        self._session_expiry = session_expiry
        self.connected = threading.Event()
        self._accepting = True
        self._connection = 0
        """Counts connections: an acknowledgement belongs to the connection its message came on."""
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
        self._client.on_subscribe = self._on_subscribe

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

    def pause(self) -> None:
        """Take no new messages (they stay unacknowledged, so the broker redelivers them after a
        restart); acknowledgements of messages already taken still go out until ``stop``."""
        self._accepting = False

    def stop(self) -> None:
        self._accepting = False
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT %s:%d refused the connection: %s", self._host, self._port, reason)
            return
        self._connection += 1
        client.subscribe([(topic, 1) for topic in self.topics])
        log.info("MQTT connected to %s:%d, subscribing to %s", self._host, self._port, ", ".join(self.topics))
        self.connected.set()

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
        for topic, reason in zip(self.topics, reasons, strict=False):
            if reason.is_failure:
                log.error("MQTT broker refused the subscription to %s: %s", topic, reason)
            elif reason.value == 0:
                # QoS 0: the broker neither waits for our acknowledgement nor redelivers; a crash loses messages.
                log.error("MQTT subscription to %s granted with QoS 0 only: uplinks can be lost", topic)
            else:
                log.info("MQTT subscription granted: %s (QoS %d)", topic, reason.value)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("MQTT connection lost (%s); reconnecting with backoff", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if not self._accepting:
            return  # not acknowledged: redelivered when the session resumes
        # Blocks while the batcher is full: paho then reads nothing more, the backlog stays in the broker.
        acknowledge = partial(self._acknowledge, message.mid, message.qos, self._connection)
        self._enqueue(Message(message.topic, bytes(message.payload)), acknowledge)

    def _acknowledge(self, mid: int, qos: int, connection: int, error: BaseException | None) -> None:
        # A message from an earlier connection is resent by the broker on the new one (same packet
        # id) and acknowledged when that copy is committed. Acknowledging the old copy too would send
        # a second PUBACK for the id, which the broker may meanwhile have given to a new message: that
        # one would count as delivered before it is committed.
        if error is None and qos > 0 and connection == self._connection:
            self._client.ack(mid, qos)


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _WebhookServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("webhook %s: " + format, self.client_address[0], *args)

    def _answer(self, status: HTTPStatus, text: str = "", *, unread_body: bool = False) -> None:
        """``unread_body``: the request body was left unread, so this keep-alive connection must
        close (its next bytes are that body, not the next request)."""
        body = (text + "\n").encode() if text else b""
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if unread_body:
            self.send_header("Connection", "close")  # also sets close_connection
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
            self._answer(HTTPStatus.NOT_FOUND, f"POST uplinks to {intake.path}", unread_body=True)
            return
        if intake.secret is not None:
            given = self.headers.get(intake.secret_header, "")
            if not hmac.compare_digest(given.encode(), intake.secret.encode()):
                self._answer(HTTPStatus.UNAUTHORIZED, f"missing or wrong {intake.secret_header}", unread_body=True)
                return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(HTTPStatus.LENGTH_REQUIRED, "Content-Length required", unread_body=True)
            return
        if length > intake.max_body_bytes:
            self._answer(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body above {intake.max_body_bytes} bytes", unread_body=True
            )
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
    # A network server opens many connections at once after a pause; socketserver's backlog of 5
    # would drop their SYNs, and each dropped one waits a second for the kernel to resend it.
    request_queue_size = 128
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

    def pause(self) -> None:
        """Nothing to do: requests taken until the batcher closes are committed and answered 202,
        later ones are answered 503, so the network server retries them."""

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

"""A strict NGSI-LD broker double: a real HTTP server on loopback that answers like Orion-LD.

Orion-LD needs MongoDB and Docker; the double needs nothing but the standard library, so adapter
tests (ours and partner cities') can run the real HTTP client against it::

    with BrokerDouble() as broker:
        requests.post(f"{broker.url}/ngsi-ld/v1/entityOperations/upsert?options=update", ...)
        assert broker.entities("lyon")["urn:ngsi-ld:ParkingSpot:lyon:1"]["status"]["value"] == "free"

It keeps entities and subscriptions in memory per tenant, rejects what Orion-LD rejects (see
``_service`` and ``_validation`` for the verified rules), records every request, and injects the
faults a client must survive: broker down (connection refused), slow answers, 5xx answers, and
per-entity 207 failures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from adapters.testing._service import (
    Headers,
    HttpRequest,
    HttpResponse,
    JsonLdContext,
    NgsiLdService,
    problem_response,
)
from adapters.testing.problems import ProblemDetail, ProblemType

logger = logging.getLogger(__name__)

_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
#: Bodies above the limit are read and dropped up to this size so the client sees the 413 instead
#: of a reset connection; beyond it the connection is closed unread.
_DRAIN_LIMIT = 64 * 1_048_576
_CHUNK = 65_536
#: How long stop() waits for a handler thread stuck outside the double (e.g. in a test's predicate).
_JOIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the double received it, with the status it answered.

    ``body`` is empty when the request was refused with 413 before the body was read; ``status`` is
    0 when the double went down while delaying the answer, so none was sent.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    status: int

    def json(self) -> Any:
        """The body parsed as JSON, for golden-request assertions."""
        return json.loads(self.body)


class BrokerDouble:
    """An in-memory Orion-LD on ``host:port`` (port 0 picks a free one); see the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_payload_bytes: int = 1_048_576,
        max_batch_entities: int = 1000,
        required_token: str | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.max_payload_bytes = max_payload_bytes
        self.required_token = required_token
        #: Bearer tokens accepted when ``required_token`` is set; add or remove to rotate.
        self.valid_tokens: set[str] = set() if required_token is None else {required_token}
        #: Seconds to wait before answering each request (a slow broker).
        self.delay_seconds: float = 0.0
        self._service = NgsiLdService(max_batch_entities)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._failures: deque[int] = deque()
        self._interrupt = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = False

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> BrokerDouble:
        """Listen and serve in a background thread."""
        if self._started:
            raise RuntimeError("the broker double is already started")
        self._started = True
        self._listen()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and join every thread; state is kept."""
        self._unlisten()
        self._started = False

    def go_down(self) -> None:
        """Close the listening socket and every open connection: clients get connection refused."""
        if not self._started:
            raise RuntimeError("the broker double is not started")
        self._unlisten()

    def come_up(self) -> None:
        """Listen again on the same port, with the state from before :meth:`go_down`."""
        if not self._started:
            raise RuntimeError("the broker double is not started")
        if self._server is None:
            self._listen()

    def __enter__(self) -> BrokerDouble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The listening port (the one picked when 0 was asked for, once started)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``; paths start with ``/ngsi-ld/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    def _listen(self) -> None:
        self._interrupt.clear()
        server = _Server((self.host, self._port), self)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how fast stop() and go_down() take effect
            name=f"broker-double:{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()

    def _unlisten(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        self._interrupt.set()
        server.shutdown()
        thread.join()
        server.drop_connections()
        server.server_close()

    # ------------------------------------------------------------------------- inspection

    def entities(self, tenant: str | None = None) -> dict[str, dict[str, Any]]:
        """Copies of the stored entities by id; ``None`` is the default tenant."""
        return self._service.entities(tenant)

    def tenants(self) -> set[str]:
        """Named tenants that exist (the default tenant always does and is not listed)."""
        return self._service.tenants()

    def context_of(self, entity_id: str, tenant: str | None = None) -> JsonLdContext | None:
        """The @context an entity was last written with: the Link URL, or the inline ``@context``
        of an ``application/ld+json`` body; ``None`` means the core context. KeyError if unknown."""
        return self._service.context_of(entity_id, tenant)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    # ---------------------------------------------------------------------- fault injection

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next ``count`` write requests with ``status`` and store nothing."""
        if count < 0 or not 400 <= status <= 599:
            raise ValueError("fail_next needs count >= 0 and an HTTP error status")
        with self._lock:
            self._failures.extend([status] * count)

    def reject_entities(self, predicate: Callable[[dict[str, Any]], ProblemDetail | None] | None) -> None:
        """Fail single entities of batch operations: a ProblemDetail from ``predicate`` becomes that
        entity's 207 error item and it is not stored. ``None`` removes the predicate."""
        with self._service.lock:
            self._service.entity_filter = predicate

    # ---------------------------------------------------------------------- request handling

    def _answer(self, request: HttpRequest, too_large: bool) -> HttpResponse | None:
        """Faults and the gatekeeping a deployment puts in front of Orion-LD, then the service.

        None means the double went down while delaying: the request gets no answer at all.
        """
        if self.delay_seconds > 0 and self._interrupt.wait(self.delay_seconds):
            return None
        if self.required_token is not None:
            authorization = request.headers.get("Authorization", "")
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or token.strip() not in self.valid_tokens:
                problem = ProblemDetail(
                    "about:blank", "Unauthorized", "a valid 'Authorization: Bearer <token>' header is required", 401
                )
                response = problem_response(problem)
                response.headers.append(("WWW-Authenticate", "Bearer"))
                return response
        if request.method in _WRITE_METHODS:
            with self._lock:
                status = self._failures.popleft() if self._failures else None
            if status is not None:
                kind = ProblemType.INTERNAL_ERROR if status >= 500 else ProblemType.BAD_REQUEST_DATA
                return problem_response(
                    ProblemDetail(kind, "Injected failure", f"fail_next() made this request answer {status}", status)
                )
        if too_large:
            return problem_response(
                ProblemDetail(
                    ProblemType.BAD_REQUEST_DATA,
                    "Request Entity too large",
                    f"payload size: {_declared_size(request.headers)}, max size supported: {self.max_payload_bytes}",
                    413,
                )
            )
        return self._service.handle(request)

    def _record(self, request: HttpRequest, status: int) -> None:
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=request.headers,
            body=request.body,
            status=status,
        )
        with self._lock:
            self._requests.append(recorded)


def _declared_size(headers: Headers) -> str:
    return headers.get("Content-Length", "unknown (chunked)")


class _Server(ThreadingHTTPServer):
    """Tracks connections and their threads, so going down cuts clients off and stopping leaves
    nothing running (socketserver itself neither closes keep-alive connections nor joins daemon
    threads)."""

    def __init__(self, address: tuple[str, int], double: BrokerDouble) -> None:
        self.double = double
        self._active: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []
        self._active_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Skip HTTPServer's reverse DNS lookup of the host (slow where DNS is missing)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self._active_lock:
            self._active.add(request)
            self._handlers = [t for t in self._handlers if t.is_alive()] + [thread]
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._active_lock:
            self._active.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut keep-alive connections whose handler threads wait for the next request."""
        with self._active_lock:
            active = list(self._active)
        for connection in active:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        """Close the listening socket and wait for the handler threads of dropped connections."""
        super().server_close()
        with self._active_lock:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(timeout=_JOIN_TIMEOUT)
            if thread.is_alive():
                logger.warning("broker double: handler thread %s did not finish", thread.name)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request fully, lets the double answer, writes the response."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: avoid delayed-ACK stalls
    server: _Server

    def version_string(self) -> str:
        return "orion-ld-double"

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP (bad request line, unknown verb) still gets a ProblemDetails body."""
        kind = ProblemType.BAD_REQUEST_DATA if code < 500 else ProblemType.OPERATION_NOT_SUPPORTED
        title = message or HTTPStatus(code).phrase
        self.close_connection = True
        self._write(problem_response(ProblemDetail(kind, title, explain, code)), close=True)

    def _serve(self) -> None:
        double = self.server.double
        url = urlsplit(self.path)
        headers = Headers(list(self.headers.items()))
        body, too_large, readable = self._read_body(double.max_payload_bytes)
        request = HttpRequest(
            method=self.command,
            path=url.path,
            query=parse_qsl(url.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )
        response: HttpResponse | None
        if readable is None:
            response = problem_response(
                ProblemDetail(ProblemType.BAD_REQUEST_DATA, "Invalid HTTP framing", "bad Content-Length or chunk size")
            )
        else:
            try:
                response = double._answer(request, too_large)
            except Exception:  # a bug here, or in a reject_entities predicate: answer, don't hang up
                logger.exception("broker double failed on %s %s", self.command, self.path)
                response = problem_response(
                    ProblemDetail(
                        ProblemType.INTERNAL_ERROR, "Internal Error", "the broker double failed; see its log", 500
                    )
                )
        double._record(request, 0 if response is None else response.status)
        if response is None:
            self.close_connection = True
        else:
            self._write(response, close=not readable)

    def _read_body(self, limit: int) -> tuple[bytes, bool, bool | None]:
        """Return (body, too large, connection still usable); None when the framing is broken."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return b"", False, None
        if length < 0:
            return b"", False, None
        if length <= limit:
            return self.rfile.read(length), False, True
        if length > _DRAIN_LIMIT:
            return b"", True, False
        self._drain(length)
        return b"", True, True

    def _read_chunked(self, limit: int) -> tuple[bytes, bool, bool | None]:
        parts: list[bytes] = []
        size_read = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                return b"", False, None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                break
            size_read += size
            if size_read > _DRAIN_LIMIT:
                return b"", True, False
            chunk = self.rfile.read(size)
            self.rfile.readline(1024)
            if size_read <= limit:
                parts.append(chunk)
        if size_read > limit:
            return b"", True, True
        return b"".join(parts), False, True

    def _drain(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, _CHUNK))
            if not chunk:
                return
            length -= len(chunk)

    def _write(self, response: HttpResponse, *, close: bool = False) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if response.body and self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:
            # The double went down (or the client left) while answering.
            self.close_connection = True

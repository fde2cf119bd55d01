"""A fake HTTP data source for end-to-end tests: documents served on 127.0.0.1 the way open-data portals do.

Each path serves a document: fixed bytes (a recorded payload), or a function called once per request
for a feed that changes between polls. Answers carry a strong ``ETag`` and ``If-None-Match`` gets 304,
as Opendatasoft and PEGELONLINE do, so conditional requests are exercised for real. A test can script
the next answers of a path with :class:`Fault`: an error status with its headers (503 or 429 with
``Retry-After``), a forced 304, a delay, a body cut in half. Every request is logged with its arrival
time, so a test can check what the adapter asked for and how long it waited between attempts.
"""

from __future__ import annotations

import hashlib
import json
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Document", "FakeSource", "Fault", "SourceRequest", "etag_of"]

#: What a path serves: the same bytes every time, or a function called for every request.
Document = bytes | Callable[[], bytes]


@dataclass(frozen=True)
class Fault:
    """One scripted answer replacing the normal one: a status (with headers), a delay, or a cut body.

    ``status`` 200 serves the document (after ``delay``; only half of it with ``truncate``); 304 answers
    "not modified" whatever the request said; any other status answers with a small JSON problem.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate: bool = False


@dataclass(frozen=True)
class SourceRequest:
    """One request as the fake source saw it; ``at`` is when it was answered (monotonic clock)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int
    at: float


def etag_of(document: bytes) -> str:
    """The strong ETag the fake source sends for ``document`` (a test can predict it)."""
    return '"' + hashlib.sha256(document).hexdigest()[:20] + '"'


class FakeSource:
    """An HTTP server on ``host`` (127.0.0.1 by default, a free port) serving ``documents`` by path.

    ``documents`` may be changed while the server runs (a new recorded state for the next poll).
    """

    def __init__(
        self,
        documents: Mapping[str, Document] | None = None,
        *,
        host: str = "127.0.0.1",
        content_type: str = "application/json",
        name: str = "fake-source",
    ) -> None:
        self.documents: dict[str, Document] = dict(documents or {})
        self.content_type = content_type
        self._faults: dict[str, deque[Fault]] = {}
        self._requests: list[SourceRequest] = []
        self._lock = threading.Lock()
        self._server = _Server((host, 0), _Handler)
        self._server.source = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join every handler thread."""
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()  # joins the handler threads (daemon_threads is off)

    def __enter__(self) -> FakeSource:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------ for the tests

    def url(self, path: str = "", query: str = "") -> str:
        """``http://127.0.0.1:<port><path>[?query]``."""
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        return f"http://{host}:{port}{path}{'?' + query if query else ''}"

    @property
    def requests(self) -> list[SourceRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[SourceRequest]:
        return [r for r in self.requests if r.path == path]

    def fail_next(self, path: str, *faults: Fault) -> None:
        """Answer the next requests to ``path`` with ``faults``, in order; then serve normally again."""
        with self._lock:
            self._faults.setdefault(path, deque()).extend(faults)

    # -------------------------------------------------------------------------- internals

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            return queue.popleft() if queue else None

    def _record(self, request: SourceRequest) -> None:
        with self._lock:
            self._requests.append(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    source: FakeSource

    def server_bind(self) -> None:
        """Skip HTTPServer's reverse DNS lookup, which is slow where no DNS answers."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


def _problem(status: int) -> bytes:
    return json.dumps({"status": status, "detail": HTTPStatus(status).phrase}).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0 (the default): one request per connection, so no handler thread waits on keep-alive.

    def do_GET(self) -> None:
        source = self.server.source
        parts = urlsplit(self.path)
        fault = source._next_fault(parts.path)
        document = source.documents.get(parts.path)
        headers: dict[str, str] = {}
        if document is None:
            status, payload = 404, _problem(404)
        elif fault is not None and fault.status not in (200, 304):
            status, payload = fault.status, _problem(fault.status)
        else:
            body = document() if callable(document) else document  # a changing feed moves on only here
            etag = etag_of(body)
            if (fault is not None and fault.status == 304) or etag in (
                tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")
            ):
                status, payload = 304, b""
            else:
                status, payload = 200, body[: len(body) // 2] if fault is not None and fault.truncate else body
            headers["ETag"] = etag
        if status != 304:
            headers["Content-Type"] = source.content_type if status == 200 else "application/json"
        if fault is not None:
            headers.update(fault.headers)
            if fault.delay:
                time.sleep(fault.delay)
        request = SourceRequest("GET", parts.path, parts.query, dict(self.headers.items()), status, time.monotonic())
        source._record(request)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass

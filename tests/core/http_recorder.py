"""A recording HTTP server on 127.0.0.1 for tests at the HTTP boundary (broker client, fetcher, sinks)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it; header names are lowercased."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


Responder = Callable[[Recorded], Reply]


def json_reply(status: int, document: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(document).encode(), {"Content-Type": "application/json", **(headers or {})})


class RecordingServer:
    """Records every request and answers from a scripted queue of replies or a responder function."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.responder: Responder | None = None
        self.scripted: list[Reply] = []
        self.unexpected: list[str] = []
        """Requests that arrived with no reply scripted; the fixture fails the test if any."""
        self.handler_errors: list[str] = []
        self.stop = threading.Event()  # set at teardown so slow responders return
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.handle_error = self._handle_error  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})

    def script(self, *replies: Reply) -> None:
        self.scripted.extend(replies)

    def _answer(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.responder is None and not self.scripted:
                self.unexpected.append(f"unexpected request {request.method} {request.target}")
                return Reply(599, b"no reply scripted")
            if self.responder is None:
                return self.scripted.pop(0)
        return self.responder(request)

    def _handle_error(self, request: object, client_address: object) -> None:
        # A client that gives up early (timeout, size limit) breaks the pipe; that is expected here.
        self.handler_errors.append(f"handler error from {client_address}")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                reply = server._answer(recorded)
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:
                return None

        return Handler

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        self.stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

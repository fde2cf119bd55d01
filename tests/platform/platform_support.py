"""Test machinery for the platform commands: a fake QuantumLeap, a static @context server, helpers.

Both servers are real HTTP on 127.0.0.1 (port 0), record every request and are stopped by the
fixtures. The fake QuantumLeap answers like QuantumLeap's API (``specification/quantumleap.yml`` of
orchestracities/ngsi-timeseries-api, and its Timescale translator):

* ``GET /version`` -> ``{"version": ...}``; ``GET /health`` -> ``{"status": "pass"}``;
* ``GET /v2/entities/{id}/attrs/{attr}`` -> ``{entityId, entityType, attrName, index, values}`` for
  the tenant in ``Fiware-Service`` only (with just ``NGSILD-Tenant`` it answers 200 with nothing, as
  QuantumLeap does), ``fromDate``/``toDate`` inclusive, ``offset``, ``limit`` silently capped at
  ``default_limit``, ``aggrMethod`` + ``aggrPeriod`` (one value per period, indexed by its start),
  and 404 ``{"error": "Not Found", "description": "No records were found for such query."}`` when
  nothing matches;
* ``POST /v2/notify`` -> 200, recorded.

The series it serves are response bodies of that endpoint for a whole range, in ``recorded/quantumleap``
(``<tenant>--<Type>-<local id>--<attr>.json``). They are shaped exactly like QuantumLeap's answers but
were written for these tests (no QuantumLeap runs here), which the file names do not hide.
"""

from __future__ import annotations

import json
import statistics
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RECORDED = HERE / "recorded" / "quantumleap"
CONTEXT_DIR = ROOT / "broker-config" / "context"

NOT_FOUND = {"error": "Not Found", "description": "No records were found for such query."}
PERIOD_CHARS = {"year": 4, "month": 7, "day": 10, "hour": 13, "minute": 16, "second": 19}
PERIOD_PAD = {
    "year": "-01-01T00:00:00.000+00:00",
    "month": "-01T00:00:00.000+00:00",
    "day": "T00:00:00.000+00:00",
    "hour": ":00:00.000+00:00",
    "minute": ":00.000+00:00",
    "second": ".000+00:00",
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


def load_recordings(folder: Path = RECORDED) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(tenant, entity id, attribute) -> the recorded whole-range answer."""
    series = {}
    for path in sorted(folder.glob("*.json")):
        tenant = path.name.split("--", 1)[0]
        body = json.loads(path.read_text(encoding="utf-8"))
        series[(tenant, body["entityId"], body["attrName"])] = body
    return series


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _aggregate(method: str, values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if method == "count":
        return len(values)
    if not numbers:
        return None
    if method == "sum":
        return sum(numbers)
    if method == "avg":
        return statistics.fmean(numbers)
    return min(numbers) if method == "min" else max(numbers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    handle: Callable[[Request], tuple[int, Any, str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=unquote(url.path),
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        status, payload, content_type = self.server.handle(request)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve  # noqa: N815


class _HttpFake:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: Request) -> tuple[int, Any, str]:
        raise NotImplementedError

    def _record(self, request: Request) -> tuple[int, Any, str]:
        with self._lock:
            self.requests.append(request)
        return self.handle(request)

    def start(self) -> _HttpFake:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.handle = self._record
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._server.server_close()
            self._server = self._thread = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"


class FakeQuantumLeap(_HttpFake):
    def __init__(self, recordings: Mapping[tuple[str, str, str], dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.recordings = dict(load_recordings() if recordings is None else recordings)
        self.default_limit = 10_000
        self.version = "1.0.0"
        self.notifications: list[dict[str, Any]] = []

    def handle(self, request: Request) -> tuple[int, Any, str]:
        json_type = "application/json"
        if request.method == "GET" and request.path == "/version":
            return 200, {"version": self.version}, json_type
        if request.method == "GET" and request.path == "/health":
            return 200, {"status": "pass"}, "application/health+json"
        if request.method == "POST" and request.path == "/v2/notify":
            self.notifications.append(json.loads(request.body))
            return 200, b"Notification successfully processed", "text/plain"
        parts = request.path.split("/")
        if request.method == "GET" and len(parts) == 6 and parts[1:3] == ["v2", "entities"] and parts[4] == "attrs":
            return self._attribute(request, parts[3], parts[5])
        return 404, {"error": "Not Found", "description": f"{request.method} {request.path}"}, json_type

    def _attribute(self, request: Request, entity_id: str, attr: str) -> tuple[int, Any, str]:
        tenant = request.headers.get("fiware-service")
        if not tenant:  # QuantumLeap's read API looks at Fiware-Service only
            empty = {"entityId": entity_id, "attrName": attr, "index": [], "values": []}
            return 200, empty, "application/json"
        recorded = self.recordings.get((tenant.lower(), entity_id, attr))
        if recorded is None or request.query.get("type", recorded["entityType"]) != recorded["entityType"]:
            return 404, NOT_FOUND, "application/json"
        lower = _moment(request.query["fromDate"]) if "fromDate" in request.query else None
        upper = _moment(request.query["toDate"]) if "toDate" in request.query else None
        rows = [
            (i, v)
            for i, v in zip(recorded["index"], recorded["values"], strict=True)
            if (lower is None or _moment(i) >= lower) and (upper is None or _moment(i) <= upper)
        ]
        method, period = request.query.get("aggrMethod"), request.query.get("aggrPeriod")
        if method and period:
            groups: dict[str, list[Any]] = {}
            for moment, value in rows:
                groups.setdefault(moment[: PERIOD_CHARS[period]] + PERIOD_PAD[period], []).append(value)
            rows = [(moment, _aggregate(method, values)) for moment, values in groups.items()]
        elif method:
            rows = [(rows[0][0], _aggregate(method, [v for _, v in rows]))] if rows else []
        offset = int(request.query.get("offset", "0"))
        limit = min(int(request.query.get("limit", str(self.default_limit))), self.default_limit)
        rows = rows[offset : offset + limit]
        if not rows:
            return 404, NOT_FOUND, "application/json"
        answer = {
            "entityId": entity_id,
            "entityType": recorded["entityType"],
            "attrName": attr,
            "index": [i for i, _ in rows],
            "values": [v for _, v in rows],
        }
        return 200, answer, "application/json"


class ContextServer(_HttpFake):
    """Serves broker-config/context like the compose file's nginx does (application/ld+json)."""

    def __init__(self, folder: Path = CONTEXT_DIR) -> None:
        super().__init__()
        self.folder = folder

    def handle(self, request: Request) -> tuple[int, Any, str]:
        name = request.path.lstrip("/")
        path = self.folder / name
        if request.method == "GET" and "/" not in name and path.is_file():
            return 200, path.read_bytes(), "application/ld+json"
        return 404, b"not found", "text/plain"


Sample = tuple[str, dict[str, Any]]  # (where it came from, entity)


def offline_sample_run(workdir: Path) -> tuple[list[Sample], str]:
    """Every installed adapter's offline sample run, as CI runs it: (entities, the run's output)."""
    from click.testing import CliRunner

    from adapters.cli import main
    from adapters.core.adapter import discover_adapters

    env = {f"DOS_ADAPTERS_{name.upper()}_ENABLED": "true" for name in discover_adapters()}
    env.update(
        {
            "DOS_LOG_LEVEL": "ERROR",
            "DOS_OUTPUT_PATH": str(workdir / "entities.ndjson"),
            "DOS_DEAD_LETTER_PATH": str(workdir / "dead.ndjson"),
            "DOS_OUTBOX_PATH": str(workdir / "outbox.sqlite"),
        }
    )
    result = CliRunner().invoke(main, ["run", "--once", "--offline"], env=env, catch_exceptions=False)
    output = workdir / "entities.ndjson"
    lines = output.read_text(encoding="utf-8").splitlines() if output.is_file() else []
    entities = [(f"offline sample run:{n}", json.loads(line)) for n, line in enumerate(lines, start=1) if line.strip()]
    return entities, result.output


def recorded_cases() -> list[Sample]:
    """The expected entities of every recorded case of every installed adapter."""
    from adapters.core.adapter import discover_adapters

    found = []
    for adapter in discover_adapters().values():
        package = Path(__import__(adapter.__module__, fromlist=["_"]).__file__ or "").parent
        for expected in sorted(package.glob("cases/*/expected.ndjson")):
            for number, line in enumerate(expected.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    found.append((f"{expected.relative_to(package.parent.parent)}:{number}", json.loads(line)))
    return found


def write_config(path: Path, **sections: Mapping[str, Any]) -> Path:
    """A TOML config from nested mappings of plain values (str, bool, int, float, lists of str)."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return repr(item)
        if isinstance(item, list):
            return "[" + ", ".join(value(i) for i in item) + "]"
        return json.dumps(str(item))

    lines: list[str] = []

    def table(name: str, body: Mapping[str, Any]) -> None:
        lines.append(f"[{name}]")
        nested = []
        for key, item in body.items():
            if isinstance(item, Mapping):
                nested.append((f"{name}.{key}", item))
            else:
                lines.append(f"{key} = {value(item)}")
        for child, child_body in nested:
            table(child, child_body)

    for name, body in sections.items():
        table(name, body)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

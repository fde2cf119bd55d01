"""``dos-adapters history``: one attribute of one entity over time, from QuantumLeap's API.

``GET /v2/entities/{id}/attrs/{attr}?type=&fromDate=&toDate=[&aggrMethod=&aggrPeriod=]&limit=&offset=``
with the tenant in ``Fiware-Service``: QuantumLeap's read API looks at no other header (with only
``NGSILD-Tenant`` it answers 200 with nothing). A 404 means "no records", not an error.

Long downloads are split into time windows (a day each by default), every window read page by page
(``limit``, ``offset``) until QuantumLeap has no more rows, so a progress bar can count windows.
Aggregated queries (``--aggr-period``) come in one window: their answer is small, and a window edge
inside a period would split it into two partial aggregates.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import requests

from adapters.platform.ngsi import PlatformError
from adapters.platform.spreadsheet import spreadsheet_safe

__all__ = [
    "AGGR_METHODS",
    "AGGR_PERIODS",
    "QuantumLeapClient",
    "Series",
    "download",
    "entity_type_of",
    "parse_time",
    "render_csv",
    "render_json",
    "render_png",
    "tenant_of",
    "time_windows",
]

AGGR_METHODS = ("count", "sum", "avg", "min", "max")
AGGR_PERIODS = ("year", "month", "day", "hour", "minute", "second")
DEFAULT_PAGE_SIZE = 10_000  # QuantumLeap's DEFAULT_LIMIT: it never returns more rows per request
OutputFormat = Literal["csv", "json", "png"]


@dataclass
class Series:
    entity_id: str
    attr: str
    entity_type: str | None = None
    index: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r}: expected an ISO 8601 date or date-time, e.g. 2026-11-20 or 2026-11-20T06:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entity_type_of(entity_id: str) -> str | None:
    """``OffStreetParking`` of ``urn:ngsi-ld:OffStreetParking:dortmund:101059``."""
    parts = entity_id.split(":")
    return parts[2] if len(parts) >= 5 and parts[:2] == ["urn", "ngsi-ld"] else None


def tenant_of(entity_id: str) -> str | None:
    """``dortmund`` of ``urn:ngsi-ld:OffStreetParking:dortmund:101059`` (the project's id scheme)."""
    parts = entity_id.split(":")
    return parts[3] if len(parts) >= 5 and parts[:2] == ["urn", "ngsi-ld"] else None


def time_windows(start: datetime, end: datetime, step: timedelta) -> list[tuple[datetime, datetime]]:
    """Consecutive windows covering [start, end]; QuantumLeap's bounds are inclusive, so each window
    ends a millisecond before the next begins."""
    if end < start:
        raise ValueError(f"--from {iso(start)} is after --to {iso(end)}")
    if step <= timedelta(0):
        raise ValueError("window must be positive")
    windows = []
    cursor = start
    tick = timedelta(milliseconds=1)
    while True:
        upper = cursor + step
        if upper > end:
            windows.append((cursor, end))
            return windows
        windows.append((cursor, upper - tick))
        cursor = upper


class QuantumLeapClient:
    def __init__(
        self,
        base_url: str,
        *,
        tenant: str,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.timeout = timeout
        self.session = session or requests.Session()

    def close(self) -> None:
        self.session.close()

    def attribute(self, entity_id: str, attr: str, params: Mapping[str, str]) -> dict[str, Any] | None:
        """One page of ``/v2/entities/{id}/attrs/{attr}``; None when QuantumLeap has no records."""
        url = f"{self.base_url}/v2/entities/{quote(entity_id, safe='')}/attrs/{attr}"
        # The tenant goes in Fiware-Service only: QuantumLeap's read API ignores NGSILD-Tenant.
        headers = {"Accept": "application/json", "Fiware-Service": self.tenant}
        try:
            response = self.session.get(url, params=dict(params), headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            raise PlatformError(f"QuantumLeap {self.base_url} unreachable ({error.__class__.__name__})") from None
        with response:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise PlatformError(f"QuantumLeap answered {response.status_code}: {response.text[:200]}")
            try:
                body = response.json()
            except ValueError:
                raise PlatformError("QuantumLeap answered something that is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("index"), list):
            raise PlatformError("QuantumLeap's answer has no 'index' list")
        return body


def download(
    client: QuantumLeapClient,
    entity_id: str,
    attr: str,
    *,
    start: datetime,
    end: datetime,
    aggr_method: str | None = None,
    aggr_period: str | None = None,
    window: timedelta = timedelta(days=1),
    page_size: int = DEFAULT_PAGE_SIZE,
    on_windows: Callable[[int], None] | None = None,
    on_window_done: Callable[[], None] | None = None,
) -> Series:
    """The attribute's values from ``start`` to ``end``, window by window, page by page."""
    if aggr_period and not aggr_method:
        raise ValueError("--aggr-period needs --aggr-method")
    if aggr_method and aggr_method not in AGGR_METHODS:
        raise ValueError(f"--aggr-method {aggr_method!r}: one of {', '.join(AGGR_METHODS)}")
    if aggr_period and aggr_period not in AGGR_PERIODS:
        raise ValueError(f"--aggr-period {aggr_period!r}: one of {', '.join(AGGR_PERIODS)}")
    spans = [(start, end)] if aggr_method else time_windows(start, end, window)
    if on_windows is not None:
        on_windows(len(spans))
    entity_type = entity_type_of(entity_id)
    series = Series(entity_id=entity_id, attr=attr, entity_type=entity_type)
    for lower, upper in spans:
        offset = 0
        while True:
            params = {"fromDate": iso(lower), "toDate": iso(upper), "limit": str(page_size), "offset": str(offset)}
            if entity_type:
                params["type"] = entity_type
            if aggr_method:
                params["aggrMethod"] = aggr_method
            if aggr_period:
                params["aggrPeriod"] = aggr_period
            page = client.attribute(entity_id, attr, params)
            if page is None:
                break
            index, values = page.get("index") or [], page.get("values") or []
            if len(index) != len(values):
                raise PlatformError("QuantumLeap's answer has index and values of different lengths")
            series.entity_type = series.entity_type or page.get("entityType")
            series.index.extend(str(i) for i in index)
            series.values.extend(values)
            offset += len(index)
            # QuantumLeap silently caps a page at its DEFAULT_LIMIT, which may be below page_size:
            # only an empty answer (404) says the window is exhausted.
            if not index:
                break
        if on_window_done is not None:
            on_window_done()
    return series


def render_csv(series: Series) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["time", spreadsheet_safe(series.attr)])
    for moment, value in zip(series.index, series.values, strict=True):
        cell = "" if value is None else json.dumps(value) if isinstance(value, dict | list) else value
        writer.writerow([spreadsheet_safe(str(moment)), spreadsheet_safe(cell) if isinstance(cell, str) else cell])
    return buffer.getvalue().rstrip("\n")


def render_json(series: Series) -> str:
    document = {
        "entityId": series.entity_id,
        "entityType": series.entity_type,
        "attrName": series.attr,
        "index": series.index,
        "values": series.values,
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def _numeric(values: Sequence[Any], index: Sequence[str]) -> tuple[list[datetime], list[float]]:
    times, numbers = [], []
    for moment, value in zip(index, values, strict=True):
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, int | float) and math.isfinite(value):
            try:
                times.append(parse_time(moment))
            except ValueError:
                continue
            numbers.append(float(value))
    return times, numbers


def render_png(series: Series, path: Path, *, label: str | None = None) -> None:
    """A time-series plot of the numeric values; PlatformError when there is nothing numeric."""
    times, numbers = _numeric(series.values, series.index)
    if not numbers:
        raise PlatformError(
            f"{series.attr} of {series.entity_id} has no numeric values in this range to plot; use --format csv or json"
        )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlatformError("--format png needs matplotlib: pip install 'matplotlib>=3.8,<4'") from None
    figure, axes = plt.subplots(figsize=(10, 4), dpi=100)
    try:
        x = mdates.date2num(times)  # type: ignore[no-untyped-call]
        axes.plot(x, numbers, marker="." if len(numbers) < 200 else None, linewidth=1.2)
        axes.xaxis_date(tz=UTC)
        axes.set_title(f"{series.attr} of {series.entity_id}", fontsize=10)
        axes.set_xlabel("time (UTC)")
        axes.set_ylabel(label or series.attr)
        axes.grid(True, alpha=0.3)
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)

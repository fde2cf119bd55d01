"""Polite HTTP fetching of open-data sources: timeouts, conditional requests, retries with backoff.

Sources that send ``ETag`` / ``Last-Modified`` get them back, so an unchanged dataset costs one 304
and no normalising. Transient failures (connection errors, 429, 5xx) are retried a few times with
exponential backoff, honouring ``Retry-After``; then the poll fails and the next scheduled one tries again.

The body is spooled: up to ``spool_bytes`` it stays in memory, beyond that it goes to a temporary
file (deleted on ``close``), which a streaming parser reads record by record; so a large export
costs disk, not memory.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from typing import IO

import requests
from requests.adapters import HTTPAdapter
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from adapters import __version__

__all__ = ["FetchError", "Fetched", "SourceFetcher"]

USER_AGENT = f"dos-adapters/{__version__} (+https://github.com/dos-adapters/dos-adapters)"


MAX_RETRY_AFTER = 60.0
SPOOL_BYTES = 1024 * 1024
"""Bodies up to this size stay in memory; larger ones are spooled to a temporary file."""


class _CappedRetry(Retry):
    """Honour Retry-After, but never let one source hold a poll thread for longer than a minute."""

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, MAX_RETRY_AFTER)


class FetchError(Exception):
    """The source could not be read this time; the message says why."""


@dataclass(frozen=True)
class Fetched:
    url: str
    payload: IO[bytes] | None
    """The body as a binary file positioned at its start; None when the source answered 304 Not Modified."""
    status: int
    validators: dict[str, str]
    """Conditional-request headers to send next time, once this payload is safely handled."""

    def close(self) -> None:
        """Frees the body (and removes its temporary file)."""
        if self.payload is not None:
            self.payload.close()


class SourceFetcher:
    def __init__(self, *, retries: int = 3, backoff: float = 1.0, spool_bytes: int = SPOOL_BYTES) -> None:
        self._spool_bytes = spool_bytes
        self._session = requests.Session()
        retry = _CappedRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self._session.mount("http://", HTTPAdapter(max_retries=retry))
        self._session.mount("https://", HTTPAdapter(max_retries=retry))
        self._session.headers["User-Agent"] = USER_AGENT
        self._validators: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    def remember(self, fetched: Fetched) -> None:
        """Called after the payload is committed, so a crash before that re-reads it instead of getting a 304."""
        with self._lock:
            self._validators[fetched.url] = fetched.validators

    def get(self, url: str, *, timeout: float, max_bytes: int = 64 * 1024 * 1024) -> Fetched:
        with self._lock:
            headers = dict(self._validators.get(url, {}))
        try:
            with self._session.get(url, headers=headers, timeout=timeout, stream=True) as response:
                if response.status_code == 304:
                    return Fetched(url, None, 304, headers)
                if response.status_code != 200:
                    raise FetchError(f"{url}: HTTP {response.status_code} {response.reason}")
                body = self._spool(url, response, max_bytes)
                remembered = {}
                if etag := response.headers.get("ETag"):
                    remembered["If-None-Match"] = etag
                if modified := response.headers.get("Last-Modified"):
                    remembered["If-Modified-Since"] = modified
                return Fetched(url, body, 200, remembered)
        except requests.RequestException as error:
            raise FetchError(f"{url}: {error.__class__.__name__}: {error}") from None

    def _spool(self, url: str, response: requests.Response, max_bytes: int) -> IO[bytes]:
        body = tempfile.SpooledTemporaryFile(max_size=self._spool_bytes)  # noqa: SIM115 - Fetched.close closes it
        try:
            size = 0
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"{url}: response larger than {max_bytes} bytes, refused")
                body.write(chunk)
        except BaseException as error:
            body.close()
            if isinstance(error, OSError) and not isinstance(error, requests.RequestException):
                raise FetchError(f"{url}: cannot spool the response: {error}") from None  # e.g. disk full
            raise
        body.seek(0)
        return body

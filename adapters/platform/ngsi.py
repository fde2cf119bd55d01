"""A small NGSI-LD client for the platform commands (provision, query): any method, one tenant.

Every request carries the @context the adapters send (``Link`` header, ``application/json``), the
tenant in ``NGSILD-Tenant`` and the broker credentials of ``[broker]`` (static token or OAuth2 client
credentials, refreshed once on a 401). The batch writer of the adapters stays in ``adapters.core``;
this client only reads and manages subscriptions, so it needs no outbox.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests

from adapters.core.broker import BrokerClient, BrokerError, problem_text

__all__ = ["NGSI_LD", "NgsiLdClient", "PlatformError", "problem_text", "problem_type"]

NGSI_LD = "/ngsi-ld/v1"


class PlatformError(Exception):
    """A platform component could not be asked or refused; the message says what to check."""


def problem_type(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("type", "")) if isinstance(body, Mapping) else ""


class NgsiLdClient:
    """``request(method, path, tenant=...)`` against ``<url>/ngsi-ld/v1``; counts the writes it sends."""

    def __init__(
        self,
        url: str,
        *,
        context_url: str,
        token: str | None = None,
        oauth2: Mapping[str, str] | None = None,
        verify_tls: bool = True,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        # Headers, tenant and credentials are the core client's: one request path for the whole project.
        self._broker = BrokerClient(
            url,
            context_url=context_url,
            token=token,
            oauth2=oauth2,
            verify_tls=verify_tls,
            timeout=timeout,
            session=session,
        )
        self.base_url = self._broker.base_url
        self.context_url = context_url
        self.timeout = timeout
        self.session = self._broker.session
        self.writes = 0

    @classmethod
    def from_config(cls, broker: Mapping[str, Any]) -> NgsiLdClient:
        """From the ``[broker]`` section; PlatformError when no url is configured."""
        if not broker.get("url"):
            raise PlatformError("no [broker] url configured (DOS_BROKER_URL), e.g. http://localhost:1026")
        return cls(
            broker["url"],
            context_url=broker["context"],
            token=broker.get("token"),
            oauth2=broker.get("oauth2"),
            verify_tls=broker.get("verify_tls", True),
            timeout=broker.get("timeout", 10.0),
        )

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        tenant: str | None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> requests.Response:
        """Send one request; PlatformError when the broker cannot be reached or refuses the credentials."""
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if method != "GET":
            self.writes += 1
        try:
            response = self._broker.request(method, f"{NGSI_LD}{path}", tenant, params=params, data=data)
        except BrokerError as error:
            raise PlatformError(str(error)) from None
        except requests.RequestException as error:
            raise PlatformError(f"broker {self.base_url} unreachable ({error.__class__.__name__})") from None
        if response.status_code in (401, 403):
            raise PlatformError(
                f"the broker refused {method} {path} ({response.status_code}): check [broker] token or "
                "[broker.oauth2] and the token's rights for this tenant"
            )
        return response

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

from adapters.core.broker import JSONLD_CONTEXT_REL, BrokerError, OAuth2ClientCredentials

__all__ = ["NGSI_LD", "NgsiLdClient", "PlatformError", "problem_text", "problem_type"]

NGSI_LD = "/ngsi-ld/v1"


class PlatformError(Exception):
    """A platform component could not be asked or refused; the message says what to check."""


def problem_text(response: requests.Response) -> str:
    """``title: detail`` of a ProblemDetails body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, Mapping):
        text = ": ".join(str(body[key]) for key in ("title", "detail") if body.get(key))
        return text or json.dumps(body)[:200]
    return str(body)[:200]


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
        self.base_url = url.rstrip("/")
        self.context_url = context_url
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.verify = verify_tls
        self._token = token or None
        self._oauth2 = (
            OAuth2ClientCredentials(
                self.session,
                oauth2["token_url"],
                oauth2["client_id"],
                oauth2["client_secret"],
                oauth2.get("scope"),
                timeout,
            )
            if oauth2
            else None
        )
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

    @property
    def link_header(self) -> str:
        return f'<{self.context_url}>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"'

    def _auth(self, refresh: bool = False) -> dict[str, str]:
        if self._oauth2 is not None:
            return {"Authorization": f"Bearer {self._oauth2.token(refresh=refresh)}"}
        if self._token:
            return {"Authorization": f"Bearer {self._token}"}
        return {}

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
        headers = {"Accept": "application/json", "Link": self.link_header}
        if tenant:
            headers["NGSILD-Tenant"] = tenant
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        url = f"{self.base_url}{NGSI_LD}{path}"
        if method != "GET":
            self.writes += 1
        try:
            response = self._send(method, url, headers, params, data)
            if response.status_code == 401 and self._oauth2 is not None:
                response.close()
                response = self._send(method, url, headers, params, data, refresh=True)
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

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: Mapping[str, str] | None,
        data: bytes | None,
        *,
        refresh: bool = False,
    ) -> requests.Response:
        return self.session.request(
            method,
            url,
            params=params,
            data=data,
            headers={**headers, **self._auth(refresh)},
            timeout=self.timeout,
        )

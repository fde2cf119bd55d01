"""Orion-LD client for batch upserts, over a pooled ``requests`` session.

Exceptions::

    BrokerError                  anything the broker link reports
    ├── BrokerConfigError        the configuration is wrong (401 after a token refresh, 403, 404,
    │                            bad TLS): retrying cannot help, a person must act; nothing is dropped
    ├── BrokerQueryError         a read (``query``) failed; the message says what to check
    └── (transient problems and per-entity rejections are *results*, not exceptions: see UpsertResult)

Every HTTP status is classified by ``STATUS_POLICY`` (a table, so the policy is read in one place).
A batch is at most ``max_batch_entities`` entities and ``max_payload_bytes`` bytes; a 413 halves it.
Upserts always use ``options=update``: the default ``replace`` deletes and re-creates the entity,
which then briefly vanishes from queries.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
import requests

from adapters.core.entities import Entity

__all__ = [
    "STATUS_POLICY",
    "Action",
    "BrokerClient",
    "BrokerConfigError",
    "BrokerError",
    "BrokerQueryError",
    "OAuth2ClientCredentials",
    "UpsertResult",
    "encode_entities",
    "encode_json",
    "problem_text",
]

log = logging.getLogger("dos_adapters.broker")

UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
ENTITIES_PATH = "/ngsi-ld/v1/entities"
MAX_PAGE_SIZE = 1000  # Orion-LD refuses a larger limit with 400
JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


class BrokerError(Exception):
    """A problem on the link to the broker."""


class BrokerConfigError(BrokerError):
    """The broker refuses us for a reason only a configuration change fixes."""


class BrokerQueryError(BrokerError):
    """A query could not be answered; the message says why and what to check."""


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


def _check_query(response: requests.Response, base_url: str, tenant: str | None) -> None:
    status = response.status_code
    if status == 200:
        return
    if status in (401, 403):
        raise BrokerQueryError(
            f"the broker refused the query ({status}): check [broker] token or [broker.oauth2] "
            "and that the token may read this tenant"
        )
    if status == 404:
        if "NonExistingTenant" in response.text:
            raise BrokerQueryError(f"tenant {tenant!r} does not exist in the broker (nothing was ever written for it)")
        raise BrokerQueryError(f"{base_url}{ENTITIES_PATH} not found: [broker] url must be the broker root")
    raise BrokerQueryError(f"the broker answered {status}: {problem_text(response)}")


class Action(Enum):
    DELIVERED = "delivered"
    PARTIAL = "partial"  # 207: read the body entity by entity
    RETRY = "retry"  # transient: keep in the outbox, back off
    SPLIT = "split"  # 413: halve the batch
    REJECT = "reject"  # the broker will never accept these entities as they are
    CONFIG = "config"  # a person must fix the configuration


@dataclass(frozen=True)
class StatusPolicy:
    action: Action
    hint: str


STATUS_POLICY: Mapping[int, StatusPolicy] = {
    201: StatusPolicy(Action.DELIVERED, "created"),
    204: StatusPolicy(Action.DELIVERED, "updated"),
    207: StatusPolicy(Action.PARTIAL, "some entities failed; a 207 without errors is a success"),
    400: StatusPolicy(Action.REJECT, "the broker refused the batch as malformed; see the dead-letter file"),
    401: StatusPolicy(Action.CONFIG, "unauthorised: check [broker] token or [broker.oauth2]"),
    403: StatusPolicy(Action.CONFIG, "forbidden: the token lacks the right to write entities for this tenant"),
    404: StatusPolicy(Action.CONFIG, "not found: [broker] url must be the broker root (no /ngsi-ld path)"),
    408: StatusPolicy(Action.RETRY, "request timeout"),
    409: StatusPolicy(Action.REJECT, "conflict"),
    413: StatusPolicy(Action.SPLIT, "payload too large: lower [broker] max_payload_bytes to the broker's limit"),
    415: StatusPolicy(Action.REJECT, "unsupported media type"),
    422: StatusPolicy(Action.REJECT, "unprocessable"),
    429: StatusPolicy(Action.RETRY, "rate limited"),
    500: StatusPolicy(Action.RETRY, "broker internal error"),
    502: StatusPolicy(Action.RETRY, "bad gateway in front of the broker"),
    503: StatusPolicy(Action.RETRY, "unavailable (also: the broker cannot fetch the @context; serve it locally)"),
    504: StatusPolicy(Action.RETRY, "gateway timeout"),
}


def policy_for(status: int) -> StatusPolicy:
    if status in STATUS_POLICY:
        return STATUS_POLICY[status]
    if status >= 500:
        return StatusPolicy(Action.RETRY, f"server error {status}")
    if 200 <= status < 300:
        return StatusPolicy(Action.DELIVERED, f"success {status}")
    return StatusPolicy(Action.REJECT, f"client error {status}")


@dataclass
class UpsertResult:
    requests: int = 0
    delivered: list[str] = field(default_factory=list)
    pending: list[Entity] = field(default_factory=list)
    """Not delivered for a transient reason; to be retried in the same order."""
    rejected: list[tuple[Entity, dict[str, Any]]] = field(default_factory=list)
    """Refused for good, each with the broker's ProblemDetails."""
    transient_error: str | None = None
    retry_after: float | None = None


# The fallback for what orjson refuses. One encoder for every call: json.dumps with these options builds
# a new JSONEncoder each time, which costs about as much as encoding a small entity.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_json(document: Any) -> bytes:
    """Compact UTF-8 JSON, as ``json.dumps(ensure_ascii=False, separators=(",", ":"))`` writes it.

    orjson does it about nine times faster and writes the same bytes for what entities hold, apart
    from float exponents (``1e-7``, not ``1e-07``: the same number) and NaN/Infinity (``null``, where
    json writes tokens no JSON parser accepts; entities are checked finite before they get here).
    What orjson refuses (integers beyond 64 bits, lone surrogates) goes through json, which encodes
    the integers and raises for the surrogates as before.
    """
    try:
        return orjson.dumps(document)
    except TypeError:
        return _ENCODER.encode(document).encode("utf-8")


def encode_entities(entities: Sequence[Entity]) -> bytes:
    return encode_json(entities)


def encoded_batches(
    entities: Sequence[Entity], max_entities: int, max_bytes: int
) -> Iterator[tuple[list[Entity], bytes]]:
    """``split_batches`` with each batch's body, byte for byte ``encode_entities(batch)``.

    Each entity is encoded once, for its size and for the body: a compact JSON array is its items'
    encodings joined by commas inside brackets. An id already in the batch starts a new one: Orion-LD
    merges duplicates within a batch into one notification, and QuantumLeap would lose the readings
    in between.
    """
    batch: list[Entity] = []
    pieces: list[bytes] = []
    ids: set[Any] = set()
    size = 2  # the brackets
    for entity in entities:
        piece = encode_json(entity)
        entity_size = len(piece) + 1  # and its comma
        if batch and (len(batch) >= max_entities or size + entity_size > max_bytes or entity.get("id") in ids):
            yield batch, b"[" + b",".join(pieces) + b"]"
            batch, pieces, ids, size = [], [], set(), 2
        batch.append(entity)
        pieces.append(piece)
        ids.add(entity.get("id"))
        size += entity_size
    if batch:
        yield batch, b"[" + b",".join(pieces) + b"]"


def split_batches(entities: Sequence[Entity], max_entities: int, max_bytes: int) -> Iterator[list[Entity]]:
    """Consecutive batches within both limits, each id at most once per batch; an entity alone above the
    byte limit goes alone."""
    for batch, _ in encoded_batches(entities, max_entities, max_bytes):
        yield batch


def _problem(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("title" in body or "detail" in body):
        problem = dict(body)
    else:
        problem = {"title": response.reason or "", "detail": response.text[:500]}
    problem.setdefault("status", response.status_code)
    return problem


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class OAuth2ClientCredentials:
    """Client-credentials grant with the token cached until shortly before it expires."""

    def __init__(
        self,
        session: requests.Session,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._session = session
        self._token_url = token_url
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        if scope:
            self._form["scope"] = scope
        self._timeout = timeout
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self, *, refresh: bool = False) -> str:
        with self._lock:
            if refresh or self._token is None or time.monotonic() >= self._expires_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def _fetch(self) -> None:
        try:
            response = self._session.post(self._token_url, data=self._form, timeout=self._timeout)
        except requests.RequestException as error:
            raise BrokerError(f"token endpoint {self._token_url} unreachable: {error.__class__.__name__}") from None
        if response.status_code in (400, 401, 403):
            raise BrokerConfigError(
                f"token endpoint refused the client credentials ({response.status_code}): check [broker.oauth2]"
            )
        if response.status_code != 200:
            raise BrokerError(f"token endpoint answered {response.status_code}")
        try:
            body = response.json()
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 300))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise BrokerConfigError(
                f"token endpoint {self._token_url} answered 200 without an access_token: check [broker.oauth2]"
            ) from None
        self._expires_at = time.monotonic() + max(0.0, lifetime - min(30.0, lifetime / 2))


class BrokerClient:
    def __init__(
        self,
        url: str,
        *,
        context_url: str,
        token: str | None = None,
        oauth2: Mapping[str, str] | None = None,
        verify_tls: bool = True,
        timeout: float = 10.0,
        max_batch_entities: int = 1000,
        max_payload_bytes: int = 1_048_576,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = url.rstrip("/")
        self.max_batch_entities = max_batch_entities
        self.max_payload_bytes = max_payload_bytes
        self.timeout = timeout
        self._session = session or requests.Session()
        self._session.verify = verify_tls
        if not verify_tls:
            log.warning("TLS verification of the broker is OFF ([broker] verify_tls = false): lab use only")
        self._static_token = token or None
        self._oauth2 = (
            OAuth2ClientCredentials(
                self._session,
                oauth2["token_url"],
                oauth2["client_id"],
                oauth2["client_secret"],
                oauth2.get("scope"),
                timeout,
            )
            if oauth2
            else None
        )
        self._context_url = context_url
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Link": f'<{context_url}>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"',
        }

    def close(self) -> None:
        self._session.close()

    def _auth_header(self, refresh: bool = False) -> dict[str, str]:
        if self._oauth2 is not None:
            return {"Authorization": f"Bearer {self._oauth2.token(refresh=refresh)}"}
        if self._static_token:
            return {"Authorization": f"Bearer {self._static_token}"}
        return {}

    @classmethod
    def from_settings(cls, broker: Mapping[str, Any], *, session: requests.Session | None = None) -> BrokerClient:
        """From the ``[broker]`` configuration section (its url must be set)."""
        return cls(
            broker["url"],
            context_url=broker["context"],
            token=broker.get("token"),
            oauth2=broker.get("oauth2"),
            verify_tls=broker.get("verify_tls", True),
            timeout=broker.get("timeout", 10.0),
            max_batch_entities=broker.get("max_batch_entities", 1000),
            max_payload_bytes=broker.get("max_payload_bytes", 1_048_576),
            session=session,
        )

    @property
    def session(self) -> requests.Session:
        return self._session

    @property
    def context_url(self) -> str:
        return self._context_url

    def request(self, method: str, path: str, tenant: str | None, **options: Any) -> requests.Response:
        """One request to ``<url><path>`` with the tenant, @context Link and auth headers (``Content-Type``
        only with a body); a 401 refreshes an OAuth2 token once. Raises what ``requests`` raises, and
        BrokerError when the token endpoint fails."""
        headers = dict(self._headers)
        if options.get("data") is None:
            del headers["Content-Type"]
        if tenant:
            headers["NGSILD-Tenant"] = tenant
        url = f"{self.base_url}{path}"
        response = self._session.request(
            method, url, headers={**headers, **self._auth_header()}, timeout=self.timeout, **options
        )
        if response.status_code == 401 and self._oauth2 is not None:
            response.close()
            response = self._session.request(
                method, url, headers={**headers, **self._auth_header(refresh=True)}, timeout=self.timeout, **options
            )
        return response

    def _post(self, tenant: str | None, body: bytes) -> requests.Response:
        return self.request("POST", f"{UPSERT_PATH}?options=update", tenant, data=body)

    def query(
        self, tenant: str | None, params: Mapping[str, str], *, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[list[Entity]]:
        """``GET /entities`` page by page until a short page; raises BrokerQueryError saying what to fix.

        Entities that change while the pages are read may be seen twice or not at all.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size {page_size}: must be 1..{MAX_PAGE_SIZE} (Orion-LD's limit)")
        offset = 0
        while True:
            try:
                response = self.request(
                    "GET",
                    ENTITIES_PATH,
                    tenant,
                    params={**params, "limit": str(page_size), "offset": str(offset)},
                )
                with response:
                    _check_query(response, self.base_url, tenant)
                    page = response.json()
            except requests.exceptions.JSONDecodeError as error:  # before RequestException: it is one too
                raise BrokerQueryError(f"the broker answered 200 without a JSON body: {error}") from None
            except requests.RequestException as error:
                raise BrokerQueryError(f"broker {self.base_url} unreachable: {error.__class__.__name__}") from None
            if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
                raise BrokerQueryError(
                    f"the broker answered 200 with something else than an entity list: {page!r:.200}"
                )
            yield page
            if len(page) < page_size:
                return
            offset += len(page)

    def upsert(
        self,
        tenant: str | None,
        entities: Sequence[Entity],
        *,
        body: bytes | None = None,
        ids: Sequence[Any] | None = None,
    ) -> UpsertResult:
        """Send in order; stop at the first transient failure so nothing overtakes what is pending.

        ``body``: the entities already encoded as one JSON array (as the outbox stores them); sent as
        it is when it fits into one request and holds each id once, else the entities are encoded anew.
        ``ids``: with ``body``, the entities' ids in order; a body the broker then takes whole never
        reads ``entities`` (which may decode ``body`` lazily, as the outbox's do).
        """
        result = UpsertResult()
        queue: list[tuple[Sequence[Entity], bytes | None, Sequence[Any] | None]]
        if body is not None and self._fits_one_request(entities, body, ids):
            queue = [(entities, body, ids)]
        else:
            queue = [
                (batch, encoded, None)
                for batch, encoded in encoded_batches(entities, self.max_batch_entities, self.max_payload_bytes)
            ]
        while queue:
            batch, body, batch_ids = queue.pop(0)
            outcome = self._send(tenant, batch, result, body, batch_ids)
            if outcome is Action.SPLIT:
                if len(batch) == 1:
                    problem = {
                        "title": "Payload Too Large",
                        "status": 413,
                        "detail": "this entity alone exceeds the broker's payload limit",
                    }
                    result.rejected.append((batch[0], problem))
                    continue
                middle = len(batch) // 2
                queue[:0] = [(list(batch[:middle]), None, None), (list(batch[middle:]), None, None)]
            elif outcome is Action.RETRY:
                result.pending.extend(entity for rest, _, _ in queue for entity in rest)
                break
        return result

    def _fits_one_request(self, entities: Sequence[Entity], body: bytes, ids: Sequence[Any] | None) -> bool:
        if len(entities) > self.max_batch_entities or len(body) > self.max_payload_bytes:
            return False
        if ids is None:
            ids = [entity.get("id") for entity in entities]
        return len(ids) == len(entities) and len(set(ids)) == len(entities)

    def _send(
        self,
        tenant: str | None,
        batch: Sequence[Entity],
        result: UpsertResult,
        body: bytes | None = None,
        ids: Sequence[Any] | None = None,
    ) -> Action:
        result.requests += 1
        try:
            response = self._post(tenant, encode_entities(batch) if body is None else body)
        except requests.exceptions.SSLError as error:
            raise BrokerConfigError(f"TLS handshake with {self.base_url} failed: {error}") from None
        except requests.RequestException as error:
            result.pending.extend(batch)
            result.transient_error = f"{error.__class__.__name__}: broker {self.base_url} unreachable"
            return Action.RETRY
        except BrokerConfigError:
            raise
        except BrokerError as error:  # the OAuth2 token endpoint is down: as transient as the broker being down
            result.pending.extend(batch)
            result.transient_error = str(error)
            return Action.RETRY
        with response:
            policy = policy_for(response.status_code)
            if policy.action is Action.DELIVERED:
                result.delivered.extend(ids if ids is not None else [entity["id"] for entity in batch])
            elif policy.action is Action.PARTIAL and self._read_multi_status(response, batch, result):
                return Action.RETRY
            elif policy.action is Action.RETRY:
                result.pending.extend(batch)
                result.transient_error = f"{response.status_code}: {policy.hint}"
                result.retry_after = _retry_after(response)
            elif policy.action is Action.REJECT:
                problem = _problem(response)
                problem.setdefault("hint", policy.hint)
                result.rejected.extend((entity, problem) for entity in batch)
            elif policy.action is Action.CONFIG:
                raise BrokerConfigError(f"{response.status_code} from {self.base_url}: {policy.hint}")
            return policy.action

    @staticmethod
    def _read_multi_status(response: requests.Response, batch: Sequence[Entity], result: UpsertResult) -> bool:
        """Sort a 207 entity by entity; True when some failed transiently (later batches must wait)."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        errors = {
            item.get("entityId"): item.get("error", {})
            for item in (body.get("errors") or [] if isinstance(body, dict) else [])
            if isinstance(item, dict)
        }
        transient = False
        for entity in batch:
            problem = errors.get(entity["id"])
            if problem is None:
                result.delivered.append(entity["id"])
                continue
            status = problem.get("status") if isinstance(problem.get("status"), int) else 400
            if policy_for(status).action is Action.RETRY:
                transient = True
                result.pending.append(entity)
                result.transient_error = f"207 with transient error {status} for {entity['id']}"
            else:
                result.rejected.append((entity, dict(problem)))
        return transient

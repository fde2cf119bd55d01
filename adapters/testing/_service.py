"""The NGSI-LD endpoints of the broker double, free of sockets: request in, response out.

Behaviour follows Orion-LD's sources and functional tests (FIWARE/context.Orion-LD), checked for:
- request checks and their order (``mhdConnectionInit.cpp``, ``mhdConnectionTreat.cpp``): unknown
  URI parameter or empty value → 400, ``limit`` > 1000 → 400, ``Accept`` admitting no JSON → 406
  "Invalid Accept mime-type", tenant name ≤ 50 of ``[A-Za-z0-9_-]`` lowercased ("Invalid Tenant"),
  both tenant headers differing → 400 "HTTP header duplication", ``application/ld+json`` with a Link
  header → 400, POST/PATCH not JSON → 415 "unsupported format of payload", unknown tenant → 404
  NonExistingTenant "No such tenant", unparsable body → 400 InvalidRequest "JSON Parse Error",
  ``@context`` vs Content-Type for object bodies → 400;
- batch upsert (``legacyPostBatchUpsert.cpp``, the default build): 201 + created ids, 204 when all
  existed, otherwise 207 ``{"success": [updated…, created…], "errors": [...]}``; duplicates are merged
  with ``options=update`` and the last one wins otherwise (``ngsild_batch_upsert_duplicate_ids.test``);
  a type change is refused unless ``options=replace`` is given explicitly;
- batch create (``orionldPostBatchCreate.cpp``): 409 AlreadyExists items "Cannot create an existing
  entity" and "Created as part of the same request" (``ngsild_batch_create_duplicate_ids.test``);
- per-item @context errors in batches are 207 items, title "Invalid payload"
  (``ngsild_batch_upsert-context_in_payload_data.test``);
- ``PATCH /entities/{id}/attrs`` (``legacyPatchEntity.cpp``): 207 ``{"updated", "notUpdated":
  [{"attributeName", "reason"}]}`` with reason "attribute doesn't exist";
- ``GET /entities`` without id, type, attrs or q → 400 "Too broad query"; 404 titles
  "Entity Not Found" / "Entity not found" / "Entity does not exist" per endpoint.

Where Orion-LD and the project's design notes (§3) disagree, the double follows the notes:
batches above ``max_batch_entities`` get 400 (Orion-LD has had no such cap since issue #1951, and
older versions truncated silently), and the Link header is read leniently (only the URL between
``<`` and ``>`` counts; Orion-LD since PR #1761 ignores a Link whose ``rel`` is not exactly
``"http://www.w3.org/ns/json-ld#context"`` followed by ``;``).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from adapters.testing._query import parse_q
from adapters.testing._validation import (
    SYSTEM_MEMBERS,
    VALUE_MEMBER,
    check_attribute,
    check_attribute_name,
    check_entity,
    check_uri,
)
from adapters.testing.problems import ProblemDetail, ProblemError, ProblemType, bad_request

JsonLdContext = str | list[Any] | dict[str, Any]
EntityFilter = Callable[[dict[str, Any]], ProblemDetail | None]

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
_CONTEXT_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
_PREFIX = "/ngsi-ld/v1/"
_TENANT = re.compile(r"[A-Za-z0-9_-]{1,50}")
_JSON_TYPES = frozenset({"application/json", "application/ld+json"})
_ACCEPTABLE = frozenset({"application/json", "application/ld+json", "*/*", "application/*"})
_DEFAULT_LIMIT = 20
_MAX_LIMIT = 1000

#: URI parameters Orion-LD knows (``orionldUriArgumentGet``); any other one is a 400 there.
_KNOWN_PARAMS = frozenset({
    "id", "type", "typePattern", "idPattern", "attrs", "offset", "limit", "options", "csf",
    "expandValues", "format", "geometry", "coordinates", "coords", "georel", "geoproperty",
    "geometryProperty", "count", "q", "mq", "datasetId", "deleteAll", "timeproperty", "timerel",
    "timeAt", "endTimeAt", "details", "prettyPrint", "spaces", "subscriptionId", "kind", "location",
    "url", "observedAt", "lang", "reload", "exist", "!exist", "metadata", "orderBy", "reverse",
    "collapse", "attributeFormat", "attributesFormat", "relationships", "geoproperties",
    "languageproperties", "reset", "level", "local", "entityMap", "onlyIds", "entity::type",
})  # fmt: skip
#: Values of ``options`` Orion-LD accepts (``optionsParse``).
_KNOWN_OPTIONS = frozenset({
    "update", "replace", "noOverwrite", "keyValues", "simplified", "concise", "normalized",
    "sysAttrs", "fromDb", "append", "count", "values", "unique", "dateCreated", "dateModified",
    "noAttrDetail", "upsert",
})  # fmt: skip


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive request headers; repeated headers are joined with ', '."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        merged: dict[str, tuple[str, str]] = {}
        for name, value in items:
            key = name.lower()
            merged[key] = (merged[key][0], f"{merged[key][1]}, {value}") if key in merged else (name, value)
        self._items = merged

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(frozen=True)
class HttpRequest:
    """What the HTTP layer hands to the service."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Headers
    body: bytes


@dataclass
class HttpResponse:
    """What the service hands back to the HTTP layer."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, payload: Any, content_type: str = "application/json") -> HttpResponse:
    """A JSON body the way Orion-LD sends it: compact, UTF-8."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return HttpResponse(status, body, [("Content-Type", content_type)])


def problem_response(problem: ProblemDetail) -> HttpResponse:
    """A top-level ProblemDetails answer (Content-Type application/json, no ``status`` member)."""
    return json_response(problem.status, problem.body())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _problem(kind: ProblemType, title: str, detail: str | None, status: int) -> ProblemError:
    return ProblemError(ProblemDetail(kind, title, detail, status))


@dataclass
class _Stored:
    """An entity with what the broker keeps beside it."""

    entity: dict[str, Any]
    context: JsonLdContext | None
    created_at: str
    modified_at: str
    attr_times: dict[str, tuple[str, str]]


@dataclass
class _Tenant:
    entities: dict[str, _Stored] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Call:
    """One request after the checks every endpoint shares."""

    params: dict[str, str]
    path_args: dict[str, str]
    tenant_name: str
    link: str | None
    ld_request: bool
    ld_response: bool
    options: frozenset[str]
    payload: Any = None
    payload_context: JsonLdContext | None = None
    time: str = field(default_factory=_now)
    """createdAt/modifiedAt of everything this request writes: Orion-LD takes one time per request."""

    def limit_offset(self) -> tuple[int, int]:
        limit = int(self.params.get("limit", _DEFAULT_LIMIT))
        return limit, int(self.params.get("offset", "0"))


_Handler = Callable[[_Call], HttpResponse]


class NgsiLdService:
    """In-memory Orion-LD: tenants of entities and subscriptions, guarded by one lock."""

    def __init__(self, max_batch_entities: int) -> None:
        self.max_batch_entities = max_batch_entities
        self.entity_filter: EntityFilter | None = None
        self.lock = threading.RLock()
        self._tenants: dict[str, _Tenant] = {"": _Tenant()}
        g = self._routes_for
        self._routes: list[tuple[re.Pattern[str], dict[str, _Handler | None], bool]] = [
            g(r"entityOperations/upsert", {"POST": self._batch_upsert}, creates_tenant=True),
            g(r"entityOperations/create", {"POST": self._batch_create}, creates_tenant=True),
            g(r"entityOperations/(?:update|delete|merge|query)", {"POST": None}),
            g(r"entities", {"GET": self._query_entities, "POST": self._create_entity}, creates_tenant=True),
            g(
                r"entities/(?P<id>[^/]+)",
                {"GET": self._get_entity, "DELETE": self._delete_entity, "PUT": None, "PATCH": None},
            ),
            g(r"entities/(?P<id>[^/]+)/attrs", {"PATCH": self._patch_attrs, "POST": None}),
            g(r"entities/[^/]+/attrs/[^/]+", {"GET": None, "PATCH": None, "PUT": None, "DELETE": None}),
            g(r"types", {"GET": self._get_types}),
            g(r"types/[^/]+", {"GET": None}),
            g(r"attributes(?:/[^/]+)?", {"GET": None}),
            g(
                r"subscriptions",
                {"GET": self._list_subscriptions, "POST": self._create_subscription},
                creates_tenant=True,
            ),
            g(
                r"subscriptions/(?P<id>[^/]+)",
                {"GET": self._get_subscription, "DELETE": self._delete_subscription, "PATCH": None},
            ),
        ]

    @staticmethod
    def _routes_for(
        pattern: str, methods: dict[str, _Handler | None], *, creates_tenant: bool = False
    ) -> tuple[re.Pattern[str], dict[str, _Handler | None], bool]:
        return re.compile(re.escape(_PREFIX) + pattern), methods, creates_tenant

    # ----------------------------------------------------------------- state inspection (locked)

    def entities(self, tenant: str | None) -> dict[str, dict[str, Any]]:
        with self.lock:
            found = self._tenants.get((tenant or "").lower())
            return {} if found is None else {k: copy.deepcopy(v.entity) for k, v in found.entities.items()}

    def tenants(self) -> set[str]:
        with self.lock:
            return {name for name in self._tenants if name}

    def context_of(self, entity_id: str, tenant: str | None) -> JsonLdContext | None:
        with self.lock:
            found = self._tenants.get((tenant or "").lower())
            if found is None or entity_id not in found.entities:
                raise KeyError(entity_id)
            return copy.deepcopy(found.entities[entity_id].context)

    # ------------------------------------------------------------------------------ dispatch

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request; the caller holds no lock."""
        try:
            handler, path_args, creates_tenant = self._route(request)
            call = self._preflight(request, path_args)
            with self.lock:
                tenant_known = call.tenant_name in self._tenants
                if not tenant_known and not (creates_tenant and request.method == "POST"):
                    raise _problem(ProblemType.NON_EXISTING_TENANT, "No such tenant", call.tenant_name, 404)
                self._read_payload(request, call)
                response = handler(call)
        except ProblemError as exc:
            response = problem_response(exc.problem)
            response.headers.extend(exc.headers)
        tenant = _tenant_header(request.headers)
        if tenant and response.status in (200, 201, 207):
            response.headers.append(("NGSILD-Tenant", tenant))
        return response

    def _route(self, request: HttpRequest) -> tuple[_Handler, dict[str, str], bool]:
        path = request.path
        if path.endswith("//"):
            raise bad_request("Invalid URL PATH", "Double Slash")
        path = path.removesuffix("/")
        for pattern, methods, creates_tenant in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if request.method not in methods:
                allowed = ", ".join(methods)
                problem = ProblemDetail(
                    ProblemType.BAD_REQUEST_DATA,
                    "Method not allowed",
                    f"{request.method} {path}; allowed: {allowed}",
                    405,
                )
                raise ProblemError(problem, (("Allow", allowed),))
            handler = methods[request.method]
            if handler is None:
                raise _problem(
                    ProblemType.OPERATION_NOT_SUPPORTED,
                    "Not Implemented",
                    f"{request.method} {path} exists in Orion-LD but not in the broker double",
                    501,
                )
            return handler, {k: unquote(v) for k, v in match.groupdict().items()}, creates_tenant
        raise _problem(ProblemType.RESOURCE_NOT_FOUND, "Service Not Found", path, 404)

    def _preflight(self, request: HttpRequest, path_args: dict[str, str]) -> _Call:
        """The checks Orion-LD runs before any service routine, in its order."""
        params: dict[str, str] = {}
        for key, value in request.query:
            if value == "":
                raise bad_request("Empty right-hand-side for a URI parameter", key)
            if key not in _KNOWN_PARAMS:
                raise bad_request("Unknown URI parameter", key)
            params[key] = value
        options = _options(params.get("options"))
        _check_paging(params)
        ld_response = _accept(request.headers.get("Accept"))
        tenant_name = _tenant(request.headers)
        media_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        link_header = request.headers.get("Link")
        if media_type == "application/ld+json" and link_header is not None:
            raise bad_request(
                "invalid combination of HTTP headers Content-Type and Link",
                "Content-Type is 'application/ld+json' AND Link header is present - not allowed",
            )
        if request.method == "PATCH" and media_type == "application/merge-patch+json":
            media_type = "application/json"
        if request.method in ("POST", "PATCH") and media_type not in _JSON_TYPES:
            raise _problem(
                ProblemType.BAD_REQUEST_DATA,
                "unsupported format of payload",
                "only application/json and application/ld+json are supported",
                415,
            )
        return _Call(
            params=params,
            path_args=path_args,
            tenant_name=tenant_name,
            link=None if link_header is None else _link_url(link_header),
            ld_request=media_type == "application/ld+json",
            ld_response=ld_response,
            options=options,
        )

    @staticmethod
    def _read_payload(request: HttpRequest, call: _Call) -> None:
        if request.method not in ("POST", "PATCH"):
            return
        if not request.body.strip():
            raise bad_request("payload missing")
        try:
            payload = json.loads(request.body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _problem(ProblemType.INVALID_REQUEST, "JSON Parse Error", "Invalid JSON payload", 400) from exc
        if not isinstance(payload, dict | list):
            raise bad_request("Invalid Payload", "The payload data must be either a JSON Array or a JSON Object")
        if not payload:
            raise bad_request("Invalid Payload Body", "Empty Object" if isinstance(payload, dict) else "Empty Array")
        if isinstance(payload, dict):
            context = payload.get("@context")
            if "@context" in payload and not isinstance(context, str | list | dict):
                raise bad_request("Not a JSON Array nor Object nor a String", "@context")
            if call.ld_request and context is None:
                raise bad_request(
                    "@context missing in JSON payload",
                    "For application/ld+json, the @context must be present in the JSON payload",
                )
            if not call.ld_request and context is not None:
                raise bad_request(
                    "Mismatch between /Content-Type/ and contents of the request payload body",
                    "Content-Type is application/json, yet a '@context' item was present in the payload body",
                )
            call.payload_context = context if call.ld_request else call.link
        call.payload = payload

    # ---------------------------------------------------------------------- tenants and store

    def _tenant_store(self, call: _Call, *, create: bool = False) -> _Tenant:
        if create:
            return self._tenants.setdefault(call.tenant_name, _Tenant())
        return self._tenants.get(call.tenant_name) or _Tenant()

    @staticmethod
    def _write(tenant: _Tenant, entity: dict[str, Any], context: JsonLdContext | None, now: str) -> None:
        """Store ``entity`` (merged by the caller if need be), keeping creation times."""
        previous = tenant.entities.get(entity["id"])
        times: dict[str, tuple[str, str]] = {}
        for name in entity:
            if name in ("id", "type"):
                continue
            old = previous.attr_times.get(name) if previous else None
            times[name] = (old[0] if old else now, now)
        tenant.entities[entity["id"]] = _Stored(
            entity=entity,
            context=context,
            created_at=previous.created_at if previous else now,
            modified_at=now,
            attr_times=times,
        )

    # ------------------------------------------------------------------------------ batches

    def _batch_items(self, call: _Call) -> list[Any]:
        if not isinstance(call.payload, list):
            raise bad_request("Not a JSON Array", "payload body must be a JSON Array")
        if len(call.payload) > self.max_batch_entities:
            raise bad_request(
                "Too many entities in batch",
                f"{len(call.payload)} entities in one request; this broker takes at most "
                f"{self.max_batch_entities} per batch - split the batch",
            )
        return call.payload

    def _batch_entity(
        self, call: _Call, item: Any, stored_type: str | None
    ) -> tuple[dict[str, Any], JsonLdContext | None]:
        """Check one batch item: @context rule, entity rules, then the injected filter."""
        if isinstance(item, dict):
            context = item.get("@context")
            if context is not None and not isinstance(context, str | list | dict):
                raise bad_request("Not a JSON Array nor Object nor a String", "@context")
            if call.ld_request and context is None:
                raise bad_request(
                    "Invalid payload",
                    "Content-Type is 'application/ld+json', but no @context in payload data array item",
                )
            if not call.ld_request and context is not None:
                raise bad_request(
                    "Invalid payload",
                    "Content-Type is 'application/json', and an @context is present in the payload data array item",
                )
        entity = check_entity(item, stored_type)
        if self.entity_filter is not None and (problem := self.entity_filter(copy.deepcopy(entity))):
            raise ProblemError(problem)
        return entity, item.get("@context") if call.ld_request else call.link

    def _batch_upsert(self, call: _Call) -> HttpResponse:
        update, explicit_replace = "update" in call.options, "replace" in call.options
        if update and explicit_replace:
            raise bad_request("URI Param Error", "options: both /update/ and /replace/ present")
        items = self._batch_items(call)
        tenant = self._tenant_store(call)
        pending: dict[str, tuple[dict[str, Any], JsonLdContext | None]] = {}
        errors: list[dict[str, Any]] = []
        for item in items:
            try:
                entity_id = _item_id(item)
                previous = (
                    pending[entity_id][0]
                    if entity_id in pending
                    else (tenant.entities[entity_id].entity if entity_id in tenant.entities else None)
                )
                stored_type = None if previous is None else previous["type"]
                entity, context = self._batch_entity(call, item, stored_type)
                if stored_type is not None and entity["type"] != stored_type and not explicit_replace:
                    raise bad_request("non-matching entity type", entity["type"])
                if update and previous is not None:
                    entity = {**previous, **entity}
                pending[entity_id] = (entity, context)
            except ProblemError as exc:
                errors.append({"entityId": _item_id(item), "error": exc.problem.item()})
        if pending:
            tenant = self._tenant_store(call, create=True)
        updated = [i for i in pending if i in tenant.entities]
        created = [i for i in pending if i not in tenant.entities]
        for entity, context in pending.values():
            self._write(tenant, entity, context, call.time)
        if not errors and not updated:
            return json_response(201, created)
        if not errors and not created:
            return HttpResponse(204)
        return json_response(207, {"success": updated + created, "errors": errors})

    def _batch_create(self, call: _Call) -> HttpResponse:
        items = self._batch_items(call)
        tenant = self._tenant_store(call)
        created: dict[str, tuple[dict[str, Any], JsonLdContext | None]] = {}
        errors: list[dict[str, Any]] = []
        for item in items:
            try:
                entity, context = self._batch_entity(call, item, None)
                if entity["id"] in tenant.entities:
                    raise _problem(
                        ProblemType.ALREADY_EXISTS, "Entity already exists", "Cannot create an existing entity", 409
                    )
                if entity["id"] in created:
                    raise _problem(
                        ProblemType.ALREADY_EXISTS, "Entity already exists", "Created as part of the same request", 409
                    )
                created[entity["id"]] = (entity, context)
            except ProblemError as exc:
                errors.append({"entityId": _item_id(item), "error": exc.problem.item()})
        if created:
            tenant = self._tenant_store(call, create=True)
        for entity, context in created.values():
            self._write(tenant, entity, context, call.time)
        if not errors:
            return json_response(201, list(created))
        return json_response(207, {"success": list(created), "errors": errors})

    # ------------------------------------------------------------------------------ entities

    def _create_entity(self, call: _Call) -> HttpResponse:
        entity = call.payload
        if not isinstance(entity, dict):
            raise bad_request(
                "Not a JSON Object", "To create an Entity, a JSON OBJECT describing the entity must be provided"
            )
        if "id" not in entity:
            raise bad_request("Entity id is missing", "The 'id' field is mandatory")
        entity_id = check_uri(entity["id"], "id")
        if "type" not in entity:
            raise bad_request(f"Entity - {entity_id}", "The 'type' field is mandatory")
        if entity_id in self._tenant_store(call).entities:
            raise _problem(ProblemType.ALREADY_EXISTS, "Entity already exists", entity_id, 409)
        stored = check_entity(entity, None)
        self._write(self._tenant_store(call, create=True), stored, call.payload_context, call.time)
        return HttpResponse(201, headers=[("Location", f"{_PREFIX}entities/{entity_id}")])

    def _query_entities(self, call: _Call) -> HttpResponse:
        params = call.params
        if not any(key in params for key in ("id", "idPattern", "type", "attrs", "q", "geometry")):
            raise bad_request(
                "Too broad query",
                "Need at least one of: entity-id, entity-type, geo-location, attribute-list, Q-filter, local=true",
            )
        for unsupported in ("idPattern", "geometry", "georel", "coordinates", "typePattern"):
            if unsupported in params:
                raise _problem(
                    ProblemType.OPERATION_NOT_SUPPORTED,
                    "Not Implemented",
                    f"URI parameter /{unsupported}/ is not implemented by the broker double",
                    501,
                )
        ids = set(params["id"].split(",")) if "id" in params else None
        for entity_id in ids or ():
            check_uri(entity_id, "Entity ID in URI param")
        types = set(params["type"].split(",")) if "type" in params else None
        attrs = params["attrs"].split(",") if "attrs" in params else None
        matches = parse_q(params["q"]) if "q" in params else None
        found = [
            stored
            for stored in self._tenant_store(call).entities.values()
            if (ids is None or stored.entity["id"] in ids)
            and (types is None or stored.entity["type"] in types)
            and (attrs is None or any(name in stored.entity for name in attrs))
            and (matches is None or matches(stored.entity))
        ]
        limit, offset = call.limit_offset()
        page = [self._render(call, stored, attrs) for stored in found[offset : offset + limit]]
        response = self._entity_response(call, page)
        if params.get("count") == "true":
            response.headers.append(("NGSILD-Results-Count", str(len(found))))
        return response

    def _get_entity(self, call: _Call) -> HttpResponse:
        entity_id = check_uri(call.path_args["id"], "Entity ID in URL PATH")
        stored = self._tenant_store(call).entities.get(entity_id)
        types = call.params["type"].split(",") if "type" in call.params else None
        if stored is None or (types is not None and stored.entity["type"] not in types):
            raise _problem(ProblemType.RESOURCE_NOT_FOUND, "Entity Not Found", entity_id, 404)
        attrs = call.params["attrs"].split(",") if "attrs" in call.params else None
        return self._entity_response(call, self._render(call, stored, attrs))

    def _delete_entity(self, call: _Call) -> HttpResponse:
        entity_id = check_uri(call.path_args["id"], "Entity ID in URL PATH")
        if self._tenant_store(call).entities.pop(entity_id, None) is None:
            raise _problem(ProblemType.RESOURCE_NOT_FOUND, "Entity not found", entity_id, 404)
        return HttpResponse(204)

    def _patch_attrs(self, call: _Call) -> HttpResponse:
        entity_id = check_uri(call.path_args["id"], "Entity ID from URL PATH")
        if not isinstance(call.payload, dict):
            raise bad_request("Not a JSON Object", "array")
        tenant = self._tenant_store(call)
        stored = tenant.entities.get(entity_id)
        if stored is None:
            raise _problem(ProblemType.RESOURCE_NOT_FOUND, "Entity does not exist", entity_id, 404)
        entity = copy.deepcopy(stored.entity)
        updated: list[str] = []
        not_updated: list[dict[str, str]] = []
        for name, attribute in call.payload.items():
            if name == "@context":
                continue
            reason = self._patch_one(entity, name, attribute)
            if reason is None:
                updated.append(name)
            else:
                not_updated.append({"attributeName": name, "reason": reason})
        if updated:
            self._write(tenant, entity, stored.context, call.time)
        if not not_updated:
            return HttpResponse(204)
        return json_response(207, {"updated": updated, "notUpdated": not_updated})

    @staticmethod
    def _patch_one(entity: dict[str, Any], name: str, attribute: Any) -> str | None:
        """Apply one attribute of a PATCH; return why it was not applied, if it was not."""
        if name in SYSTEM_MEMBERS:
            return "built-in timestamps are ignored"
        if name == "id":
            return "the ID of an entity cannot be altered"
        if name == "type":
            return "the TYPE of an entity cannot be altered"
        try:
            check_attribute_name(name)
        except ProblemError:
            return "invalid attribute name"
        if name not in entity:
            return "attribute doesn't exist"
        try:
            checked = check_attribute(name, attribute)
        except ProblemError as exc:
            return f"{exc.problem.title}: {exc.problem.detail}"
        old_type, new_type = _attr_type(entity[name]), _attr_type(checked)
        if old_type != new_type:
            return f"Attempt to transform a {old_type} into a {new_type}: {name}"
        entity[name] = checked
        return None

    def _get_types(self, call: _Call) -> HttpResponse:
        types = sorted({s.entity["type"] for s in self._tenant_store(call).entities.values()})
        body = {"id": f"urn:ngsi-ld:EntityTypeList:{uuid.uuid4()}", "type": "EntityTypeList", "typeList": types}
        return self._entity_response(call, body)

    def _render(self, call: _Call, stored: _Stored, attrs: list[str] | None) -> dict[str, Any]:
        """An entity as GET returns it: attrs projection, sysAttrs, keyValues."""
        entity = {
            k: copy.deepcopy(v) for k, v in stored.entity.items() if attrs is None or k in ("id", "type") or k in attrs
        }
        if "sysAttrs" in call.options:
            entity["createdAt"], entity["modifiedAt"] = stored.created_at, stored.modified_at
            for name, (created, modified) in stored.attr_times.items():
                for instance in _instances(entity.get(name)):
                    instance["createdAt"], instance["modifiedAt"] = created, modified
        if call.options & {"keyValues", "simplified"}:
            for name, value in entity.items():
                if name not in ("id", "type", "createdAt", "modifiedAt"):
                    entity[name] = _simplified(value)
        return entity

    def _entity_response(self, call: _Call, payload: Any) -> HttpResponse:
        """JSON with the context in a Link header, or JSON-LD with it in the body (as Orion-LD)."""
        context = call.link or CORE_CONTEXT
        if call.ld_response:
            for item in payload if isinstance(payload, list) else [payload]:
                item["@context"] = context
            return json_response(200, payload, "application/ld+json")
        response = json_response(200, payload)
        response.headers.append(("Link", f"<{context}>; {_CONTEXT_REL}"))
        return response

    # ------------------------------------------------------------------------- subscriptions

    def _create_subscription(self, call: _Call) -> HttpResponse:
        subscription = call.payload
        if not isinstance(subscription, dict):
            raise bad_request("Not a JSON Object", "a Subscription must be a JSON Object")
        _check_subscription(subscription)
        subscription_id = subscription.get("id") or f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
        if subscription_id in self._tenant_store(call).subscriptions:
            raise _problem(ProblemType.ALREADY_EXISTS, "Subscription already exists", subscription_id, 409)
        stored = {k: v for k, v in subscription.items() if k != "@context"}
        stored["id"] = subscription_id
        self._tenant_store(call, create=True).subscriptions[subscription_id] = stored
        return HttpResponse(201, headers=[("Location", f"{_PREFIX}subscriptions/{subscription_id}")])

    def _list_subscriptions(self, call: _Call) -> HttpResponse:
        subscriptions = list(self._tenant_store(call).subscriptions.values())
        limit, offset = call.limit_offset()
        response = json_response(200, copy.deepcopy(subscriptions[offset : offset + limit]))
        if call.params.get("count") == "true":
            response.headers.append(("NGSILD-Results-Count", str(len(subscriptions))))
        return response

    def _get_subscription(self, call: _Call) -> HttpResponse:
        subscription = self._tenant_store(call).subscriptions.get(call.path_args["id"])
        if subscription is None:
            raise _problem(ProblemType.RESOURCE_NOT_FOUND, "Subscription not found", call.path_args["id"], 404)
        return json_response(200, copy.deepcopy(subscription))

    def _delete_subscription(self, call: _Call) -> HttpResponse:
        if self._tenant_store(call).subscriptions.pop(call.path_args["id"], None) is None:
            raise _problem(ProblemType.RESOURCE_NOT_FOUND, "Subscription not found", call.path_args["id"], 404)
        return HttpResponse(204)


# ---------------------------------------------------------------------------------- helpers


def _reject_constant(name: str) -> Any:
    """Python's json takes NaN and Infinity; Orion-LD's parser does not."""
    raise ValueError(f"{name} is not JSON")


def _options(raw: str | None) -> frozenset[str]:
    options = frozenset(raw.split(",")) if raw else frozenset()
    for option in options:
        if option not in _KNOWN_OPTIONS:
            raise bad_request("Invalid value for URI param /options/", option)
    return options


def _check_paging(params: dict[str, str]) -> None:
    for name in ("limit", "offset"):
        value = params.get(name)
        if value is None:
            continue
        if value.startswith("-"):
            raise bad_request(f"Bad value for URI parameter /{name}/", value)
        if not value.isdigit():
            floor = 1 if name == "limit" else 0
            raise bad_request(f"Invalid value for URI parameter /{name}/", f"must be an integer value >= {floor}")
    count = params.get("count")
    if count not in (None, "true", "false"):
        raise bad_request("Bad value for URI parameter /count/", count)
    if "limit" in params:
        limit = int(params["limit"])
        if limit > _MAX_LIMIT:
            raise bad_request("Bad value for URI parameter /limit/ (valid range: 0-1000)", params["limit"])
        if limit == 0 and count != "true":
            raise bad_request(
                "Invalid value for URI parameter /limit/", "must be an integer value >= 1, if /count/ is not set"
            )


def _accept(accept: str | None) -> bool:
    """406 unless JSON is acceptable; True when JSON-LD is preferred (JSON wins ties)."""
    if accept is None:
        return False
    best, best_weight = None, 0.0
    for part in accept.split(","):
        media, _, parameters = part.strip().partition(";")
        media = media.strip().lower()
        weight = 1.0
        for parameter in parameters.split(";"):
            key, _, value = parameter.strip().partition("=")
            if key == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if (
            media in _ACCEPTABLE
            and weight > 0
            and (weight > best_weight or (weight == best_weight and media != "application/ld+json"))
        ):
            best, best_weight = media, weight
    if best is None:
        raise _problem(
            ProblemType.BAD_REQUEST_DATA,
            "Invalid Accept mime-type",
            "HTTP Header /Accept/ contains none of 'application/json' or 'application/ld+json'",
            406,
        )
    return best == "application/ld+json"


def _tenant_header(headers: Headers) -> str:
    return (headers.get("NGSILD-Tenant") or headers.get("Fiware-Service") or "").lower()


def _tenant(headers: Headers) -> str:
    """The tenant a request names, checked like Orion-LD (``tenantCheck``); '' is the default."""
    names = {value.lower() for value in (headers.get("NGSILD-Tenant"), headers.get("Fiware-Service")) if value}
    if len(names) > 1:
        raise bad_request(
            "HTTP header duplication", "Tenant set twice (or perhaps both Fiware-Service and NGSILD-Tenant?)"
        )
    name = names.pop() if names else ""
    if len(name) > 50:
        raise bad_request("Invalid Tenant", "a tenant name can be max 50 characters long")
    if name and not _TENANT.fullmatch(name):
        raise bad_request(
            "Invalid Tenant",
            "invalid character in tenant name - only underscore, hyphen, and alphanumeric characters are allowed",
        )
    return name


def _link_url(link: str) -> str:
    """Lenient on purpose (design notes §3): the URL between '<' and '>' is all that counts."""
    start = link.find("<")
    end = link.find(">", start + 1)
    if start == -1 or end == -1:
        raise bad_request("Invalid Link HTTP Header", "no URL between '<' and '>'")
    return check_uri(link[start + 1 : end].strip(), "Link")


def _item_id(item: Any) -> str:
    """The ``entityId`` of a 207 error item (Orion-LD's placeholders when there is none)."""
    if not isinstance(item, dict) or "id" not in item:
        return "No entity::id"
    return item["id"] if isinstance(item["id"], str) else "Invalid entity::id"


def _attr_type(attribute: Any) -> str:
    first = attribute[0] if isinstance(attribute, list) else attribute
    return str(first.get("type"))


def _instances(attribute: Any) -> list[dict[str, Any]]:
    if isinstance(attribute, list):
        return [i for i in attribute if isinstance(i, dict)]
    return [attribute] if isinstance(attribute, dict) else []


def _simplified(attribute: Any) -> Any:
    if isinstance(attribute, list):
        return [_simplified(instance) for instance in attribute]
    return attribute.get(VALUE_MEMBER.get(str(attribute.get("type")), "value"))


def _check_subscription(subscription: dict[str, Any]) -> None:
    """What Orion-LD's ``pCheckSubscription`` insists on for the fields we use."""
    if "type" not in subscription:
        raise bad_request("Mandatory field missing", "Subscription::type")
    if subscription["type"] != "Subscription":
        raise bad_request("Invalid value for Subscription::type", str(subscription["type"]))
    if "id" in subscription:
        check_uri(subscription["id"], "Subscription::id")
    entities, watched = subscription.get("entities"), subscription.get("watchedAttributes")
    if entities is None and watched is None:
        raise bad_request("At least one of 'entities' and 'watchedAttributes' must be present")
    if entities is not None and (
        not isinstance(entities, list)
        or not entities
        or not all(isinstance(e, dict) and isinstance(e.get("type"), str) for e in entities)
    ):
        raise bad_request("Invalid Subscription::entities", "a non-empty array of objects, each with a 'type' string")
    if watched is not None and (
        not isinstance(watched, list) or not watched or not all(isinstance(a, str) for a in watched)
    ):
        raise bad_request("Invalid Subscription::watchedAttributes", "a non-empty array of strings")
    notification = subscription.get("notification")
    if not isinstance(notification, dict):
        raise bad_request("Mandatory field missing", "Subscription::notification")
    endpoint = notification.get("endpoint")
    if not isinstance(endpoint, dict) or "uri" not in endpoint:
        raise bad_request("Mandatory field missing", "Subscription::notification::endpoint::uri")
    check_uri(endpoint["uri"], "Subscription::notification::endpoint::uri")

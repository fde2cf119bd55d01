"""``dos-adapters provision``: what the platform needs per tenant, registered idempotently.

For every tenant and entity type: one Orion-LD subscription that feeds QuantumLeap, found or created
under a stable id (``urn:ngsi-ld:Subscription:dos-adapters:quantumleap:<tenant>:<Type>``). Before
anything is written the plan is made with reads only, and checked:

* the @context URL must be reachable and hold a JSON-LD context (Orion-LD answers 503 to every
  request whose context it cannot fetch, and a subscription made without it would notify full IRIs);
* QuantumLeap must answer (a subscription to nowhere fails silently, notification by notification).

A tenant that does not exist yet in Orion-LD (404 NonExistingTenant) is created by the first write
for it, the first subscription; nothing else is needed. A subscription that exists with other
settings (an older notify URL, say) is replaced: deleted and created again under the same id.
A second run finds everything in place and writes nothing.

The subscription is what QuantumLeap understands: NGSI-LD ``normalized`` notifications (it needs the
attribute types), ``accept: application/json`` and the same @context as the entities (sent as the
``Link`` header), so types and attributes arrive as the short names that become QuantumLeap's table
and column names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from adapters.platform.ngsi import NgsiLdClient, PlatformError, problem_text, problem_type

__all__ = [
    "DEFAULT_NOTIFY_URL",
    "Plan",
    "Step",
    "apply_plan",
    "make_plan",
    "quantumleap_origin",
    "subscription",
    "subscription_id",
]

DEFAULT_NOTIFY_URL = "http://quantumleap:8668/v2/notify"
SUBSCRIPTION_PREFIX = "urn:ngsi-ld:Subscription:dos-adapters:quantumleap"

Action = Literal["create", "replace", "unchanged"]


def subscription_id(tenant: str, entity_type: str) -> str:
    return f"{SUBSCRIPTION_PREFIX}:{tenant}:{entity_type}"


def subscription(tenant: str, entity_type: str, notify_url: str) -> dict[str, Any]:
    """The subscription body for one tenant and type (the @context goes in the Link header)."""
    return {
        "id": subscription_id(tenant, entity_type),
        "type": "Subscription",
        "subscriptionName": f"QuantumLeap history of {entity_type} ({tenant})",
        "description": "Created by dos-adapters provision: every change of the entity type goes to QuantumLeap.",
        "entities": [{"type": entity_type}],
        "notification": {
            "format": "normalized",
            "endpoint": {"uri": notify_url, "accept": "application/json"},
        },
    }


def _essence(document: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that matter for QuantumLeap, as a broker returns them (it adds status, counters...)."""
    notification = document.get("notification")
    notification = notification if isinstance(notification, Mapping) else {}
    endpoint = notification.get("endpoint")
    endpoint = endpoint if isinstance(endpoint, Mapping) else {}
    entities = document.get("entities")
    return {
        "types": sorted(str(e.get("type")) for e in entities if isinstance(e, Mapping))
        if isinstance(entities, list)
        else None,
        "watchedAttributes": document.get("watchedAttributes"),
        "q": document.get("q"),
        "format": notification.get("format", "normalized"),
        "attributes": notification.get("attributes"),
        "uri": endpoint.get("uri"),
        "accept": endpoint.get("accept", "application/json"),
    }


@dataclass
class Step:
    tenant: str
    entity_type: str
    action: Action
    why: str = ""
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def subscription_id(self) -> str:
        return subscription_id(self.tenant, self.entity_type)


@dataclass
class Plan:
    steps: list[Step]
    new_tenants: list[str]
    context_terms: int
    quantumleap: str

    @property
    def writes(self) -> list[Step]:
        return [s for s in self.steps if s.action != "unchanged"]


def quantumleap_origin(notify_url: str) -> str:
    """``http://quantumleap:8668`` of ``http://quantumleap:8668/v2/notify``."""
    parts = urlsplit(notify_url)
    return f"{parts.scheme}://{parts.netloc}"


def check_context(session: requests.Session, context_url: str, timeout: float) -> int:
    """Number of terms of the @context at ``context_url``; PlatformError when it cannot be read."""
    try:
        response = session.get(
            context_url, headers={"Accept": "application/ld+json, application/json"}, timeout=timeout
        )
    except requests.RequestException as error:
        raise PlatformError(
            f"@context {context_url} unreachable ({error.__class__.__name__}): Orion-LD would answer 503 to "
            "every request; start the context server or fix [broker] context"
        ) from None
    if response.status_code != 200:
        raise PlatformError(f"@context {context_url} answered {response.status_code}, not 200")
    try:
        document = response.json()
    except ValueError:
        raise PlatformError(f"@context {context_url} is not JSON") from None
    context = document.get("@context") if isinstance(document, Mapping) else None
    if isinstance(context, Mapping):
        return len(context)
    if isinstance(context, list):
        return sum(len(item) if isinstance(item, Mapping) else 1 for item in context)
    raise PlatformError(f"@context {context_url} has no '@context' member")


def check_quantumleap(session: requests.Session, base_url: str, timeout: float) -> str:
    """QuantumLeap's version; PlatformError when it does not answer."""
    try:
        response = session.get(f"{base_url.rstrip('/')}/version", timeout=timeout)
    except requests.RequestException as error:
        raise PlatformError(
            f"QuantumLeap {base_url} unreachable ({error.__class__.__name__}); "
            "subscriptions to it would fail notification by notification"
        ) from None
    if response.status_code != 200:
        raise PlatformError(f"QuantumLeap {base_url}/version answered {response.status_code}")
    try:
        return str(response.json().get("version", "?"))
    except (ValueError, AttributeError):
        return "?"


def _tenant_exists(client: NgsiLdClient, tenant: str) -> bool:
    response = client.request("GET", "/subscriptions", tenant=tenant, params={"limit": "1"})
    with response:
        if response.status_code == 200:
            return True
        if response.status_code == 404 and problem_type(response).endswith("NonExistingTenant"):
            return False
        raise PlatformError(
            f"listing the subscriptions of tenant {tenant} answered {response.status_code}: {problem_text(response)}"
        )


def _existing(client: NgsiLdClient, tenant: str, identifier: str) -> dict[str, Any] | None:
    response = client.request("GET", f"/subscriptions/{identifier}", tenant=tenant)
    with response:
        if response.status_code == 200:
            try:
                body = response.json()
            except ValueError:
                raise PlatformError(f"GET subscription {identifier} answered 200 without JSON") from None
            return body if isinstance(body, dict) else {}
        if response.status_code == 404:
            return None
        raise PlatformError(f"GET subscription {identifier} answered {response.status_code}: {problem_text(response)}")


def make_plan(
    client: NgsiLdClient,
    tenants: Sequence[str],
    entity_types: Sequence[str],
    *,
    notify_url: str = DEFAULT_NOTIFY_URL,
    quantumleap_url: str | None = None,
    check_timeout: float = 10.0,
) -> Plan:
    """Read what exists and decide what to write; checks the @context and QuantumLeap first."""
    terms = check_context(client.session, client.context_url, check_timeout)
    version = check_quantumleap(client.session, quantumleap_url or quantumleap_origin(notify_url), check_timeout)
    steps: list[Step] = []
    new_tenants: list[str] = []
    for tenant in tenants:
        exists = _tenant_exists(client, tenant)
        if not exists:
            new_tenants.append(tenant)
        for entity_type in entity_types:
            wanted = subscription(tenant, entity_type, notify_url)
            found = _existing(client, tenant, wanted["id"]) if exists else None
            if found is None:
                why = "new tenant: this first write creates it" if not exists and not steps_for(steps, tenant) else ""
                steps.append(Step(tenant, entity_type, "create", why, wanted))
            elif _essence(found) == _essence(wanted):
                steps.append(Step(tenant, entity_type, "unchanged", "", wanted))
            else:
                differs = {k: v for k, v in _essence(found).items() if _essence(wanted)[k] != v}
                steps.append(Step(tenant, entity_type, "replace", f"differs: {json.dumps(differs)}", wanted))
    return Plan(steps=steps, new_tenants=new_tenants, context_terms=terms, quantumleap=version)


def steps_for(steps: Iterable[Step], tenant: str) -> list[Step]:
    return [s for s in steps if s.tenant == tenant]


def apply_plan(client: NgsiLdClient, plan: Plan, on_step: Callable[[Step], None] | None = None) -> None:
    """Carry out the writes of the plan, in order; PlatformError at the first refusal."""
    for step in plan.writes:
        if step.action == "replace":
            response = client.request("DELETE", f"/subscriptions/{step.subscription_id}", tenant=step.tenant)
            with response:
                if response.status_code not in (204, 404):
                    raise PlatformError(
                        f"deleting {step.subscription_id} answered {response.status_code}: {problem_text(response)}"
                    )
        response = client.request("POST", "/subscriptions", tenant=step.tenant, body=step.body)
        with response:
            if response.status_code != 201:
                raise PlatformError(
                    f"creating {step.subscription_id} answered {response.status_code}: {problem_text(response)}"
                )
        if on_step is not None:
            on_step(step)


def describe(plan: Plan, *, context_url: str, quantumleap_url: str) -> list[str]:
    """The plan as lines for people."""
    lines = [
        f"@context {context_url}: reachable, {plan.context_terms} terms",
        f"QuantumLeap {quantumleap_url}: version {plan.quantumleap}",
    ]
    tenants = list(dict.fromkeys(s.tenant for s in plan.steps))
    for tenant in tenants:
        state = "does not exist yet (created by its first subscription)" if tenant in plan.new_tenants else "exists"
        lines.append(f"tenant {tenant}: {state}")
        for step in steps_for(plan.steps, tenant):
            why = f"  ({step.why})" if step.why else ""
            lines.append(f"  {step.action:9} {step.subscription_id}{why}")
    return lines

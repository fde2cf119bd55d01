"""The shared core every adapter uses the same way; its public API is what ``__all__`` lists.

The names load on first use (PEP 562): every adapter imports ``adapters.core.<module>``, which runs
this file first, and ``dos-adapters list`` must not pay for the broker client, the outbox, the
scheduler or MQTT it never uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.core.adapter import (
        Adapter,
        NormalizeContext,
        Payload,
        PayloadError,
        RawRecord,
        RecordRejected,
        SourceKind,
        discover_adapters,
        payload_bytes,
        payload_stream,
    )
    from adapters.core.broker import BrokerClient, BrokerConfigError, BrokerError, UpsertResult
    from adapters.core.entities import (
        Attribute,
        Entity,
        EntityError,
        entity_id,
        geo_point,
        geo_property,
        local_id,
        make_entity,
        prop,
        relationship,
        tenant_name,
        utc_iso,
    )
    from adapters.core.normalize import NormalizeResult, normalize_chunks, normalize_payload
    from adapters.core.outbox import Outbox, OutboxError
    from adapters.core.runner import Runtime
    from adapters.core.sinks import BrokerSink, DeadLetterFile, FileSink
    from adapters.core.validation import entity_problems, to_key_values

_EXPORTS = {
    "adapters.core.adapter": (
        "Adapter",
        "NormalizeContext",
        "Payload",
        "PayloadError",
        "RawRecord",
        "RecordRejected",
        "SourceKind",
        "discover_adapters",
        "payload_bytes",
        "payload_stream",
    ),
    "adapters.core.broker": ("BrokerClient", "BrokerConfigError", "BrokerError", "UpsertResult"),
    "adapters.core.entities": (
        "Attribute",
        "Entity",
        "EntityError",
        "entity_id",
        "geo_point",
        "geo_property",
        "local_id",
        "make_entity",
        "prop",
        "relationship",
        "tenant_name",
        "utc_iso",
    ),
    "adapters.core.normalize": ("NormalizeResult", "normalize_chunks", "normalize_payload"),
    "adapters.core.outbox": ("Outbox", "OutboxError"),
    "adapters.core.runner": ("Runtime",),
    "adapters.core.sinks": ("BrokerSink", "DeadLetterFile", "FileSink"),
    "adapters.core.validation": ("entity_problems", "to_key_values"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "Adapter",
    "Attribute",
    "BrokerClient",
    "BrokerConfigError",
    "BrokerError",
    "BrokerSink",
    "DeadLetterFile",
    "Entity",
    "EntityError",
    "FileSink",
    "NormalizeContext",
    "NormalizeResult",
    "Outbox",
    "OutboxError",
    "Payload",
    "PayloadError",
    "RawRecord",
    "RecordRejected",
    "Runtime",
    "SourceKind",
    "UpsertResult",
    "discover_adapters",
    "entity_id",
    "entity_problems",
    "geo_point",
    "geo_property",
    "local_id",
    "make_entity",
    "normalize_chunks",
    "normalize_payload",
    "payload_bytes",
    "payload_stream",
    "prop",
    "relationship",
    "tenant_name",
    "to_key_values",
    "utc_iso",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

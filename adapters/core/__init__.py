"""The shared core every adapter uses the same way; its public API is what ``__all__`` lists."""

from adapters.core.adapter import (
    Adapter,
    NormalizeContext,
    PayloadError,
    RawRecord,
    RecordRejected,
    SourceKind,
    discover_adapters,
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
from adapters.core.outbox import Outbox, OutboxError
from adapters.core.runner import NormalizeResult, Runtime, normalize_payload
from adapters.core.sinks import BrokerSink, DeadLetterFile, FileSink
from adapters.core.validation import entity_problems, to_key_values

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
    "normalize_payload",
    "prop",
    "relationship",
    "tenant_name",
    "to_key_values",
    "utc_iso",
]

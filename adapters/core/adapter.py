"""The adapter interface: an adapter declares itself in class attributes; the core runs it.

An adapter is a class registered in the ``dos_adapters.adapters`` entry-point group (its entry-point
name is its id everywhere: config section, env prefix, logger). It lists its *source kinds*: how to
split a native payload into records (``parse``) and how to turn one record into entities
(``normalize``). Both are pure functions, tested on recorded payloads; fetching, scheduling,
validation, batching and delivery belong to the core.

A payload reaches ``parse`` as bytes or as a binary file (the runner spools a large HTTP body to
disk). ``parse`` may return a list, or a generator that reads the file record by record
(:func:`payload_stream`), so a large export is never in memory as a whole; a parser that needs the
whole document reads it with :func:`payload_bytes`.
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from importlib import resources as package_files
from pathlib import Path
from typing import IO, Any, ClassVar, Literal, Protocol

from adapters.core.entities import Entity

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "Governance",
    "NormalizeContext",
    "Payload",
    "PayloadError",
    "RawRecord",
    "RecordRejected",
    "Resources",
    "SourceKind",
    "discover_adapters",
    "find_source",
    "payload_bytes",
    "payload_stream",
]

ENTRY_POINT_GROUP = "dos_adapters.adapters"

RawRecord = Mapping[str, Any]

Payload = bytes | IO[bytes]
"""A native payload as received: bytes, or a binary file positioned at its start."""

SPOOL_IN_MEMORY_BYTES = 1024 * 1024
"""Payloads up to this size stay in memory when they must be copied into a file (:func:`payload_stream`)."""


def payload_bytes(payload: Payload) -> bytes:
    """The whole payload, for parsers that need the document at once."""
    return payload if isinstance(payload, bytes) else payload.read()


def payload_stream(payload: Payload) -> IO[bytes]:
    """The payload as a seekable binary file, for parsers that read it record by record.

    A stream that cannot seek (stdin) is copied into a temporary file first, so a parser may look
    at the start of the document and go back.
    """
    if isinstance(payload, bytes):
        return io.BytesIO(payload)
    if payload.seekable():
        return payload
    copy = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 - the caller reads it
    shutil.copyfileobj(payload, copy)
    copy.seek(0)
    return copy


class PayloadError(ValueError):
    """The payload as a whole is unreadable (not JSON, wrong shape, truncated).

    A streaming parser may raise it after it has yielded records (a truncated download): those
    records are valid and may already be written, but the poll counts as failed.
    """


class RecordRejected(ValueError):
    """One record cannot become a valid entity; the message is the reason a person reads.

    ``partial`` holds entities of the record that are still right to send (e.g. a sensor's own
    ``Device`` entity when its reading is implausible): they flow, the rest is dead-lettered.
    """

    def __init__(self, reason: str, *, partial: Sequence[Entity] = ()) -> None:
        super().__init__(reason)
        self.partial = list(partial)


@dataclass(frozen=True)
class NormalizeContext:
    """Everything a normalise function may depend on, so its output is a pure function of this."""

    tenant: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None
    resources: Any = None
    """What ``Adapter.open_resources`` loaded once (a device registry, pipeline state), not per record."""


class Resources(Protocol):
    """Loaded once per run; ``commit`` after the entities of a batch are safe in the sink, else ``rollback``."""

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SourceKind:
    name: str
    description: str
    entity_types: tuple[str, ...]
    parse: Callable[[Payload], Iterable[RawRecord]]
    """Payload -> records, as a list or a generator; raises PayloadError, a generator possibly midway."""
    normalize: Callable[[RawRecord, NormalizeContext], list[Entity]]
    record_label: Callable[[RawRecord], str]
    default_url: str
    sample: str
    """File name of the recorded payload in the adapter's ``samples/`` folder, replayed by ``--offline``."""


LicenceUri = str
"""A licence from the DCAT-AP.de vocabulary, e.g. http://dcat-ap.de/def/licenses/dl-zero-de/2.0."""


@dataclass(frozen=True)
class Governance:
    """Who owns a source's data, under which terms, and whether it may leave the platform.

    ``dos-adapters catalog`` publishes only ``access="open"`` datasets; ``internal`` ones (operational
    data, anything not cleared for open data) never appear in the catalogue, whatever is asked.
    """

    publisher: str
    """The body publishing the dataset on the platform (the city of the tenant), e.g. "Stadt Dortmund"."""
    licence: LicenceUri
    attribution: str
    """The text the licence asks users to show (dcatde:licenseAttributionByText)."""
    update_frequency: str
    """EU frequency authority code: 1MIN, 5MIN, 15MIN, HOURLY, DAILY, IRREG, CONT, ..."""
    personal_data: Literal["none", "aggregated"]
    access: Literal["open", "internal"]
    tenant: str | None = None
    """The tenant the dataset lives in; None: the adapter's default tenant."""
    publisher_uri: str | None = None


class Adapter:
    """Base of every adapter; subclasses only fill in the class attributes."""

    name: ClassVar[str]
    title: ClassVar[str]
    mode: ClassVar[Literal["poll", "push"]] = "poll"
    sources: ClassVar[tuple[SourceKind, ...]]
    default_tenant: ClassVar[str]
    default_interval: ClassVar[int] = 300
    config_properties: ClassVar[Mapping[str, Any]] = {}
    governance: ClassVar[Mapping[str, Governance]] = {}
    """Source kind -> its governance metadata; a source without any is never published."""

    @classmethod
    def section_schema(cls) -> dict[str, Any]:
        kinds = [source.name for source in cls.sources]
        return {
            "properties": {
                "source": {"enum": kinds, "default": kinds[0], "description": "Which source kind to read."},
                **cls.config_properties,
            }
        }

    @classmethod
    def open_resources(cls, settings: Mapping[str, Any], *, base_dir: Path, persistent: bool) -> Resources | None:
        """Load what normalising needs beyond the record (files named in ``settings``, relative to
        ``base_dir``); ``persistent`` False keeps any state in memory (``normalize``, tests)."""
        return None

    @classmethod
    def mqtt_topics(cls, settings: Mapping[str, Any]) -> list[str]:
        """Push adapters: the topics to subscribe to."""
        return list(settings.get("mqtt", {}).get("topics", []))

    @classmethod
    def accepts_message(cls, settings: Mapping[str, Any], topic: str) -> bool:
        """Push adapters: False for messages on a subscribed topic that carry no readings (acknowledged, ignored)."""
        return True

    @classmethod
    def offline_settings(cls, settings: Mapping[str, Any]) -> Mapping[str, Any]:
        """Settings for replaying the recorded samples (e.g. the sample device registry beside them)."""
        return settings

    @classmethod
    def source(cls, kind: str) -> SourceKind:
        for source in cls.sources:
            if source.name == kind:
                return source
        raise KeyError(kind)

    @classmethod
    def sample_payload(cls, source: SourceKind) -> bytes:
        package = sys.modules[cls.__module__].__package__ or cls.__module__
        return package_files.files(package).joinpath("samples").joinpath(source.sample).read_bytes()

    @classmethod
    def entity_types(cls) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for source in cls.sources for t in source.entity_types))


def discover_adapters() -> dict[str, type[Adapter]]:
    """Adapters installed in the entry-point group, by id; partner packages join the same way."""
    found: dict[str, type[Adapter]] = {}
    for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        adapter = entry_point.load()
        if not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
            raise TypeError(f"entry point {entry_point.name!r} ({entry_point.value}) is not an Adapter class")
        if adapter.name != entry_point.name:
            raise TypeError(f"entry point {entry_point.name!r} loads adapter named {adapter.name!r}; they must match")
        found[entry_point.name] = adapter
    return found


def find_source(adapters: Iterable[type[Adapter]], kind: str) -> tuple[type[Adapter], SourceKind]:
    for adapter in adapters:
        for source in adapter.sources:
            if source.name == kind:
                return adapter, source
    raise KeyError(kind)

"""ProblemDetails the way Orion-LD writes them.

Orion-LD answers errors with ``{"type", "title", "detail"}`` and no top-level ``status``; only the
items of a 207 ``errors`` array carry ``status`` (verified in its functional tests, e.g.
``ngsild_batch_upsert-context_in_payload_data.test``). Titles used across this package are Orion-LD's
own strings wherever its sources were checked, so a client's error handling meets the real wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


class ProblemType(StrEnum):
    """Error type URIs Orion-LD emits (``orionldResponseErrorType.cpp``)."""

    INVALID_REQUEST = _ERRORS + "InvalidRequest"
    BAD_REQUEST_DATA = _ERRORS + "BadRequestData"
    ALREADY_EXISTS = _ERRORS + "AlreadyExists"
    OPERATION_NOT_SUPPORTED = _ERRORS + "OperationNotSupported"
    RESOURCE_NOT_FOUND = _ERRORS + "ResourceNotFound"
    INTERNAL_ERROR = _ERRORS + "InternalError"
    NON_EXISTING_TENANT = _ERRORS + "NonExistingTenant"


@dataclass(frozen=True)
class ProblemDetail:
    """One error: rendered as a top-level body or as the ``error`` of a 207 item."""

    type: str
    title: str
    detail: str | None = None
    status: int = 400

    def body(self) -> dict[str, Any]:
        """Top-level ProblemDetails body: Orion-LD leaves ``status`` out."""
        out: dict[str, Any] = {"type": self.type, "title": self.title}
        if self.detail is not None:
            out["detail"] = self.detail
        return out

    def item(self) -> dict[str, Any]:
        """The ``error`` member of a batch 207 item, which does carry ``status``."""
        return {**self.body(), "status": self.status}


class ProblemError(Exception):
    """Aborts handling of a request (or of one batch item) with a ProblemDetail."""

    def __init__(self, problem: ProblemDetail, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}")
        self.problem = problem
        self.headers = headers


def bad_request(title: str, detail: str | None = None) -> ProblemError:
    """The most common failure: BadRequestData with status 400."""
    return ProblemError(ProblemDetail(ProblemType.BAD_REQUEST_DATA, title, detail, 400))

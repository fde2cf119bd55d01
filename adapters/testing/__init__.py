"""Test doubles for the platform our adapters write to, reusable by partner cities.

:class:`BrokerDouble` is a strict, in-memory stand-in for the Orion-LD context broker; start it,
point the adapter's broker URL at :attr:`BrokerDouble.url`, and assert on what it stored or was sent.
"""

from adapters.testing._service import Headers, JsonLdContext
from adapters.testing.broker_double import BrokerDouble, RecordedRequest
from adapters.testing.problems import ProblemDetail, ProblemType

__all__ = [
    "BrokerDouble",
    "Headers",
    "JsonLdContext",
    "ProblemDetail",
    "ProblemType",
    "RecordedRequest",
]

"""Whether a source's observation time can be right, asked before the time goes into an entity.

A source with a broken clock or a corrupt export sends times like 0001-01-01 or 9999-12-31; sent on,
such a time becomes QuantumLeap's time index and the newest state for good. The checks are pure: the
future is measured from ``received_at`` (the runner sets it to the fetch time), never the wall clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["EARLIEST", "FUTURE_TOLERANCE", "time_problem"]

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""Before any source this project reads existed."""
FUTURE_TOLERANCE = timedelta(hours=1)
"""Clock skew between a source and us; a source's hourly value may also be stamped at the hour's end."""


def time_problem(moment: datetime, received_at: datetime | None) -> str | None:
    """Why ``moment`` (aware) cannot be an observation time received at ``received_at``; None when it can."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return f"time {moment.isoformat()} is out of range"
    if utc < EARLIEST:
        return f"time {moment.isoformat()} is before {EARLIEST.year}: a clock or export error"
    if received_at is not None and utc > received_at + FUTURE_TOLERANCE:
        return f"time {moment.isoformat()} is in the future (received at {received_at.astimezone(UTC).isoformat()})"
    return None

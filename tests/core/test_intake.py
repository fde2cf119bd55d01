"""MicroBatcher: bounded, in order, every message reported once (the MQTT side is in tests/e2e_lorawan)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from adapters.core.intake import Message, MicroBatcher


def _message(number: int) -> Message:
    return Message(f"t/{number}", str(number).encode())


def test_enqueue_blocks_while_max_pending_messages_wait_and_loses_nothing() -> None:
    """The backpressure an MQTT backlog relies on: while a batch commits, at most ``max_pending``
    further messages are held; the next ``enqueue`` waits (paho then stops reading the socket)."""
    release = threading.Event()
    committed: list[list[bytes]] = []

    def flush(messages: Sequence[Message]) -> None:
        release.wait(10)
        committed.append([m.payload for m in messages])

    batcher = MicroBatcher(flush, max_messages=3, max_delay=0.01, max_pending=2)
    reports: list[BaseException | None] = []
    try:
        for number in range(3):  # the first batch, now held in flush
            batcher.enqueue(_message(number), reports.append)
        for number in range(3, 5):  # max_pending: queued without blocking
            batcher.enqueue(_message(number), reports.append)
        blocked = threading.Thread(target=batcher.enqueue, args=(_message(5), reports.append))
        blocked.start()
        blocked.join(0.3)
        assert blocked.is_alive(), "the sixth message must wait for room"
        release.set()
        blocked.join(5)
        assert not blocked.is_alive()
    finally:
        release.set()
        batcher.close()
    assert [payload for batch in committed for payload in batch] == [str(n).encode() for n in range(6)]
    assert reports == [None] * 6


def test_submit_future_completes_after_the_commit_and_fails_after_close() -> None:
    batcher = MicroBatcher(lambda messages: None, max_messages=10, max_delay=0.01)
    assert batcher.submit(_message(1)).result(timeout=5) is None
    batcher.close()
    error = batcher.submit(_message(2)).exception(timeout=1)
    assert isinstance(error, RuntimeError)


def test_a_batch_that_cannot_be_committed_on_close_reports_the_error_to_each_message() -> None:
    started = threading.Event()

    def flush(messages: Sequence[Message]) -> None:
        started.set()
        raise OSError("disk full")

    batcher = MicroBatcher(flush, max_messages=2, max_delay=5.0, retry_delay=0.01)
    reports: list[BaseException | None] = []
    batcher.enqueue(_message(1), reports.append)
    batcher.enqueue(_message(2), reports.append)
    assert started.wait(5)
    batcher.close()
    assert [type(report) for report in reports] == [OSError, OSError]


def test_close_when_idle_commits_waiting_senders_without_waiting_out_max_delay() -> None:
    """Webhook senders wait for their answer: with every open request in the batch, none comes before
    the commit, so the batch is committed after the idle time, not after ``max_delay`` (here 60 s)."""
    committed: list[list[bytes]] = []
    batcher = MicroBatcher(lambda messages: committed.append([m.payload for m in messages]), max_delay=60.0)
    batcher.close_when_idle(0.01)
    try:
        answers = [batcher.submit(_message(number)) for number in range(3)]
        for answer in answers:
            assert answer.result(timeout=10) is None  # long before max_delay
    finally:
        batcher.close()
    assert [payload for batch in committed for payload in batch] == [b"0", b"1", b"2"]


def test_without_close_when_idle_a_batch_waits_for_max_delay() -> None:
    """The MQTT default: a stream keeps coming, so waiting gathers large commits."""
    batcher = MicroBatcher(lambda messages: None, max_delay=60.0)
    try:
        answer = batcher.submit(_message(1))
        with pytest.raises(TimeoutError):
            answer.result(timeout=0.3)
    finally:
        batcher.close()  # commits what is queued
    assert answer.result(timeout=5) is None

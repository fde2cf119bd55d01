"""UplinkState: staged until commit, and its in-memory cache never differs from the file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.core.lorawan import state as state_module
from adapters.core.lorawan.state import DeviceMemory, UplinkState

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_committed_memory_survives_a_restart(tmp_path: Path) -> None:
    first = UplinkState(tmp_path / "state.sqlite")
    first.stage("a", DeviceMemory().after("k1", T0, {"occupied": True}))
    first.commit()
    first.close()
    second = UplinkState(tmp_path / "state.sqlite")
    memory = second.memory("a")
    assert memory.seen("k1")
    assert memory.kind_state == {"occupied": True}
    assert memory.observed_at == T0.isoformat()


def test_rollback_leaves_the_committed_memory(tmp_path: Path) -> None:
    state = UplinkState(tmp_path / "state.sqlite")
    state.stage("a", DeviceMemory().after("k1", T0, None))
    state.commit()
    state.stage("a", state.memory("a").after("k2", T0, None))
    assert state.memory("a").seen("k2")  # staged memory is what the next uplink of the batch sees
    state.rollback()
    assert state.memory("a").seen("k1")
    assert not state.memory("a").seen("k2")  # a redelivery of k2 after the failed commit is not a duplicate


def test_a_failed_commit_keeps_neither_file_nor_cache(tmp_path: Path) -> None:
    state = UplinkState(tmp_path / "state.sqlite")
    state.stage("a", DeviceMemory().after("k1", T0, None))
    state.commit()
    state._db.execute("CREATE TRIGGER refuse BEFORE INSERT ON devices BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    state.stage("a", state.memory("a").after("k2", T0, None))
    with pytest.raises(Exception, match="disk full"):
        state.commit()
    state.rollback()
    assert not state.memory("a").seen("k2")


def test_devices_beyond_the_cache_are_read_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "CACHED_DEVICES", 2)
    state = UplinkState(tmp_path / "state.sqlite")
    for number in range(5):
        state.stage(f"d{number}", DeviceMemory().after(f"k{number}", T0, None))
    state.commit()
    assert len(state._committed) == 2
    assert all(state.memory(f"d{number}").seen(f"k{number}") for number in range(5))
    assert len(state._committed) == 2


def test_a_commit_by_another_process_on_the_same_file_is_seen_from_the_next_batch(tmp_path: Path) -> None:
    """Replicas sharing one state file: the cache must not hide what the other one committed."""
    ours, theirs = UplinkState(tmp_path / "state.sqlite"), UplinkState(tmp_path / "state.sqlite")
    ours.stage("a", DeviceMemory().after("k1", T0, None))
    ours.commit()
    assert ours.memory("a").seen("k1")  # now cached
    theirs.stage("a", theirs.memory("a").after("k2", T0, None))
    theirs.commit()
    ours.rollback()  # the end of our batch (commit or rollback)
    assert ours.memory("a").seen("k2")

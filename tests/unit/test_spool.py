"""The spool file format and its life cycle: append, rotate, claim, release, adopt the
abandoned (by lock, not by pid)."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.spool import Spool, SpoolRecord


def _record(n: int) -> SpoolRecord:
    return SpoolRecord(f"event=X&n={n}".encode(), "application/x-www-form-urlencoded", 1000 + n)


def test_records_round_trip_in_order_and_rotate_by_size(tmp_path: Path) -> None:
    """Appended records come back in order; a full file is sealed and a new one begun."""
    spool = Spool(tmp_path, max_bytes=200)
    for n in range(5):
        spool.append(_record(n))
    assert spool.has_backlog()
    files = spool.claim()
    assert len(files) >= 2  # rotated at least once
    records = [r for f in files for r in Spool.read(f)]
    assert records == [_record(n) for n in range(5)]
    for f in files:
        spool.discard(f)
    assert not spool.has_backlog()


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    """A crash mid-write leaves a partial line; the records before it still replay."""
    spool = Spool(tmp_path)
    spool.append(_record(1))
    spool.seal()
    [sealed] = tmp_path.glob("spool-*.jsonl")
    with open(sealed, "ab") as f:
        f.write(b'{"body": "abc')
    [claimed] = spool.claim()
    assert list(Spool.read(claimed)) == [_record(1)]


def test_released_file_is_claimed_again(tmp_path: Path) -> None:
    """A replay interrupted by a new outage gives its file back for the next attempt."""
    spool = Spool(tmp_path)
    spool.append(_record(1))
    [claimed] = spool.claim()
    assert spool.claim() == []  # claimed files are not handed out twice
    spool.release(claimed)
    [again] = spool.claim()
    assert list(Spool.read(again)) == [_record(1)]


def test_unlocked_files_are_adopted_whatever_pid_their_name_holds(tmp_path: Path) -> None:
    """An open or half-replayed file nobody holds the lock of is replayed by whoever comes
    next, even when the pid in its name is alive (a container's ingress is PID 1 each time)."""
    live_pid = os.getpid()
    (tmp_path / f"spool-1-{live_pid}-aaaaaa.open").write_bytes(_record(1).to_line())
    (tmp_path / f"spool-2-{live_pid}-bbbbbb.replaying").write_bytes(_record(2).to_line())
    spool = Spool(tmp_path)
    assert spool.has_backlog()
    records = [r for f in spool.claim() for r in Spool.read(f)]
    assert sorted(r.received_ms for r in records) == [1001, 1002]


def test_a_file_being_written_is_neither_adopted_nor_claimed(tmp_path: Path) -> None:
    """Another spool's open file stays its own: a second replayer in the same directory
    leaves it alone until it is sealed."""
    writer = Spool(tmp_path)
    writer.append(_record(1))
    other = Spool(tmp_path)
    assert other.claim() == []
    [still_open] = tmp_path.glob("spool-*.open")
    writer.append(_record(2))
    writer.seal()
    [claimed] = other.claim()
    assert claimed.stem == still_open.stem
    assert list(Spool.read(claimed)) == [_record(1), _record(2)]


def test_a_claimed_file_is_not_adopted_by_another_replayer(tmp_path: Path) -> None:
    """A file one replayer is replaying is locked: another sees no backlog in it."""
    first = Spool(tmp_path)
    first.append(_record(1))
    [claimed] = first.claim()
    second = Spool(tmp_path)
    assert not second.has_backlog()
    assert second.claim() == []
    first.discard(claimed)
    assert list(tmp_path.glob("spool-*")) == []

"""The spool file format and its life cycle: append, rotate, claim, release, adopt orphans."""

from __future__ import annotations

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
        Spool.discard(f)
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
    Spool.release(claimed)
    [again] = spool.claim()
    assert list(Spool.read(again)) == [_record(1)]


def test_files_of_a_dead_process_are_adopted(tmp_path: Path) -> None:
    """An open or half-replayed file whose writer died is replayed by whoever comes next."""
    dead_pid = 2**22 + 12345  # above any pid_max default, so no such process
    (tmp_path / f"spool-1-{dead_pid}.open").write_bytes(_record(1).to_line())
    (tmp_path / f"spool-2-{dead_pid}.replaying").write_bytes(_record(2).to_line())
    spool = Spool(tmp_path)
    assert spool.has_backlog()
    records = [r for f in spool.claim() for r in Spool.read(f)]
    assert sorted(r.received_ms for r in records) == [1001, 1002]

"""The spool file format and its life cycle: append, rotate, claim, release, adopt the
abandoned (by lock, not by pid); and its failures, made to happen for real (a file-size limit,
a full tmpfs, a rename refused by what is in the way): each is our error, none leaves a torn
line or a state the spool cannot go on from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import SpoolUnavailable
from orchestrator.ingress.spool import Spool, SpoolRecord
from tests.tmpfs import small_tmpfs

ROOT = Path(__file__).resolve().parents[2]
FORM = "application/x-www-form-urlencoded"


def _record(n: int) -> SpoolRecord:
    return SpoolRecord(f"event=X&n={n}".encode(), FORM, 1000 + n)


def _padded(n: int, pad: int, content_type: str = FORM) -> SpoolRecord:
    return SpoolRecord(b"event=X&n=%d&pad=" % n + b"p" * pad, content_type, n)


def _raw_lines(directory: Path) -> list[bytes]:
    """Every line of every spool file as it is on disk (`Spool.read` would skip a torn one)."""
    data = b"".join(path.read_bytes() for path in sorted(directory.glob("spool-*")))
    assert data.endswith(b"\n"), "the last line is torn"
    return data.splitlines()


def _received(lines: list[bytes]) -> list[int]:
    return [SpoolRecord.from_line(line).received_ms for line in lines]  # raises if one is torn


def test_records_round_trip_in_order_and_rotate_by_size(tmp_path: Path) -> None:
    """Appended records come back in order; a full file is sealed and a new one begun."""
    spool = Spool(tmp_path, rotate_bytes=200)
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


# Appends in a process with a file-size limit: the limit cuts a write short for real (the part
# below it is written, the rest refused with EFBIG), as a filling disk does; raising the limit
# again is the disk getting space back.
_LIMITED = """
import json, resource, sys
from orchestrator.errors import SpoolUnavailable
from orchestrator.ingress.spool import Spool, SpoolRecord

directory, limit, big, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
spool = Spool(directory)
outcomes = []

def append(n, pad):
    try:
        spool.append(SpoolRecord(b"event=X&n=%d&pad=" % n + b"p" * pad, "text/plain", n))
        outcomes.append("ok")
    except SpoolUnavailable as exc:
        outcomes.append([exc.op, exc.reason, exc.full])

resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
for n in (1, 2, 3, 4):
    append(n, big)
append(5, small)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
append(6, big)
spool.close()
print(json.dumps(outcomes))
"""


def test_a_write_cut_short_leaves_no_torn_line_and_the_next_append_works(tmp_path: Path) -> None:
    """Record 4 crosses the file-size limit: half of it is written, then refused. It fails as
    "full", the half line is cut off again, and record 5 (small enough to fit) and record 6
    (after the limit is lifted) land as whole lines after record 3, not glued to a torn one."""
    big, small = 300, 10
    line = len(_padded(1, big, "text/plain").to_line())
    assert len(_padded(5, small, "text/plain").to_line()) < line // 2
    limit = 3 * line + line // 2
    done = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(tmp_path), str(limit), str(big), str(small)],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    refused = ["append", "File too large (EFBIG)", True]
    assert json.loads(done.stdout) == ["ok", "ok", "ok", refused, "ok", "ok"]
    assert _received(_raw_lines(tmp_path)) == [1, 2, 3, 5, 6]


def test_a_full_disk_refuses_an_append_cleanly_and_the_spool_goes_on_once_freed(
    tmp_path: Path,
) -> None:
    """On a 64 KiB tmpfs that really fills up, the append that does not fit fails as "full"
    (ENOSPC) with only whole lines on disk, the spool reports itself full, and once space is
    freed the next append works and everything accepted replays."""
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        filler = disk / "filler"
        filler.write_bytes(b"f" * 32 * 1024)  # someone else's half of the disk
        spool = Spool(disk / "spool")
        accepted: list[int] = []
        for n in range(1, 100):
            try:
                spool.append(_padded(n, 2500))  # ~3.4 KiB lines: most cross a page boundary
            except SpoolUnavailable as exc:
                refused = exc
                break
            accepted.append(n)
        else:
            pytest.fail("64 KiB never filled up")
        assert (refused.op, refused.full) == ("append", True)
        assert "(ENOSPC)" in refused.reason
        assert _received(_raw_lines(disk / "spool")) == accepted
        problem = spool.check()
        assert problem is not None
        assert problem.full
        filler.unlink()
        assert spool.check() is None
        spool.append(_padded(100, 2500))
        assert _received(_raw_lines(disk / "spool")) == [*accepted, 100]
        files = spool.claim()
        assert [r.received_ms for f in files for r in Spool.read(f)] == [*accepted, 100]
        spool.close()


def test_seal_clears_its_state_when_the_rename_fails(tmp_path: Path) -> None:
    """A directory in the way of the sealed name makes the rename fail (EISDIR): seal raises our
    error, not an OSError, and keeps nothing of the failed file, so sealing again is a no-op and
    the next append starts a new file that seals normally."""
    spool = Spool(tmp_path)
    spool.append(_record(1))
    [first] = tmp_path.glob("spool-*.open")
    first.with_suffix(".jsonl").mkdir()
    with pytest.raises(SpoolUnavailable) as failed:
        spool.seal()
    assert failed.value.op == "seal"
    assert "(EISDIR)" in failed.value.reason
    spool.seal()
    spool.append(_record(2))
    [second] = (p for p in tmp_path.glob("spool-*.open") if p != first)
    spool.seal()
    assert second.with_suffix(".jsonl").is_file()
    assert first.is_file()  # left as it was: adopted by the next claim (next test)


def test_a_file_left_open_by_a_failed_seal_is_adopted_and_replayed(tmp_path: Path) -> None:
    """The `.open` file of a failed seal has no lock holder any more: the next claim (here by
    another replayer) adopts it and its records replay, while the file the writer went on
    appending to stays the writer's until it is sealed."""
    writer = Spool(tmp_path)
    writer.append(_record(1))
    writer.append(_record(2))
    [orphan] = tmp_path.glob("spool-*.open")
    blocker = orphan.with_suffix(".jsonl")
    blocker.mkdir()
    with pytest.raises(SpoolUnavailable):
        writer.seal()
    blocker.rmdir()
    writer.append(_record(3))
    replayer = Spool(tmp_path)
    assert replayer.has_backlog()
    files = replayer.claim()
    assert [f.stem for f in files] == [orphan.stem]
    assert [r for f in files for r in Spool.read(f)] == [_record(1), _record(2)]
    replayer.discard(files[0])
    assert replayer.claim() == []  # the writer's current file is still its own
    [rest] = writer.claim()
    assert list(Spool.read(rest)) == [_record(3)]


def test_the_cap_refuses_what_would_pass_it_and_a_discard_makes_room(tmp_path: Path) -> None:
    """With `max_bytes` room for three records, the fourth is refused as "full" with the usage
    in its reason (appends are counted between directory scans), the spool reports itself full,
    and once the replayed files are deleted it takes records again."""
    line = len(_record(0).to_line())
    spool = Spool(tmp_path, max_bytes=3 * line)
    for n in range(3):
        spool.append(_record(n))
    with pytest.raises(SpoolUnavailable) as refused:
        spool.append(_record(3))
    assert (refused.value.op, refused.value.full) == ("append", True)
    assert refused.value.reason == f"spool full: {3 * line} bytes of {3 * line}"
    problem = spool.check()
    assert problem is not None
    assert problem.full
    for path in spool.claim():
        spool.discard(path)
    assert spool.check() is None
    spool.append(_record(4))
    assert [r for f in spool.claim() for r in Spool.read(f)] == [_record(4)]


def test_spool_failures_are_our_error_never_a_bare_oserror(tmp_path: Path) -> None:
    """A claimed file deleted from under the replayer: giving it back and reading it fail as
    SpoolUnavailable (a bare OSError could be taken for Redis being out of reach)."""
    spool = Spool(tmp_path)
    spool.append(_record(1))
    [claimed] = spool.claim()
    claimed.unlink()
    with pytest.raises(SpoolUnavailable) as reading:
        list(Spool.read(claimed))
    assert (reading.value.op, reading.value.full) == ("read", False)
    with pytest.raises(SpoolUnavailable) as releasing:
        spool.release(claimed)
    assert releasing.value.reason == "No such file or directory (ENOENT)"
    assert spool.claim() == []

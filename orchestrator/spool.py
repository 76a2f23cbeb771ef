"""The local spool: raw events the ingress acknowledged while Redis was unreachable.

Bitrix24 never re-delivers an event, so a 5xx would lose it; instead the ingress appends the
raw request (body, content type, receive time) as one JSON line, fsyncs, and answers 200. Files
rotate by size; a replayer claims sealed files by renaming them, feeds each record through the
same verify + ingest path (the dedup key absorbs anything replayed twice), then deletes them.

    spool-<us>-<pid>-<rand>.open        being appended to by its writer
    spool-<us>-<pid>-<rand>.jsonl       sealed, waiting for replay
    spool-<us>-<pid>-<rand>.replaying   claimed by a replayer

Whoever owns an `.open` or `.replaying` file holds an exclusive `flock` on it for as long as it
owns it, and the kernel drops that lock when the process dies, however it dies. So a file whose
lock can be taken is abandoned, and is adopted. (A PID check cannot tell: in a container the
ingress is PID 1 after every restart, while the spool volume outlives the container.) The pid
in a name is only there for people reading the directory.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["Spool", "SpoolRecord"]

_OWNED = (".open", ".replaying")  # the suffixes whose files have a lock holder while owned


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One acknowledged request."""

    body: bytes
    content_type: str
    received_ms: int

    def to_line(self) -> bytes:
        """One JSON line."""
        return (
            json.dumps(
                {
                    "body": base64.b64encode(self.body).decode(),
                    "ct": self.content_type,
                    "rcv": self.received_ms,
                }
            ).encode()
            + b"\n"
        )

    @classmethod
    def from_line(cls, line: bytes) -> SpoolRecord:
        """Parse one JSON line."""
        data = json.loads(line)
        return cls(base64.b64decode(data["body"]), data["ct"], int(data["rcv"]))


def _lock(path: Path) -> int | None:
    """An fd of `path` holding its exclusive lock; None while another owner holds the lock, or
    when the file is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino == os.fstat(fd).st_ino:  # still the file of that name
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    os.close(fd)
    return None


class Spool:
    """Append-only spool files in one directory (sync methods: call them off the event loop)."""

    def __init__(self, directory: str | Path, *, max_bytes: int = 8 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0
        self._claimed: dict[Path, int] = {}  # our .replaying files -> the fd holding the lock

    def append(self, record: SpoolRecord) -> None:
        """Write one record durably (fsync) before the caller acknowledges it."""
        if self._file is None:
            self._open()
        assert self._file is not None
        line = record.to_line()
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._size += len(line)
        if self._size >= self.max_bytes:
            self.seal()

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"spool-{time.time_ns() // 1000}-{os.getpid()}-{secrets.token_hex(3)}"
        # locked under a name no scan matches, then renamed: an `.open` file is never seen
        # without its lock (a scan in between would take it for abandoned)
        hidden = self.dir / f".{name}.new"
        file = open(hidden, "ab")  # noqa: SIM115 - kept open (and locked) across appends
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        self._path = hidden.rename(self.dir / f"{name}.open")
        self._file = file
        self._size = 0
        self._fsync_dir()  # the new directory entry survives a crash too

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def writable(self) -> bool:
        """Whether an append would succeed now: a probe file is created, written, fsynced and
        removed (a read-only volume, a full disk or a missing permission all say no)."""
        probe = self.dir / f".probe-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError:
            return False
        return True

    def seal(self) -> None:
        """Close the current file so a replayer may take it."""
        if self._file is None or self._path is None:
            return
        self._path.rename(self._path.with_suffix(".jsonl"))  # renamed while still locked
        self._file.close()
        self._file = self._path = None

    def close(self) -> None:
        """Seal what is open and give back what is claimed (called at shutdown)."""
        self.seal()
        for path in list(self._claimed):
            self.release(path)

    def has_backlog(self) -> bool:
        """Whether anything waits for replay (open, sealed, or abandoned by a dead process)."""
        if self._file is not None or any(self.dir.glob("spool-*.jsonl")):
            return True
        return any(self._abandoned(adopt=False))

    def _abandoned(self, *, adopt: bool) -> Iterator[Path]:
        """Owned-suffix files nobody holds the lock of; with `adopt`, each is renamed back to
        `.jsonl` (under the lock just taken) so it can be claimed."""
        for path in self.dir.glob("spool-*.*"):
            if path.suffix not in _OWNED or path == self._path or path in self._claimed:
                continue
            fd = _lock(path)
            if fd is None:
                continue
            try:
                if adopt:
                    path.rename(path.with_suffix(".jsonl"))
            finally:
                os.close(fd)
            yield path

    def claim(self) -> list[Path]:
        """Seal ours, adopt abandoned files, and claim every sealed file (oldest first); each
        claimed file stays locked until `discard` or `release`."""
        self.seal()
        if not self.dir.exists():
            return []
        for _ in self._abandoned(adopt=True):
            pass
        claimed = []
        for path in sorted(self.dir.glob("spool-*.jsonl")):
            fd = _lock(path)
            if fd is None:  # another replayer was quicker
                continue
            target = path.with_suffix(".replaying")
            try:
                path.rename(target)
            except FileNotFoundError:
                os.close(fd)
                continue
            self._claimed[target] = fd
            claimed.append(target)
        return claimed

    @staticmethod
    def read(path: Path) -> Iterator[SpoolRecord]:
        """The records of a file; a torn last line (crash mid-write) is skipped."""
        with open(path, "rb") as f:
            for line in f:
                try:
                    yield SpoolRecord.from_line(line)
                except (ValueError, KeyError):
                    continue

    def release(self, path: Path) -> None:
        """Give a claimed file back (replay interrupted); it is retried later."""
        path.rename(path.with_suffix(".jsonl"))
        self._unlock(path)

    def discard(self, path: Path) -> None:
        """Delete a fully replayed file."""
        path.unlink(missing_ok=True)
        self._unlock(path)

    def _unlock(self, path: Path) -> None:
        fd = self._claimed.pop(path, None)
        if fd is not None:
            os.close(fd)

"""The local spool: raw events the ingress acknowledged while Redis was unreachable.

Bitrix24 never re-delivers an event, so a 5xx would lose it; instead the ingress appends the
raw request (body, content type, receive time) as one JSON line, fsyncs, and answers 200. Files
rotate by size; a replayer claims sealed files by renaming them, feeds each record through the
same verify + ingest path (the dedup key absorbs anything replayed twice), then deletes them.

    spool-<ms>-<pid>.open        being appended to by process <pid>
    spool-<ms>-<pid>.jsonl       sealed, waiting for replay
    spool-<ms>-<pid>.replaying   claimed by a replayer
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["Spool", "SpoolRecord"]


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """Append-only spool files in one directory (sync methods: call them off the event loop)."""

    def __init__(self, directory: str | Path, *, max_bytes: int = 8 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0

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
        self._path = self.dir / f"spool-{time.time_ns() // 1000}-{os.getpid()}.open"
        self._file = open(self._path, "ab")  # noqa: SIM115 - kept open across appends
        self._size = 0
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)  # the new directory entry survives a crash too
        finally:
            os.close(fd)

    def seal(self) -> None:
        """Close the current file so a replayer may take it."""
        if self._file is None or self._path is None:
            return
        self._file.close()
        self._path.rename(self._path.with_suffix(".jsonl"))
        self._file = self._path = None

    def close(self) -> None:
        """Seal what is open (called at shutdown)."""
        self.seal()

    def has_backlog(self) -> bool:
        """Whether anything waits for replay (open, sealed, or orphaned by a dead process)."""
        return self._file is not None or any(self.dir.glob("spool-*.jsonl")) or any(self._orphans())

    def _orphans(self) -> Iterator[Path]:
        for path in self.dir.glob("spool-*.*"):
            if path.suffix in (".open", ".replaying") and path != self._path:
                pid = int(path.stem.rsplit("-", 1)[1])
                if not _pid_alive(pid):
                    yield path

    def claim(self) -> list[Path]:
        """Seal ours, adopt files of dead processes, and claim every sealed file (oldest first)."""
        self.seal()
        if not self.dir.exists():
            return []
        for orphan in list(self._orphans()):
            with contextlib.suppress(FileNotFoundError):
                orphan.rename(orphan.with_suffix(".jsonl"))
        claimed = []
        for path in sorted(self.dir.glob("spool-*.jsonl")):
            target = self.dir / f"{path.stem.rsplit('-', 1)[0]}-{os.getpid()}.replaying"
            with contextlib.suppress(FileNotFoundError):  # another replayer was quicker
                path.rename(target)
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

    @staticmethod
    def release(path: Path) -> None:
        """Give a claimed file back (replay interrupted); it is retried later."""
        path.rename(path.with_suffix(".jsonl"))

    @staticmethod
    def discard(path: Path) -> None:
        """Delete a fully replayed file."""
        path.unlink(missing_ok=True)

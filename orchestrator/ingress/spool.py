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

A failure (a full disk, the `SPOOL_MAX_BYTES` cap, an unwritable volume) is a `SpoolUnavailable`,
never a bare OSError a caller could take for Redis being out of reach, and leaves the spool in a
state it goes on from by itself: records are written with unbuffered OS calls, a torn tail is cut
off again (or, if even that fails, its file is sealed so no record follows it), and a file that
cannot be sealed or given back is left without a lock holder, so the next claim adopts it. Every
failure is reported (logged, counted) by whoever absorbs it: here, when the spool carries on.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from orchestrator.errors import SpoolUnavailable
from orchestrator.ingress.spool_cap import SpoolCap
from orchestrator.observe import metrics

__all__ = ["Spool", "SpoolRecord", "report"]

log = structlog.get_logger(__name__)

_OWNED = (".open", ".replaying")  # the suffixes whose files have a lock holder while owned
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # disk, quota, file-size limit


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


def _failed(op: str, exc: OSError) -> SpoolUnavailable:
    """`exc` as our error; the reason names the errno, not the path (the portal is sent it)."""
    code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return SpoolUnavailable(op, f"{exc.strerror or exc} ({code})", full=exc.errno in _NO_ROOM)


def report(exc: SpoolUnavailable, **context: Any) -> None:
    """Log and count a spool failure that its catcher carries on after."""
    metrics.SPOOL_ERRORS.labels(op=exc.op).inc()
    log.error("spool_error", op=exc.op, reason=exc.reason, **context)


class Spool:
    """Append-only spool files in one directory (sync methods: call them off the event loop);
    `max_bytes` caps the bytes of all its files (0: no cap), `rotate_bytes` each file's."""

    def __init__(
        self, directory: str | Path, *, max_bytes: int = 0, rotate_bytes: int = 8 * 1024 * 1024
    ) -> None:
        self.dir = Path(directory)
        self.rotate_bytes = rotate_bytes
        self._fd: int | None = None  # raw: no bytes ever wait in a buffer of ours
        self._path: Path | None = None
        self._size = 0  # the current file's length up to its last whole, fsynced record
        self._claimed: dict[Path, int] = {}  # our .replaying files -> the fd holding the lock
        self._cap = SpoolCap(self.dir, max_bytes)

    def append(self, record: SpoolRecord) -> None:
        """Write one record durably (fsync) before the caller acknowledges it; raises
        SpoolUnavailable, with nothing of the record left behind, when it cannot."""
        line = record.to_line()
        try:
            full = self._cap.refusal(len(line))
            if full is not None:
                raise full
            if self._fd is None:
                self._open()
            self._write(line)
        except OSError as exc:
            raise _failed("append", exc) from exc
        self._cap.added(len(line))
        if self._size >= self.rotate_bytes:
            try:
                self.seal()
            except SpoolUnavailable as exc:  # the record is safe; its file is adopted later
                report(exc)

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"spool-{time.time_ns() // 1000}-{os.getpid()}-{secrets.token_hex(3)}"
        # locked under a name no scan matches, then renamed: an `.open` file is never seen
        # without its lock (a scan in between would take it for abandoned)
        path = self.dir / f".{name}.new"
        # 0600: what is spooled is an event with its application token (docs/security.md)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path = path.rename(self.dir / f"{name}.open")
            self._fsync_dir()  # the new directory entry survives a crash too
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()  # still empty
            os.close(fd)
            raise
        self._fd, self._path, self._size = fd, path, 0

    def _write(self, line: bytes) -> None:
        """Append and fsync `line`; when that fails, cut the file back to its last whole record,
        or seal it if even that fails, so that no record is ever glued to a torn one."""
        assert self._fd is not None
        fd = self._fd
        try:
            view = memoryview(line)
            while view:  # a filling disk may take part of a line, then refuse the rest
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, self._size)  # frees blocks, needs none
            except OSError:
                try:
                    self.seal()  # the torn tail stays last: a reader skips it
                except SpoolUnavailable as exc:
                    report(exc)
            raise
        self._size += len(line)

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def check(self) -> SpoolUnavailable | None:
        """Why an append would fail now, or None: the cap, then a probe file created, written,
        fsynced and removed (a read-only volume, a full disk or a missing permission fail it)."""
        probe = self.dir / f".probe-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            full = self._cap.reached()
            if full is not None:
                return full
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError as exc:
            return _failed("append", exc)
        return None

    def seal(self) -> None:
        """Close the current file so a replayer may take it. Our state is cleared even when
        this fails: the file is then left `.open` with no lock holder, and adopted later."""
        fd, path = self._fd, self._path
        self._fd, self._path, self._size = None, None, 0
        if fd is None or path is None:
            return
        try:
            path.rename(path.with_suffix(".jsonl"))  # renamed while still locked
        except OSError as exc:
            raise _failed("seal", exc) from exc
        finally:
            # drops the lock; the records were fsynced one by one, so a close error says
            # nothing about them (and on Linux the fd is released all the same)
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        """Seal what is open and give back what is claimed (at shutdown); a failure is
        reported, and what it leaves behind is adopted by the next ingress."""
        try:
            self.seal()
        except SpoolUnavailable as exc:
            report(exc)
        for path in list(self._claimed):
            try:
                self.release(path)
            except SpoolUnavailable as exc:
                report(exc, file=path.name)

    def _candidates(self) -> list[Path]:
        """Sealed files, and owned-suffix files not ours (their lock tells whether anyone else
        owns them), oldest first."""
        found = [
            path
            for path in self.dir.glob("spool-*.*")
            if path.suffix == ".jsonl"
            or (path.suffix in _OWNED and path != self._path and path not in self._claimed)
        ]
        return sorted(found, key=lambda path: path.stem)

    def has_backlog(self) -> bool:
        """Whether anything waits for replay (open, sealed, or abandoned by a dead process);
        also when the directory cannot be read, so that the claim that follows says why."""
        if self._fd is not None:
            return True
        try:
            return any(self._takeable(path) for path in self._candidates())
        except OSError:
            return True

    @staticmethod
    def _takeable(path: Path) -> bool:
        if path.suffix == ".jsonl":
            return True
        fd = _lock(path)
        if fd is None:
            return False
        os.close(fd)
        return True

    def claim(self) -> list[Path]:
        """Seal ours and claim every sealed or abandoned file (oldest first); each claimed file
        stays locked until `discard` or `release`. A file that cannot be claimed is reported
        and left for the next call: one bad file must not hold back the others."""
        try:
            self.seal()
        except SpoolUnavailable as exc:
            report(exc)  # ours is left `.open` and unlocked: adopted just below
        try:
            candidates = self._candidates()
        except OSError as exc:
            report(_failed("claim", exc))
            return []
        claimed = []
        for path in candidates:
            try:
                target = self._claim(path)
            except OSError as exc:
                report(_failed("claim", exc), file=path.name)
                continue
            if target is not None:
                claimed.append(target)
        return claimed

    def _claim(self, path: Path) -> Path | None:
        """Lock `path` and rename it `.replaying` (renaming needs no free space); None when
        someone else owns it."""
        fd = _lock(path)
        if fd is None:  # its writer is alive, or another replayer was quicker
            return None
        target = path.with_suffix(".replaying")
        try:
            path.rename(target)  # an abandoned `.replaying` keeps its name
        except FileNotFoundError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        self._claimed[target] = fd
        return target

    @staticmethod
    def read(path: Path) -> Iterator[SpoolRecord]:
        """The records of a file; a torn line (a crash or a full disk mid-write) is skipped."""
        try:
            with open(path, "rb") as f:
                for line in f:
                    try:
                        record = SpoolRecord.from_line(line)
                    except (ValueError, KeyError, TypeError):
                        continue
                    yield record
        except OSError as exc:
            raise _failed("read", exc) from exc

    def release(self, path: Path) -> None:
        """Give a claimed file back (replay interrupted); it is retried later."""
        try:
            path.rename(path.with_suffix(".jsonl"))
        except OSError as exc:
            raise _failed("release", exc) from exc
        finally:
            self._unlock(path)  # left `.replaying` without a lock holder: adopted later

    def discard(self, path: Path) -> None:
        """Delete a fully replayed file."""
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise _failed("discard", exc) from exc
        finally:
            # on failure it is adopted and replayed again later: the dedup keys absorb that
            self._unlock(path)
            self._cap.freed()

    def _unlock(self, path: Path) -> None:
        fd = self._claimed.pop(path, None)
        if fd is not None:
            os.close(fd)

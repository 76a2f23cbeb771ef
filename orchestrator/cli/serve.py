"""`orchestrator serve`: the ingress and N worker processes under one supervisor.

Each is a separate process (one event loop per core); on SIGTERM/SIGINT the children get
SIGTERM, the workers hand their dialogs back within `shutdown_grace_s`, stragglers are killed.
If any child dies, everything is stopped: an orchestrator (systemd, Kubernetes) restarts us.
With WORKER_METRICS_PORT=P set, worker i serves /metrics and /healthz on P + i (one scrape
target per process; see worker/observe.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from orchestrator.observe.logs import configure_logging
from orchestrator.redis.server import EmbeddedRedis
from orchestrator.settings import Settings, load_settings

__all__ = ["cli_main", "spawn_children", "stop_children", "worker_env"]


def spawn_children(
    settings: Settings, workers: int, handler: str | None, port: int | None, redis_url: str
) -> list[subprocess.Popen[bytes]]:
    """Start the ingress and the workers with this interpreter."""
    env = {**os.environ, "REDIS_URL": redis_url}  # children read their Settings themselves
    base = [sys.executable, "-m", "orchestrator.cli"]
    ingress = [*base, "ingress", *(["--port", str(port)] if port else [])]
    worker = [*base, "worker", *(["--handler", handler] if handler else [])]
    return [subprocess.Popen(ingress, env=env)] + [
        subprocess.Popen(worker, env=worker_env(env, settings.worker_metrics_port, index))
        for index in range(workers)
    ]


def worker_env(env: dict[str, str], base_port: int, index: int) -> dict[str, str]:
    """The environment of worker `index`: its own metrics port (base + index) when enabled."""
    if not base_port:
        return env
    return {**env, "WORKER_METRICS_PORT": str(base_port + index)}


def stop_children(children: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM all, wait up to the grace period, then SIGKILL what is left."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.0, deadline - time.monotonic()))
        if child.poll() is None:
            child.kill()
            child.wait()


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator serve`."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    stop = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with contextlib.ExitStack() as stack:
        url = settings.redis_url or stack.enter_context(EmbeddedRedis()).url
        children = spawn_children(settings, args.workers, args.handler, args.port, url)
        try:
            while not stop and all(c.poll() is None for c in children):
                time.sleep(0.2)
        finally:
            stop_children(children, settings.shutdown_grace_s + 5)
    return 0 if stop else 1

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
import socket
import subprocess
import sys
import time
from types import FrameType

from orchestrator.cli.startup import redis_for, require_a_portal, wait_for_redis
from orchestrator.observe.logs import configure_logging
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
        url = redis_for(settings, args, stack)
        # checked once here, not in every child: one clear line when something is missing
        wait_for_redis(url, settings.redis_start_wait_s)
        require_a_portal(settings.model_copy(update={"redis_url": url}))
        _port_is_free(settings.ingress_host, args.port or settings.ingress_port)
        children = spawn_children(settings, args.workers, args.handler, args.port, url)
        dead = None
        try:
            while not stop and dead is None:
                time.sleep(0.2)
                dead = next((c for c in children if c.poll() is not None), None)
        finally:
            stop_children(children, settings.shutdown_grace_s + 5)
    if dead is None:
        return 0
    # a child ended on its own: it said why on stderr; its code is ours (the same kind)
    print(
        f"orchestrator serve: {_role(children, dead)} exited with {dead.returncode}; "
        "stopped the others",
        file=sys.stderr,
    )
    return dead.returncode if dead.returncode > 0 else 1


def _port_is_free(host: str, port: int) -> None:
    """Bind the ingress's port once before any child starts: a port someone holds is then one
    line from us (cli/failures.py), not the ingress child's death and the workers stopped."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds it
        try:
            probe.bind((host, port))
        except OSError as exc:
            exc.strerror = f"{host}:{port}: {exc.strerror}"
            raise


def _role(children: list[subprocess.Popen[bytes]], child: subprocess.Popen[bytes]) -> str:
    index = children.index(child)
    return "the ingress" if index == 0 else f"worker {index - 1}"

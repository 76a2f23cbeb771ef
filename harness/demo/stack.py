"""The whole product on one machine: Redis (embedded unless configured), the ingress, N workers
with the production handler, and the emulated portal whose events go to our ingress.

    async with run_stack(settings, StackOptions(workers=2)) as stack:
        await stack.control.client_message(1, "Hi")

Workers and the ingress run as processes (`orchestrator ingress|worker`, as `serve` runs them)
or, for tests, inside this process. The portal registers itself the production way: its
ONAPPINSTALL reaches the ingress, which verifies it at the emulator's OAuth server and stores the
portal (registry) and its tokens (credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from harness.demo.control import EmulatorControl, PortalView
from harness.demo.portal_setup import prepare_portal
from orchestrator.bitrix.auth import AuthStore
from orchestrator.cli.serve import stop_children
from orchestrator.errors import ConfigurationError
from orchestrator.handler.handler import build_handler
from orchestrator.ingress.app import start_ingress
from orchestrator.redis.client import aw
from orchestrator.redis.server import EmbeddedRedis
from orchestrator.settings import Settings
from worker.main import build_worker
from worker.settings import HandlerFactory

__all__ = ["HANDLER", "Stack", "StackOptions", "run_stack", "settings_env"]

HANDLER = "orchestrator.handler:build_handler"
_REGISTER_WITHIN_S = 30.0


@dataclass
class StackOptions:
    """How to run the stack."""

    workers: int = 2
    in_process: bool = False  # True: ingress and workers in this process (tests)
    log_dir: Path | None = None  # child process logs (default: a temporary directory)
    emulator: dict[str, Any] = field(default_factory=dict)  # EmulatorConfig overrides
    handler_factory: HandlerFactory = build_handler  # in-process workers only
    redis_persistent: bool = False  # embedded Redis with AOF (everysec): restartable without loss
    # ingress processes (each its own port and spool directory, as replicas would have)
    ingresses: int = 1
    # maps the ingresses' event URLs to the one the portal posts to (e.g. a recording proxy that
    # balances over them); without it the portal posts to the first ingress
    event_tap: Callable[[list[str]], str] | None = None
    # "v2": the portal starts without a bot and ours registers through imbot.v2 in fetch mode,
    # with the Open Lines events bound offline (what `register-bot` does on a new deployment);
    # "v1": the portal already has the app's v1 bot, its events pushed to the ingress
    bot: str = "v1"


@dataclass
class Stack:
    """A running stack: what the demo and the end-to-end tests drive and inspect."""

    settings: Settings
    emu: RunningEmulator
    control: EmulatorControl
    view: PortalView
    ingress_urls: list[str]
    member_id: str
    redis: aioredis.Redis
    http: aiohttp.ClientSession
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    redis_server: EmbeddedRedis | None = None  # the embedded server, when the stack started one
    workers_started: int = 0  # every worker ever started: the next one's index

    @property
    def worker_metrics_urls(self) -> list[str]:
        """Every started worker's /metrics, with WORKER_METRICS_PORT set (worker i on that port
        + i, as `serve` runs them; none without it): what a Prometheus would scrape beside the
        ingresses' /metrics (a killed worker's stays listed: a scrape of it shows it down)."""
        base = self.settings.worker_metrics_port
        if not base:
            return []
        # a worker bound to every interface (the image's 0.0.0.0) answers on loopback too
        host = self.settings.worker_metrics_host.replace("0.0.0.0", "127.0.0.1")
        return [f"http://{host}:{base + i}/metrics" for i in range(self.workers_started)]

    @property
    def ingress_url(self) -> str:
        """The first ingress (the only one unless StackOptions.ingresses says otherwise)."""
        return self.ingress_urls[0]

    @property
    def member_ids(self) -> list[str]:
        """Every emulated portal's member_id (the first is `member_id`)."""
        return [runtime.identity.member_id for runtime in self.emu.portals]

    @property
    def worker_processes(self) -> list[subprocess.Popen[bytes]]:
        """The worker processes running now (not the ingress)."""
        return [p for p in self.processes if "worker" in list(p.args)]  # type: ignore[arg-type]

    def spawn_worker(self) -> subprocess.Popen[bytes]:
        """Start one more worker process (stopped with the stack)."""
        proc = _spawn(
            _worker_settings(self.settings, self.workers_started),
            self.log_dir,
            f"worker-{len(self.processes)}",
            ["worker", "--handler", HANDLER],
        )
        self.workers_started += 1
        self.processes.append(proc)
        return proc

    async def kill_ingress(self, index: int = 0) -> float:
        """SIGKILL ingress `index` (no goodbye: a crash) and start it again on the same port,
        with the same spool directory; returns the seconds it did not answer."""
        started = asyncio.get_running_loop().time()
        args = self.stop_ingress(index)
        await self.start_ingress(index, args)
        return asyncio.get_running_loop().time() - started

    def stop_ingress(self, index: int = 0) -> list[str]:
        """SIGKILL ingress `index` and reap it; returns what starts it again (`start_ingress`)."""
        port = self.ingress_urls[index].rsplit(":", 1)[1]
        [proc] = [p for p in self.processes if list(p.args)[-1] == port]  # type: ignore[arg-type]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        self.processes.remove(proc)
        return [str(a) for a in list(proc.args)[3:]]  # type: ignore[arg-type]

    async def start_ingress(self, index: int, args: list[str]) -> None:
        """Start ingress `index` again on its port and spool directory; wait until it answers."""
        self.processes.append(
            _spawn(_ingress_settings(self.settings, index), self.log_dir, f"ingress-{index}", args)
        )
        await _wait_http(self.http, f"{self.ingress_urls[index]}/healthz")

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL one worker process (no drain, no goodbye) and reap it."""
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc in self.processes:
            self.processes.remove(proc)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read the same Settings."""
    env = {**os.environ}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is not None:
            env[name.upper()] = str(value)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn(
    settings: Settings,
    log_dir: Path,
    name: str,
    args: list[str],
) -> subprocess.Popen[bytes]:
    with open(log_dir / f"{name}.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *args],
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def _wait_http(http: aiohttp.ClientSession, url: str, within_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as response:
                if response.status == 200:
                    return
        if loop.time() > deadline:
            raise ConfigurationError(f"{url} did not come up within {within_s} s")
        await asyncio.sleep(0.1)


def _worker_settings(settings: Settings, index: int) -> Settings:
    """Worker `index`'s settings: its own metrics port (base + index) when metrics are on, as
    `orchestrator serve` hands them out, so several workers on one host do not collide."""
    base = settings.worker_metrics_port
    if not base:
        return settings
    return settings.model_copy(update={"worker_metrics_port": base + index})


def _ingress_settings(settings: Settings, index: int) -> Settings:
    """Ingress `index`'s settings: its own spool directory beside the others'."""
    if index == 0:
        return settings
    return settings.model_copy(update={"spool_dir": f"{settings.spool_dir}/ingress-{index}"})


async def _ingresses(
    stack: AsyncExitStack,
    settings: Settings,
    opts: StackOptions,
    log_dir: Path,
    procs: list[subprocess.Popen[bytes]],
) -> list[str]:
    if opts.in_process:
        server = await start_ingress(settings, "127.0.0.1", 0)
        stack.push_async_callback(server.stop)
        return [server.url]
    urls = []
    for index in range(opts.ingresses):
        port = _free_port()
        name = "ingress" if index == 0 else f"ingress-{index}"
        args = ["ingress", "--host", "127.0.0.1", "--port", str(port)]
        procs.append(_spawn(_ingress_settings(settings, index), log_dir, name, args))
        urls.append(f"http://127.0.0.1:{port}")
    return urls


async def _workers(
    stack: AsyncExitStack,
    settings: Settings,
    opts: StackOptions,
    log_dir: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    for index in range(opts.workers):
        own = _worker_settings(settings, index)
        if not opts.in_process:
            procs.append(_spawn(own, log_dir, f"worker-{index}", ["worker", "--handler", HANDLER]))
            continue
        worker = build_worker(own, opts.handler_factory, handle_signals=False)
        task = asyncio.create_task(worker.async_run())

        async def stop(worker: Any = worker, task: asyncio.Task[None] = task) -> None:
            worker.handle_sig(signal.SIGTERM)
            await asyncio.wait([task], timeout=settings.shutdown_grace_s + 5)
            # arq's close() gathers its job tasks before on_shutdown: one cancelled at shutdown
            # would re-raise there and skip on_shutdown, leaking the handler's client and pool.
            # Settle them first, so close() runs whole.
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            worker.tasks.clear()
            await worker.close()

        stack.push_async_callback(stop)


async def _await_registration(stack_: Stack) -> None:
    """The install event reached the ingress; wait until it stored the verified tokens."""
    auth = AuthStore(stack_.redis, prefix=stack_.settings.key_prefix)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _REGISTER_WITHIN_S
    resent = False
    waiting = list(stack_.member_ids)
    while waiting:
        # the registry (ingress) and the REST client's credentials share the portal's hash:
        # the portal is usable once the client's fields are in it
        waiting = [m for m in waiting if not await aw(stack_.redis.hget(auth.key(m), "kind"))]
        if not waiting:
            return
        if loop.time() > deadline:
            raise ConfigurationError("the portal's ONAPPINSTALL never registered it")
        if not resent and loop.time() > deadline - _REGISTER_WITHIN_S / 2:
            for member_id in waiting:  # the first delivery may have been refused
                await EmulatorControl(stack_.http, stack_.emu.url, member_id).install()
            resent = True
        await asyncio.sleep(0.1)


async def _register_v2_bots(stack_: Stack, ingress_event_url: str) -> None:
    """`orchestrator register-bot --api v2` on every portal, as an operator runs it after the
    install: the fetch-mode bot, the offline bindings, both lines welcomed by it."""
    from orchestrator.bitrix.bot_store import BotStore
    from orchestrator.bitrix.client import BitrixClient
    from orchestrator.cli import build_parser
    from orchestrator.cli.register_bot_v2 import register_v2
    from orchestrator.ingress.portals import Portals
    from orchestrator.pipeline.keys import Keys

    lines = [str(n) for line in stack_.view.portal.lines for n in ("--line", line)]
    async with BitrixClient.from_settings(stack_.settings) as client:
        store = BotStore(stack_.redis, prefix=stack_.settings.key_prefix)
        portals = Portals(stack_.redis, Keys(stack_.settings.key_prefix))
        for member_id in stack_.member_ids:
            args = build_parser().parse_args(
                ["register-bot", "--api", "v2", "--ingress-url", ingress_event_url, *lines]
            )
            await register_v2(client.api(member_id), store, args, oauth=True, portals=portals)


@asynccontextmanager
async def run_stack(settings: Settings, opts: StackOptions | None = None) -> AsyncIterator[Stack]:
    """Start everything, yield the running stack, stop everything (children killed if stuck)."""
    opts = opts or StackOptions()
    procs: list[subprocess.Popen[bytes]] = []
    async with AsyncExitStack() as stack:
        embedded: EmbeddedRedis | None = None
        if not settings.redis_url:
            embedded = stack.enter_context(EmbeddedRedis(persistent=opts.redis_persistent))
            settings = settings.model_copy(update={"redis_url": embedded.url})
        settings = settings.model_copy(update={"worker_handler": HANDLER})
        log_dir = opts.log_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        log_dir.mkdir(parents=True, exist_ok=True)  # a --log-dir that does not exist yet
        stack.callback(stop_children, procs, settings.shutdown_grace_s + 5)
        redis = aioredis.Redis.from_url(str(settings.redis_url))
        stack.push_async_callback(redis.aclose)
        http = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        )
        # The ingress verifies the portal's install at the emulator's OAuth server, so it has to
        # know our app and that server before the emulator starts (and posts ONAPPINSTALL).
        app = {"client_id": f"local.{secrets.token_hex(7)}", "client_secret": secrets.token_hex(16)}
        emu_port = int(opts.emulator.get("port") or _free_port())
        settings = settings.model_copy(
            update={
                "b24_client_id": app["client_id"],
                "b24_client_secret": app["client_secret"],
                "b24_oauth_url": f"http://127.0.0.1:{emu_port}/oauth/token/",
            }
        )
        ingresses = await _ingresses(stack, settings, opts, log_dir, procs)
        for url in ingresses:
            await _wait_http(http, f"{url}/healthz")
        event_urls = [f"{url}/b24/events" for url in ingresses]
        emu_config = EmulatorConfig(
            event_url=opts.event_tap(event_urls) if opts.event_tap else event_urls[0],
            # one app on every portal, as a market app is: one client_id refreshes all tokens
            **{
                "shared_app": True,
                "v1_bot": opts.bot == "v1",
                **app,
                **opts.emulator,
                "port": emu_port,
            },
        )
        emu = await stack.enter_async_context(run_emulator(emu_config))
        runtime = emu.portals[0]
        for each in emu.portals:
            prepare_portal(each.portal)
        creds = emu.credentials
        await _workers(stack, settings, opts, log_dir, procs)
        running = Stack(
            settings,
            emu,
            EmulatorControl(http, emu.url),
            PortalView(runtime.portal),
            ingresses,
            creds["member_id"],
            redis,
            http,
            log_dir,
            procs,
            embedded,
            workers_started=opts.workers,
        )
        await _await_registration(running)
        if opts.bot == "v2":
            await _register_v2_bots(running, event_urls[0])
        yield running

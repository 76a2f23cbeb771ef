"""The trouble a chaos run makes, and the watch on how the product recovers from it.

* `WorkerKiller`: every few seconds SIGKILLs a random worker and starts a new one; before the
  kill it notes the dialogs the worker held (their leases name the worker's pid) and each one's
  state version.
* `RecoveryWatch`: a killed worker's dialog has recovered once its committed state moved past
  the version it had at the kill, or it has nothing left to do (inbox and outbox empty). A kill
  has recovered when all of its dialogs have: that time after the kill is the recovery time.
* `Supervisor`: starts a worker again when one exited on its own (as Kubernetes would), counted.
* `restart_redis`, `expire_tokens`: the one Redis restart, and forced token expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
from dataclasses import dataclass, field
from typing import cast

import structlog
from redis.exceptions import RedisError

from orchestrator.bench.play import PortalPlay
from orchestrator.demo.stack import Stack
from orchestrator.keys import DialogKeys, Keys
from orchestrator.scripts import aw

__all__ = ["Kill", "RecoveryWatch", "Supervisor", "WorkerKiller", "expire_tokens", "restart_redis"]

log = structlog.get_logger(__name__)

# Our own connection errors while Redis is down (the chaos process reads Redis too).
OUTAGE = (RedisError, ConnectionError, OSError)


@dataclass
class Kill:
    """One SIGKILL: when, which pid, and the dialogs it held (keys -> state version then)."""

    at: float
    pid: int
    held: dict[DialogKeys, int]
    pending: set[DialogKeys] = field(default_factory=set)
    recovered_at: float | None = None

    @property
    def recovery_s(self) -> float | None:
        """Seconds from the kill until every held dialog moved on (None: not yet)."""
        return None if self.recovered_at is None else self.recovered_at - self.at


def _dialog_of(stack: Stack, lease_key: str) -> DialogKeys | None:
    # {prefix}:{<member>}:dlg:<chat>:lease
    head = f"{stack.settings.key_prefix}:{{"
    if not lease_key.startswith(head) or "}:dlg:" not in lease_key:
        return None
    member_id, _, rest = lease_key[len(head) :].partition("}:dlg:")
    return Keys(stack.settings.key_prefix).dialog(member_id, rest.removesuffix(":lease"))


async def _held_by(stack: Stack, pid: int) -> dict[DialogKeys, int]:
    """The dialogs whose live lease names `pid` (token `<n>:<host>:<pid>`), with their versions."""
    held: dict[DialogKeys, int] = {}
    pattern = f"{stack.settings.key_prefix}:*:lease"
    async for raw in stack.redis.scan_iter(match=pattern, count=1000):
        key = raw.decode()
        token = cast(bytes | None, await aw(stack.redis.get(key)))
        if token is None or not token.decode().endswith(f":{pid}"):
            continue
        d = _dialog_of(stack, key)
        if d is not None:
            held[d] = int(await aw(stack.redis.hget(d.state, "version")) or 0)
    return held


@dataclass
class WorkerKiller:
    """SIGKILL a random worker every `every_s`, then start a replacement at once."""

    stack: Stack
    every_s: float
    rng: random.Random
    kills: list[Kill] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.every_s)
                return
            except TimeoutError:
                pass
            workers = self.stack.worker_processes
            if not workers:
                continue
            victim = self.rng.choice(workers)
            try:
                held = await _held_by(self.stack, victim.pid)
            except OUTAGE:
                continue  # Redis is down: the leases cannot be read, skip this kill
            kill = Kill(time.monotonic(), victim.pid, held, set(held))
            self.stack.kill_worker(victim)
            self.stack.spawn_worker()
            self.kills.append(kill)
            log.info("chaos_worker_killed", pid=victim.pid, dialogs_held=len(held))


@dataclass
class RecoveryWatch:
    """Marks each kill recovered once all the dialogs it held moved on."""

    stack: Stack
    killer: WorkerKiller

    async def _moved_on(self, d: DialogKeys, version: int) -> bool:
        async with self.stack.redis.pipeline(transaction=False) as pipe:
            pipe.hget(d.state, "version")
            pipe.llen(d.inbox)
            pipe.llen(d.outbox)
            now_version, inbox, outbox = await pipe.execute()
        return int(now_version or 0) > version or (inbox == 0 and outbox == 0)

    async def check(self) -> None:
        """One pass over the kills not recovered yet."""
        for kill in self.killer.kills:
            if kill.recovered_at is not None:
                continue
            for d in list(kill.pending):
                if await self._moved_on(d, kill.held[d]):
                    kill.pending.discard(d)
            if not kill.pending:
                kill.recovered_at = time.monotonic()

    async def run(self, stop: asyncio.Event, every_s: float = 0.1) -> None:
        """Until `stop` is set (one last pass after)."""
        while not stop.is_set():
            with contextlib.suppress(*OUTAGE):  # Redis restarting: look again next tick
                await self.check()
            await asyncio.sleep(every_s)


@dataclass
class Supervisor:
    """Keeps the worker count: a worker that exited on its own is started again."""

    stack: Stack
    restarts: int = 0

    async def run(self, stop: asyncio.Event, every_s: float = 0.5) -> None:
        """Until `stop` is set."""
        while not stop.is_set():
            for proc in self.stack.worker_processes:
                if proc.poll() is not None:
                    log.warning("chaos_worker_exited", pid=proc.pid, code=proc.returncode)
                    self._replace(proc)
            await asyncio.sleep(every_s)

    def _replace(self, proc: subprocess.Popen[bytes]) -> None:
        self.stack.kill_worker(proc)  # reaps it and drops it from the stack
        self.stack.spawn_worker()
        self.restarts += 1


async def restart_redis(stack: Stack, down_s: float) -> float:
    """Stop Redis (SIGTERM: AOF flushed), keep it down `down_s`, start it on the same port and
    data; returns the seconds it was unreachable."""
    server = stack.redis_server
    if server is None:
        raise RuntimeError("chaos needs the embedded Redis to restart it")
    started = time.monotonic()
    await asyncio.to_thread(server.stop)
    log.warning("chaos_redis_stopped")
    await asyncio.sleep(down_s)
    await asyncio.to_thread(server.start)
    log.warning("chaos_redis_started")
    return time.monotonic() - started


async def expire_tokens(plays: list[PortalPlay], stop: asyncio.Event, every_s: float) -> int:
    """Expire every portal's access tokens every `every_s` until `stop`; returns how often."""
    rounds = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            break
        except TimeoutError:
            pass
        for play in plays:
            await play.control.expire_tokens()
        rounds += 1
    return rounds

"""The trouble a chaos run makes, and the watch on how the product recovers from it.

* `WorkerKiller`: every few seconds SIGKILLs a random worker and starts a new one. Right after
  the kill it reads which dialogs the dead worker held: a lease token is `<fence>:<host>:<pid>`
  (orchestrator/pipeline/lua/lease.lua, the owner the worker passes to `Store.take_lease`), and
  a dead process can neither renew nor release it, so the leases naming its pid are exactly the
  ones it owned at the kill instant: each lapses `lease_ms` after its last renewal (renewed every
  third of it: 2 s or more after the kill with the run's 3 s lease), and the read is done before the
  replacement worker starts, in milliseconds (`read_s`, reported as its max). For each such
  dialog it notes the fence number and the state version.
* `RecoveryWatch`: per held dialog that still had work (events in its inbox or effects in its
  outbox), two times since the kill:
  `resume`   another drainer took the dialog's lease: its fence counter (INCR'd on every new
             lease, never otherwise) moved past the dead worker's number. This is the pipeline's
             own recovery: the lease lapses, the sweeper re-schedules, a worker picks it up.
  `progress` its next committed change: the state version moved past the one at the kill, or
             its work is all done (inbox and outbox empty). This includes whatever the resumed
             drainer waits for first, the portal's REST budget above all.
  Dialogs the dead worker leased with nothing left to do (between its last effect and the exit
  handshake) have nothing to resume; they are counted, not timed. Both times are polled (every
  0.1 s) and stamped after the read, so each is an upper bound within one poll.
* `WorkerKeeper`: starts a worker again when one exited on its own (as Kubernetes would), counted.
* `restart_redis`, `expire_tokens`: the one Redis restart, and forced token expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, cast

import structlog
from redis.exceptions import RedisError

from harness.bench.play import PortalPlay
from harness.demo.report import percentile
from harness.demo.stack import Stack
from orchestrator.pipeline.keys import DialogKeys, Keys
from orchestrator.redis.client import aw

__all__ = [
    "HeldDialog",
    "Kill",
    "RecoveryWatch",
    "WorkerKeeper",
    "WorkerKiller",
    "expire_tokens",
    "held_by",
    "recovery_report",
    "restart_redis",
]

log = structlog.get_logger(__name__)

# Our own connection errors while Redis is down (the chaos process reads Redis too).
OUTAGE = (RedisError, ConnectionError, OSError)


@dataclass
class HeldDialog:
    """A dialog a killed worker held with work left: where it stood at the kill, and when it
    resumed (a new lease) and progressed (a new commit, or its work done); monotonic seconds."""

    fence: int
    version: int
    resumed_at: float | None = None
    progressed_at: float | None = None


@dataclass
class Kill:
    """One SIGKILL: when, which pid, and what the pid's leases covered at that instant."""

    at: float
    pid: int
    held: dict[DialogKeys, HeldDialog] = field(default_factory=dict)
    idle: int = 0  # leased with nothing left to do: nothing to resume
    observed: bool = True  # False: Redis went away before the leases could be read
    read_s: float = 0.0  # from the kill to the end of the lease read (must stay < the lease)

    def resume_s(self) -> list[float]:
        """Seconds from the kill to each held dialog's new lease (resumed ones only)."""
        return [h.resumed_at - self.at for h in self.held.values() if h.resumed_at is not None]

    def progress_s(self) -> list[float]:
        """Seconds from the kill to each held dialog's next commit (progressed ones only)."""
        return [
            h.progressed_at - self.at for h in self.held.values() if h.progressed_at is not None
        ]

    @property
    def resumed(self) -> bool:
        """Every held dialog has a new drainer."""
        return all(h.resumed_at is not None for h in self.held.values())


def _dialog_of(stack: Stack, lease_key: str) -> DialogKeys | None:
    # {prefix}:{<member>}:dlg:<chat>:lease
    head = f"{stack.settings.key_prefix}:{{"
    if not lease_key.startswith(head) or "}:dlg:" not in lease_key:
        return None
    member_id, _, rest = lease_key[len(head) :].partition("}:dlg:")
    return Keys(stack.settings.key_prefix).dialog(member_id, rest.removesuffix(":lease"))


async def _leases_of(stack: Stack, pid: int) -> dict[DialogKeys, int]:
    """The dialogs whose live lease names `pid` (token `<fence>:<host>:<pid>`), with the fence."""
    found: dict[DialogKeys, int] = {}
    pattern = f"{stack.settings.key_prefix}:*:lease"
    async for raw in stack.redis.scan_iter(match=pattern, count=1000):
        key = raw.decode()
        token = cast(bytes | None, await aw(stack.redis.get(key)))
        if token is None:
            continue
        fence, _, owner = token.decode().partition(":")
        d = _dialog_of(stack, key)
        if d is not None and owner.rpartition(":")[2] == str(pid):
            found[d] = int(fence)
    return found


async def held_by(stack: Stack, pid: int, at: float) -> Kill:
    """What a dead `pid` held: its leased dialogs with work left, and how many had none."""
    kill = Kill(at, pid)
    for d, fence in (await _leases_of(stack, pid)).items():
        async with stack.redis.pipeline(transaction=False) as pipe:
            pipe.hget(d.state, "version")
            pipe.llen(d.inbox)
            pipe.llen(d.outbox)
            version, inbox, outbox = await pipe.execute()
        if inbox == 0 and outbox == 0:
            kill.idle += 1
        else:
            kill.held[d] = HeldDialog(fence, int(version or 0))
    return kill


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
            try:
                await aw(self.stack.redis.ping())
            except OUTAGE:
                continue  # Redis is down: the leases could not be read, skip this kill
            victim = self.rng.choice(workers)
            at = time.monotonic()
            self.stack.kill_worker(victim)
            try:
                kill = await held_by(self.stack, victim.pid, at)
            except OUTAGE:
                kill = Kill(at, victim.pid, observed=False)
            kill.read_s = time.monotonic() - at
            self.stack.spawn_worker()
            self.kills.append(kill)
            log.info("chaos_worker_killed", pid=victim.pid, dialogs_held=len(kill.held))


@dataclass
class RecoveryWatch:
    """Stamps each held dialog's resume and progress times as they happen."""

    stack: Stack
    killer: WorkerKiller

    async def check(self) -> None:
        """One pass over the held dialogs not resumed or not progressed yet."""
        watched = [
            (d, held)
            for kill in self.killer.kills
            for d, held in kill.held.items()
            if held.resumed_at is None or held.progressed_at is None
        ]
        if not watched:
            return
        async with self.stack.redis.pipeline(transaction=False) as pipe:
            for d, _ in watched:
                pipe.get(d.fence)
                pipe.hget(d.state, "version")
                pipe.llen(d.inbox)
                pipe.llen(d.outbox)
            replies = await pipe.execute()
        now = time.monotonic()  # after the read: an upper bound on when it happened
        for n, (_, held) in enumerate(watched):
            fence, version, inbox, outbox = replies[4 * n : 4 * n + 4]
            committed = int(version or 0) > held.version or (inbox == 0 and outbox == 0)
            if held.resumed_at is None and (int(fence or 0) > held.fence or committed):
                # a commit is fenced: it proves a new lease even if this poll missed the take
                held.resumed_at = now
            if held.progressed_at is None and committed:
                held.progressed_at = now

    async def run(self, stop: asyncio.Event, every_s: float = 0.1) -> None:
        """Until `stop` is set (one last pass after)."""
        while not stop.is_set():
            with contextlib.suppress(*OUTAGE):  # Redis restarting: look again next tick
                await self.check()
            await asyncio.sleep(every_s)


RECOVERY = (
    "per dialog a SIGKILLed worker held with work left (its lease named the worker's pid at the "
    "kill): recovery_* = resume, kill -> another drainer took its lease (fence counter moved); "
    "progress_* = kill -> its next commit (state version moved, or its work all done); polled "
    "every 0.1 s"
)


def recovery_report(kills: list[Kill]) -> dict[str, Any]:
    """The kills and the recovery times, as chaos.json carries them (see harness.chaos.run)."""
    resumed = [s for k in kills for s in k.resume_s()]
    progressed = [s for k in kills for s in k.progress_s()]
    held = sum(len(k.held) for k in kills)
    holding = [k for k in kills if k.held]
    report: dict[str, Any] = {
        "kills": len(kills),
        "kills_holding_dialogs": len(holding),
        "kills_unobserved": sum(1 for k in kills if not k.observed),
        "lease_read_max_s": _round(max((k.read_s for k in kills), default=None)),
        "dialogs_held_at_kills": held,
        "held_idle_at_kills": sum(k.idle for k in kills),
        "recovery": RECOVERY,
    }
    for name, samples in (("recovery", resumed), ("progress", progressed)):
        report[f"{name}_p50_s"] = _round(percentile(samples, 50))
        report[f"{name}_p99_s"] = _round(percentile(samples, 99))
        report[f"{name}_max_s"] = _round(max(samples, default=None))
    report["unresumed"] = held - len(resumed)
    report["unprogressed"] = held - len(progressed)
    report["unrecovered_kills"] = sum(1 for k in holding if not k.resumed)
    return report


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass
class WorkerKeeper:
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
    """SIGKILL Redis (a crash, not a stop: AOF everysec, no flush at exit), keep it down
    `down_s`, start it on the same port and data; returns the seconds it was unreachable."""
    server = stack.redis_server
    if server is None:
        raise RuntimeError("chaos needs the embedded Redis to restart it")
    started = time.monotonic()
    await asyncio.to_thread(server.kill)
    log.warning("chaos_redis_killed")
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

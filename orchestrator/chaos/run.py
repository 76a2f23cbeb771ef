"""`orchestrator chaos`: dialogs through the whole product while it is being broken, then proof
that nothing acknowledged was lost, no lead doubled and no dialog got stuck.

During the run a random worker is SIGKILLed every `--kill-every` s and started again, Redis (AOF,
fsync everysec) is stopped once for `--redis-down` s and started on the same port (the ingress
spools meanwhile and replays after), the portals fail (10% 500s, 1% timeouts, 2% HTML error
pages) and their OAuth access tokens are expired every `--expire-every` s. The dialogs are spread
over `--portals` portals only to have more REST budget: each portal drains 2 requests/s.

When the clients are done the trouble stops, the faults are cleared and the run drains (bounded
by `--drain`). Exit code 0 only when lost = 0, duplicate leads = 0 and stuck = 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.bench.play import (
    PortalPlay,
    dialog_states,
    duplicate_bot_messages,
    launch,
    portal_plays,
    start_people,
    stop_people,
    verdicts,
    wait_terminal,
    walked_away,
)
from orchestrator.chaos.agents import (
    RecoveryWatch,
    Supervisor,
    WorkerKiller,
    expire_tokens,
    restart_redis,
)
from orchestrator.chaos.ledger import EventLedger, account
from orchestrator.demo.portal_setup import write_demo_scenario
from orchestrator.demo.report import percentile
from orchestrator.demo.stack import Stack, StackOptions, run_stack
from orchestrator.dialog_state import TERMINAL
from orchestrator.logs import configure_logging
from orchestrator.scripts import aw
from orchestrator.settings import Settings, load_settings
from orchestrator.store import Store

__all__ = ["FAULTS", "ChaosOptions", "cli_main", "render", "run_chaos"]

FAULTS: dict[str, Any] = {
    "error_rate": {"*": 0.10},
    "timeout_rate": {"*": 0.01},
    "html_rate": {"*": 0.02},
}
FAULT_TIMEOUT_S = 6.0  # how long the portal holds a "timeout" request
REQUEST_TIMEOUT_S = 5.0  # our client hangs up first, as on a real stalled request
CHAOS_MAX_ATTEMPTS = 10
_TAIL_S = 15.0  # kept from --timeout for the accounting and the stop
ACCOUNTING = (
    "each event the ingress acknowledged (spooled ones included), identified by portal, dialog "
    "and dedup key, is looked up in the dialog's history (handled: committed or dead-lettered), "
    "its inbox (queued) and the spool files (still spooled); lost = acknowledged - handled - "
    "queued - still spooled"
)


@dataclass
class ChaosOptions:
    """What to break, how often, and the bounds."""

    dialogs: int = 2000
    workers: int = 3
    portals: int = 8
    kill_every_s: float = 5.0
    redis_down_s: float = 3.0
    expire_every_s: float = 10.0
    faults: bool = True
    arrivals_per_s: float = 5.0
    drain_s: float = 300.0
    timeout_s: float = 1800.0
    seed: int = 7
    output: str = "chaos.json"
    log_dir: str | None = None  # keep the child processes' logs here (default: dropped)


def _chaos_settings(settings: Settings, tmp: str) -> Settings:
    prefix = f"chaos{uuid.uuid4().hex[:6]}"
    return settings.model_copy(
        update={
            "redis_url": None,  # always the embedded server: the run restarts it
            "key_prefix": prefix,
            "queue_name": f"{prefix}:queue",
            "scenario_path": write_demo_scenario(Path(tmp) / "scenario.yaml"),
            "spool_dir": str(Path(tmp) / "spool"),
            "log_level": "WARNING",
            "lease_ms": 3000,  # a killed worker's dialogs are free again after 3 s
            "sweep_interval_s": 0.5,
            "shutdown_grace_s": 2.0,
            "b24_request_timeout_s": REQUEST_TIMEOUT_S,
            # one call in ten fails and workers die every few seconds: with the default 5 tries
            # an effect (a lead) is dead-lettered now and then (about 1 dialog in 100 at
            # --kill-every 2), which parks its dialog in the DLQ instead of finishing it
            "max_attempts": CHAOS_MAX_ATTEMPTS,
        }
    )


async def run_chaos(settings: Settings, opts: ChaosOptions, console: Console) -> dict[str, Any]:
    """A fresh stack, the chaos run, the accounting; returns the report (also written)."""
    deadline = time.monotonic() + opts.timeout_s
    ledger = EventLedger()
    await ledger.start()
    try:
        with tempfile.TemporaryDirectory(prefix="ol-chaos-") as tmp:
            stack_opts = StackOptions(
                workers=opts.workers,
                log_dir=Path(opts.log_dir or tmp),
                emulator={"portals": opts.portals, "fault_timeout_s": FAULT_TIMEOUT_S},
                redis_persistent=True,
                event_tap=ledger.tap,
            )
            console.print(
                f"chaos: {opts.dialogs} dialogs on {opts.portals} portals, {opts.workers} workers"
            )
            async with run_stack(_chaos_settings(settings, tmp), stack_opts) as stack:
                report = await _run(stack, opts, ledger, console, deadline)
    finally:
        await ledger.close()
    text = json.dumps(report, indent=2) + "\n"
    await asyncio.to_thread(Path(opts.output).write_text, text, "utf-8")
    return report


@dataclass
class _Trouble:
    killer: WorkerKiller
    watch: RecoveryWatch
    supervisor: Supervisor
    tasks: list[asyncio.Task[Any]]
    redis_down_s: float = 0.0


async def _make_trouble(
    stack: Stack, plays: list[PortalPlay], opts: ChaosOptions, stop: asyncio.Event
) -> _Trouble:
    import random

    rng = random.Random(opts.seed)
    if opts.faults:
        for n, play in enumerate(plays):
            await play.control.faults({**FAULTS, "seed": opts.seed + n})
    killer = WorkerKiller(stack, opts.kill_every_s, rng)
    trouble = _Trouble(killer, RecoveryWatch(stack, killer), Supervisor(stack), [])
    # Redis goes down once, a third of the way through the arrivals
    redis_at = opts.dialogs / opts.arrivals_per_s / 3

    async def redis_once() -> None:
        await asyncio.sleep(redis_at)
        trouble.redis_down_s = await restart_redis(stack, opts.redis_down_s)

    trouble.tasks = [
        asyncio.create_task(killer.run(stop)),
        asyncio.create_task(expire_tokens(plays, stop, opts.expire_every_s)),
        asyncio.create_task(redis_once()),
    ]
    return trouble


async def _chaos_phase(plays: list[PortalPlay], opts: ChaosOptions, bound_s: float) -> bool:
    """Launch every client and wait for them all (bounded); False when the bound was hit."""
    try:
        async with asyncio.timeout(bound_s):
            await launch(plays, opts.arrivals_per_s)
            await asyncio.gather(*(t for p in plays for t in p.tasks), return_exceptions=True)
    except TimeoutError:
        return False
    return True


async def _run(
    stack: Stack, opts: ChaosOptions, ledger: EventLedger, console: Console, deadline: float
) -> dict[str, Any]:
    counts = [
        opts.dialogs // opts.portals + (n < opts.dialogs % opts.portals)
        for n in range(opts.portals)
    ]
    plays = portal_plays(stack, counts)
    people, chaos, watching = asyncio.Event(), asyncio.Event(), asyncio.Event()
    start_people(plays, people)
    trouble = await _make_trouble(stack, plays, opts, chaos)
    keepers = [
        asyncio.create_task(trouble.watch.run(watching)),
        asyncio.create_task(trouble.supervisor.run(watching)),
    ]
    try:
        return await _phases(stack, plays, opts, ledger, console, deadline, trouble, chaos)
    finally:
        # on any exit, nothing may kill or start a worker once the stack stops its children
        chaos.set()
        watching.set()
        for task in [*trouble.tasks, *keepers]:
            task.cancel()
        await asyncio.gather(*trouble.tasks, *keepers, return_exceptions=True)
        await stop_people(plays, people)


async def _phases(
    stack: Stack,
    plays: list[PortalPlay],
    opts: ChaosOptions,
    ledger: EventLedger,
    console: Console,
    deadline: float,
    trouble: _Trouble,
    chaos: asyncio.Event,
) -> dict[str, Any]:
    """Chaos while the clients play, then the drain, then the report."""
    started = time.monotonic()
    # what the bound leaves after the drain and the accounting and the stop
    finished = await _chaos_phase(plays, opts, deadline - time.monotonic() - opts.drain_s - _TAIL_S)
    walked_away(plays)
    chaos.set()
    results = await asyncio.gather(*trouble.tasks, return_exceptions=True)
    for play in plays:
        await play.control.clear_faults()
    console.print("chaos stopped; draining...")
    stuck = await wait_terminal(
        stack, plays, min(opts.drain_s, deadline - time.monotonic() - _TAIL_S)
    )
    await trouble.watch.check()
    report = await _report(stack, plays, opts, ledger, trouble)
    report.update(
        elapsed_s=round(time.monotonic() - started, 1),
        stuck=stuck,
        clients_finished_in_bound=finished,
        token_expiry_rounds=results[1] if isinstance(results[1], int) else 0,
        redis_down_s=round(trouble.redis_down_s, 2),
    )
    return report


async def _report(
    stack: Stack,
    plays: list[PortalPlay],
    opts: ChaosOptions,
    ledger: EventLedger,
    trouble: _Trouble,
) -> dict[str, Any]:
    accounting = await account(stack.redis, stack.settings, ledger)
    stuck_kinds: Counter[str] = Counter()
    checks = await verdicts(stack, plays)
    kills = trouble.killer.kills
    holding = [k for k in kills if k.held]
    recovered = [k.recovery_s for k in holding if k.recovery_s is not None]
    counters = [await p.control.counters() for p in plays]
    methods = [m for c in counters for m in c["methods"].values()]
    return {
        "dialogs": opts.dialogs,
        "portals": opts.portals,
        "workers": opts.workers,
        **asdict(accounting),
        "accounting": ACCOUNTING,
        "duplicate_leads": sum(v.duplicate_leads for v in checks),
        "duplicate_messages": sum(duplicate_bot_messages(p.runtime) for p in plays),
        "clients_gave_up": sum(1 for p in plays for r in p.runs if r.error),
        "dialogs_not_started": sum(1 for p in plays for r in p.runs if not r.chat_id),
        "kills": len(kills),
        "kills_holding_dialogs": len(holding),
        "unrecovered_kills": len(holding) - len(recovered),
        "recovery_p50_s": _round(percentile(recovered, 50)),
        "recovery_p99_s": _round(percentile(recovered, 99)),
        "recovery_max_s": _round(max(recovered, default=None)),
        "worker_restarts_after_exit": trouble.supervisor.restarts,
        "faults": FAULTS if opts.faults else {},
        "max_attempts": CHAOS_MAX_ATTEMPTS,
        "rest_requests": sum(int(c["requests"]) for c in counters),
        "token_refreshes": sum(int(c["refreshes"]) for c in counters),
        "status_503": sum(int(m.get("503", 0)) for m in methods),
        "problems": [p for v in checks for p in v.problems][:20],
        "stuck_details": await _stuck_details(stack, plays, stuck_kinds),
        "stuck_by_kind": stuck_kinds,
    }


async def _stuck_details(
    stack: Stack, plays: list[PortalPlay], counts: Counter[str], limit: int = 10
) -> list[str]:
    """What each dialog that is not terminal still holds (the evidence for finding the cause);
    `counts` gets every such dialog by kind: an effect dead-lettered (parked in the DLQ for a
    person), work still pending (the drain ran out), or idle (waiting for nothing we know)."""
    store = Store(stack.redis, stack.settings)
    found: list[str] = []
    members: set[str] = set()
    for play in plays:
        for chat_id, state in (await dialog_states(stack, play)).items():
            if state is not None and state.status in TERMINAL:
                continue
            d = store.dialog(play.member_id, str(chat_id))
            async with stack.redis.pipeline(transaction=False) as pipe:
                for key in (d.inbox, d.outbox):
                    pipe.llen(key)
                pipe.hgetall(d.fxstatus)
                pipe.exists(d.lease, d.sched)
                pipe.lrange(d.history, -3, -1)
                inbox, outbox, fx, held, history = await pipe.execute()
            effects = sorted(v.decode() for v in fx.values())
            kind = "dead_effect" if "dead" in effects else "pending" if inbox or outbox else "idle"
            counts[kind] += 1
            if len(found) >= limit:
                continue
            members.add(play.member_id)
            status = state.status.value if state else "none"
            found.append(
                f"{play.member_id[:8]}/{chat_id} ({kind}): {status}, inbox {inbox}, outbox "
                f"{outbox}, effects {effects}, lease+sched {held}; closing "
                f"{state.closing if state else None}, timers {state.timers if state else None}; "
                f"last applied {[json.loads(h)['event'] for h in history]}"
            )
    return found + await _budgets(stack, members)


async def _budgets(stack: Stack, members: set[str]) -> list[str]:
    """The REST budgets (operating time per method, rate) of the portals with stuck dialogs."""
    found = []
    for member_id in sorted(members):
        pattern = f"{stack.settings.key_prefix}:{{{member_id}}}:op:*"
        async for key in stack.redis.scan_iter(match=pattern, count=1000):
            fields = await aw(stack.redis.hgetall(key))
            text = {k.decode(): v.decode() for k, v in fields.items()}
            found.append(f"{member_id[:8]} {key.decode().rsplit(':', 1)[-1]}: {text}")
    return found


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def verdict_ok(report: dict[str, Any]) -> bool:
    """The invariants: nothing lost, no duplicate lead, nothing stuck."""
    return bool(report["lost"] == 0 and report["duplicate_leads"] == 0 and report["stuck"] == 0)


def render(report: dict[str, Any], console: Console) -> None:
    """The table."""
    table = Table(title=f"chaos: {report['dialogs']} dialogs in {report['elapsed_s']} s")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("events acknowledged by the ingress", report["acknowledged"]),
        ("  of them acknowledged into the spool (Redis down)", report["spooled_on_ack"]),
        ("events handled (committed by workers)", report["handled"]),
        ("  of them dead-lettered", report["dead_lettered"]),
        ("events still queued", report["queued"]),
        ("events still in the spool", report["still_spooled"]),
        ("events lost", report["lost"]),
        ("deliveries the ingress refused", report["refused"]),
        ("duplicate leads", report["duplicate_leads"]),
        (
            "duplicate bot messages (same text twice for one client message)",
            report["duplicate_messages"],
        ),
        ("dialogs not terminal after the drain (stuck)", report["stuck"]),
        ("  by kind (dead_effect: parked in the DLQ)", dict(report["stuck_by_kind"])),
        ("clients who gave up waiting", report["clients_gave_up"]),
        ("dialogs never started (bound hit first)", report["dialogs_not_started"]),
        (
            "workers SIGKILLed (holding dialogs)",
            f"{report['kills']} ({report['kills_holding_dialogs']})",
        ),
        (
            "recovery after a kill p50 / p99 / max s",
            f"{report['recovery_p50_s']} / {report['recovery_p99_s']} / {report['recovery_max_s']}",
        ),
        ("kills not recovered", report["unrecovered_kills"]),
        ("Redis down (one restart), s", report["redis_down_s"]),
        (
            "token expiry rounds / refreshes",
            f"{report['token_expiry_rounds']} / {report['token_refreshes']}",
        ),
        ("REST requests / 503", f"{report['rest_requests']} / {report['status_503']}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    ok = verdict_ok(report)
    table.add_row(
        "verdict", "[green]lost 0, duplicate leads 0, stuck 0[/]" if ok else "[red]FAILED[/]"
    )
    console.print(table)
    for line in report["lost_examples"] + report["stuck_details"] + report["problems"]:
        console.print(f"[red]- {line}[/]")


async def _main(opts: ChaosOptions, console: Console) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # clean up children on SIGTERM too
    try:
        async with asyncio.timeout(opts.timeout_s):
            return await run_chaos(load_settings(), opts, console)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator chaos`."""
    configure_logging("console", "WARNING")
    console = Console()
    opts = ChaosOptions(
        dialogs=args.dialogs,
        workers=args.workers,
        portals=args.portals,
        kill_every_s=args.kill_every,
        redis_down_s=args.redis_down,
        expire_every_s=args.expire_every,
        faults=not args.no_faults,
        arrivals_per_s=args.arrivals,
        drain_s=args.drain,
        timeout_s=args.timeout,
        seed=args.seed,
        output=args.output,
        log_dir=args.log_dir,
    )
    try:
        report = asyncio.run(_main(opts, console))
    except TimeoutError:
        console.print(f"[red]chaos: gave up after --timeout {opts.timeout_s:.0f} s[/]")
        return 2
    render(report, console)
    console.print(f"wrote {opts.output}")
    return 0 if verdict_ok(report) else 1

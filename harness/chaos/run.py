"""`orchestrator chaos`: dialogs through the whole product while it is being broken, then proof,
read off the portals' own journals, that nothing acknowledged was lost, nothing was said or
created twice and no dialog got stuck.

During the run a random worker is SIGKILLed every `--kill-every` s and started again; Redis (AOF,
fsync everysec) is SIGKILLed once and started on the same port after `--redis-down` s (the
ingresses spool meanwhile and replay after); one of the two ingress replicas behind the
balancer is SIGKILLed once while the portals post; the portals fail (500s, timeouts, HTML error
pages, and answers lost after the write was applied) and their OAuth access tokens are expired
every `--expire-every` s. The dialogs are spread over `--portals` portals only to have more
REST budget: each portal drains 2 requests/s.

When the clients are done the trouble stops, the faults are cleared and the run drains (bounded
by `--drain`). Exit code 0 only when every invariant holds (CHAOS_INVARIANTS: harness/judge.py
and the dialogs a kill left unresumed); chaos.json is written whatever ends the run.

Recovery after a kill is timed per dialog the killed worker held (its lease named the worker's
pid at the kill instant) and that still had work; see `harness.chaos.agents` for how:

    recovery_p50_s/_p99_s/_max_s  resume: kill -> another drainer took the dialog's lease (its
                                  fence counter moved on). The pipeline's own recovery: lease
                                  lapse (lease_ms) + sweep + a free worker picking the job up.
    progress_p50_s/_p99_s/_max_s  progress: kill -> the dialog's next committed change (state
                                  version moved, or its work all done). Resume plus whatever the
                                  resumed drainer waits for first, mostly the portal's REST budget.
    dialogs_held_at_kills         the samples: held dialogs with work (idle ones, leased with
                                  nothing left to do, are `held_idle_at_kills`, not timed)
    unresumed / unprogressed      held dialogs with no resume / no progress by the end of the run
    unrecovered_kills             kills with at least one held dialog never resumed
    kills_unobserved              kills whose leases could not be read (Redis was down)
    lease_read_max_s              the longest kill -> leases read; must stay well under lease_ms
                                  (3 s here), or a held lease could lapse unseen
    recovery                      these definitions, in words
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.bench.play import (
    PortalPlay,
    launch,
    portal_plays,
    start_people,
    stop_people,
    verdicts,
    wait_terminal,
    walked_away,
)
from harness.chaos.agents import (
    recovery_report,
)
from harness.chaos.ledger import EventLedger, account
from harness.chaos.report import Witness, failed_report, render, write_report
from harness.chaos.stuck import stuck_details
from harness.chaos.trouble import FAULTS, Trouble, make_trouble
from harness.demo.portal_setup import write_demo_scenario
from harness.demo.stack import Stack, StackOptions, run_stack
from harness.judge import Tamper, judge_portals, why_stopped
from orchestrator.observe.logs import configure_logging
from orchestrator.settings import Settings, load_settings

__all__ = ["FAULTS", "ChaosOptions", "cli_main", "options", "render", "run_chaos", "run_cli"]

FAULT_TIMEOUT_S = 6.0  # how long the portal holds a "timeout" request
REQUEST_TIMEOUT_S = 5.0  # our client hangs up first, as on a real stalled request
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
    # sized for two cores: every process of the stack, the clients and Redis share them, and a
    # CPU-starved run measures the machine, not the product (4/s left 1,472 clients waiting)
    arrivals_per_s: float = 2.0
    drain_s: float = 300.0
    timeout_s: float = 2700.0
    seed: int = 7
    output: str = "chaos.json"
    log_dir: str | None = None  # keep the child processes' logs here (default: dropped)
    tamper: Tamper | None = None  # a test seam (harness/judge.py), never set by the command


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
            # retries stay at the shipped defaults (MAX_ATTEMPTS, PATIENT_MAX_ATTEMPTS): the
            # run proves what production gets
        }
    )


async def run_chaos(
    settings: Settings, opts: ChaosOptions, console: Console, witness: Witness | None = None
) -> dict[str, Any]:
    """A fresh stack, the chaos run, the accounting; returns the report (also written)."""
    witness = witness or Witness()
    deadline = time.monotonic() + opts.timeout_s
    ledger = EventLedger()
    witness.ledger = ledger
    await ledger.start()
    try:
        with tempfile.TemporaryDirectory(prefix="ol-chaos-") as tmp:
            stack_opts = StackOptions(
                workers=opts.workers,
                log_dir=Path(opts.log_dir or tmp),
                emulator={"portals": opts.portals, "fault_timeout_s": FAULT_TIMEOUT_S},
                redis_persistent=True,
                # two replicas behind the ledger, the balancer: one is SIGKILLed while the
                # portals post, the other takes its share meanwhile
                ingresses=2,
                event_tap=ledger.tap,
            )
            console.print(
                f"chaos: {opts.dialogs} dialogs on {opts.portals} portals, {opts.workers} workers"
            )
            async with run_stack(_chaos_settings(settings, tmp), stack_opts) as stack:
                witness.phase = "clients playing"
                report = await _run(stack, opts, ledger, console, deadline, witness)
    finally:
        await ledger.close()
    await asyncio.to_thread(write_report, opts.output, report)
    return report


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
    stack: Stack,
    opts: ChaosOptions,
    ledger: EventLedger,
    console: Console,
    deadline: float,
    witness: Witness,
) -> dict[str, Any]:
    counts = [
        opts.dialogs // opts.portals + (n < opts.dialogs % opts.portals)
        for n in range(opts.portals)
    ]
    plays = portal_plays(stack, counts)
    people, chaos, watching = asyncio.Event(), asyncio.Event(), asyncio.Event()
    start_people(plays, people)
    trouble = await make_trouble(stack, plays, opts, chaos)
    witness.trouble = trouble
    keepers = [
        asyncio.create_task(trouble.watch.run(watching)),
        asyncio.create_task(trouble.keeper.run(watching)),
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
    trouble: Trouble,
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
    if opts.tamper is not None:
        await opts.tamper(plays)
    report = await _report(stack, plays, opts, ledger, trouble)
    report.update(
        elapsed_s=round(time.monotonic() - started, 1),
        not_terminal_ours=stuck,
        clients_finished_in_bound=finished,
        token_expiry_rounds=results[1] if isinstance(results[1], int) else 0,
        redis_down_s=round(trouble.redis_down_s, 2),
        redis_kills=trouble.redis_kills,
        ingress_down_s=round(trouble.ingress_down_s, 2),
        ingress_kills=trouble.ingress_kills,
        balancer_failovers=ledger.failovers,
    )
    return report


async def _report(
    stack: Stack,
    plays: list[PortalPlay],
    opts: ChaosOptions,
    ledger: EventLedger,
    trouble: Trouble,
) -> dict[str, Any]:
    # the verdict's counts come from the portals' journals and the clients (harness/judge.py);
    # where our own Redis says each acknowledged event went is kept beside, as a diagnosis
    judgment = await judge_portals(plays)
    accounting = await account(stack.redis, stack.settings, ledger)
    stuck_kinds: Counter[str] = Counter()
    checks = await verdicts(stack, plays)
    counters = [await p.control.counters() for p in plays]
    methods = [m for c in counters for m in c["methods"].values()]
    return {
        "dialogs": opts.dialogs,
        "portals": opts.portals,
        "workers": opts.workers,
        **judgment.report(),
        "spooled_on_ack": ledger.spooled,
        "ours": {**asdict(accounting), "how": ACCOUNTING},
        "dialogs_not_started": sum(1 for p in plays for r in p.runs if not r.chat_id),
        **recovery_report(trouble.killer.kills),
        "worker_restarts_after_exit": trouble.keeper.restarts,
        "faults": FAULTS if opts.faults else {},
        "max_attempts": stack.settings.max_attempts,
        "patient_max_attempts": stack.settings.patient_max_attempts,
        "rest_requests": sum(int(c["requests"]) for c in counters),
        "token_refreshes": sum(int(c["refreshes"]) for c in counters),
        "status_503": sum(int(m.get("503", 0)) for m in methods),
        "disagreements": sum(len(v.problems) for v in checks),
        "problems": [p for v in checks for p in v.problems][:20],
        "stuck_details": await stuck_details(stack, plays, stuck_kinds),
        "stuck_by_kind": stuck_kinds,
    }


async def _main(opts: ChaosOptions, console: Console, witness: Witness) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # clean up children on SIGTERM too
    try:
        async with asyncio.timeout(opts.timeout_s):
            return await run_chaos(load_settings(), opts, console, witness)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def options(args: argparse.Namespace) -> ChaosOptions:
    """The run the command line asks for."""
    return ChaosOptions(
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


def run_cli(opts: ChaosOptions) -> int:
    """Run chaos as the command does: the table, chaos.json on any exit, 0 only on a pass."""
    configure_logging("console", "WARNING")
    console = Console()
    room_s = opts.timeout_s - opts.drain_s - _TAIL_S
    if room_s < opts.dialogs / opts.arrivals_per_s:
        # else the clients' bound is spent before they arrive: nothing is tested, all "passes"
        console.print(
            f"[red]chaos: --timeout {opts.timeout_s:.0f} leaves {room_s:.0f} s for the clients "
            f"after --drain {opts.drain_s:.0f}; their arrivals alone take "
            f"{opts.dialogs / opts.arrivals_per_s:.0f} s: raise --timeout or lower --drain[/]"
        )
        return 2
    witness = Witness()
    try:
        report = asyncio.run(_main(opts, console, witness))
    except (Exception, KeyboardInterrupt, asyncio.CancelledError) as exc:
        # whatever ends the run early still leaves chaos.json, with what it saw and why
        setup = {"dialogs": opts.dialogs, "portals": opts.portals, "workers": opts.workers}
        reason = f"did not finish ({witness.phase}): {why_stopped(exc, opts.timeout_s)}"
        report = failed_report(setup, witness, reason)
        write_report(opts.output, report)
        console.print(f"[red]chaos: {report['reasons'][0]}[/]")
        console.print(f"wrote {opts.output}")
        return 1
    render(report, console)
    console.print(f"wrote {opts.output}")
    return 0 if report["verdict"] == "pass" else 1


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator chaos` (or, with --outage, the outage run)."""
    if args.outage is not None:
        from harness.chaos.outage import outage_cli

        return outage_cli(args)
    return run_cli(options(args))

"""`orchestrator chaos --outage 60`: every ingress and worker process down for 60 s while the
clients keep writing, once on the v2 bot in fetch mode and once on the v1 bot pushed to our
ingress; side by side in outage.json as `{"fetch": {...}, "v1_webhook": {...}}`.

Each mode runs on a fresh stack and portal. After `before_s` of traffic, in fetch mode, the
worker holding a bot's poller lease is SIGKILLed first, while the portal still keeps events of
that bot it has handed out and not yet had confirmed (its last page: "mid-batch"); then every
other worker and every ingress is SIGKILLed. Clients keep arriving and writing; the portal keeps
pushing (v1: each push to a dead ingress is lost for good, as the platform never retries) or
keeping (fetch: the bot's log, 24 h; offline events, 30 days). After `outage_s` every process is
started again, the clients finish (they wait for a reply up to `outage_s` + a minute, as a
patient person would), and the run drains until every dialog is terminal or `drain_s` passed.

Counted from the portals' journals and the clients (harness/judge.py, harness/truth.py), per mode:

    acknowledged      events the portal handed us: pushes answered 200, log rows we confirmed
    lost              acknowledged events whose effect the portal does not show, plus events the
                      portal could not deliver (pushes refused or unanswered: never re-sent) and
                      events still unconfirmed in the bot's log one idle poll period
                      (FETCH_IDLE_MAX_S + CONFIRM_MARGIN_S) after every dialog ended
    dialogs_lost      dialogs whose session the portal shows stuck, or whose client gave up
    stuck             what is missing of the sessions: one per session not closed, closed
                      without its rating, or without its lead (as in every proof's verdict)
    budget_share_polling  requests spent only on looking for events ÷ the portals' request
                      budget over the run (drain rate × seconds; a poll that rode in a batch of
                      the dialogs' own calls costs nothing); polling_share_of_requests beside

The exit code is 0 when the fetch mode lost nothing and left nothing stuck; the v1 numbers are
what the outage costs without fetch mode, reported, not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from emulator.limits import PLANS
from harness.bench.play import (
    PortalPlay,
    launch,
    polling_budget,
    portal_plays,
    start_people,
    stop_people,
    wait_terminal,
    walked_away,
)
from harness.demo.portal_setup import write_demo_scenario
from harness.demo.stack import Stack, StackOptions, run_stack
from harness.judge import judge_portals
from harness.provenance import write_json
from harness.truth import read_truth
from orchestrator.observe.logs import configure_logging
from orchestrator.pipeline.keys import Keys
from orchestrator.settings import Settings, load_settings

__all__ = ["MODES", "OutageOptions", "outage_cli", "render", "run_outage"]

# outage.json's key -> the bot the stack runs
MODES = {"fetch": "v2", "v1_webhook": "v1"}
# A poller confirms a page with its next poll, at most FETCH_IDLE_MAX_S later; this much more
# for the poll itself.
CONFIRM_MARGIN_S = 5.0


@dataclass
class OutageOptions:
    """How long the outage lasts, and the traffic around it."""

    outage_s: float = 60.0
    dialogs: int = 120  # per mode
    portals: int = 2
    workers: int = 2
    arrivals_per_s: float = 1.0  # clients keep arriving through the outage
    before_s: float = 20.0  # traffic before everything goes down
    drain_s: float = 240.0
    patience_s: float = 60.0  # how long after the outage a client still waits for a reply
    output: str = "outage.json"


def _settings(settings: Settings, tmp: str) -> Settings:
    prefix = f"outage{uuid.uuid4().hex[:6]}"
    return settings.model_copy(
        update={
            "redis_url": None,  # the embedded server: a fresh one per mode
            "key_prefix": prefix,
            "queue_name": f"{prefix}:queue",
            "scenario_path": write_demo_scenario(Path(tmp) / "scenario.yaml"),
            "spool_dir": str(Path(tmp) / "spool"),
            "log_level": "WARNING",
            "lease_ms": 3000,
            "sweep_interval_s": 0.5,
            "shutdown_grace_s": 2.0,
        }
    )


async def run_outage(settings: Settings, opts: OutageOptions, console: Console) -> dict[str, Any]:
    """Both modes, one after the other; the report (also written to opts.output)."""
    report: dict[str, Any] = {"outage_s": opts.outage_s, "dialogs_per_mode": opts.dialogs}
    for mode, bot in MODES.items():
        console.print(f"outage ({mode}): {opts.dialogs} dialogs, {opts.outage_s:.0f} s down")
        with tempfile.TemporaryDirectory(prefix="ol-outage-") as tmp:
            stack_opts = StackOptions(
                workers=opts.workers,
                bot=bot,
                log_dir=Path(tmp),
                emulator={"portals": opts.portals},
            )
            async with run_stack(_settings(settings, tmp), stack_opts) as stack:
                report[mode] = await _one_mode(stack, opts, mode)
        console.print(f"  {mode}: lost {report[mode]['lost']}, stuck {report[mode]['stuck']}")
    fetch = report["fetch"]
    report["verdict"] = (
        "pass"
        if fetch["lost"] == 0
        and fetch["stuck"] == 0
        and fetch["dialogs_lost"] == 0
        and fetch["dialogs_not_started"] == 0
        else "fail"
    )
    await asyncio.to_thread(write_json, opts.output, report)
    return report


async def _one_mode(stack: Stack, opts: OutageOptions, mode: str) -> dict[str, Any]:
    counts = [
        opts.dialogs // opts.portals + (n < opts.dialogs % opts.portals)
        for n in range(opts.portals)
    ]
    plays = portal_plays(stack, counts)
    for play in plays:
        play.actors.wait_s = opts.outage_s + opts.patience_s
    people = asyncio.Event()
    start_people(plays, people)
    arrivals = asyncio.create_task(launch(plays, opts.arrivals_per_s))
    started = time.monotonic()
    try:
        await asyncio.sleep(opts.before_s)
        outage = await _outage(stack, plays, opts, mode)
        await arrivals
        clients = [t for p in plays for t in p.tasks]
        await asyncio.wait(clients, timeout=opts.outage_s + opts.patience_s + 120)
        walked_away(plays)
        not_terminal = await wait_terminal(stack, plays, opts.drain_s)
        # the last page a poller read is confirmed by its next poll, one cadence later
        await _logs_confirmed(plays, stack.settings.fetch_idle_max_s + CONFIRM_MARGIN_S)
        config = stack.emu.config
        drain = config.drain_per_s or PLANS[config.plan][1]
        return await _report(plays, outage, not_terminal, time.monotonic() - started, drain)
    finally:
        arrivals.cancel()
        await stop_people(plays, people)


async def _outage(
    stack: Stack, plays: list[PortalPlay], opts: OutageOptions, mode: str
) -> dict[str, Any]:
    """Kill the poller mid-batch (fetch mode), then every worker and ingress; start them again
    `outage_s` later. What happened, measured."""
    poller = await _kill_a_poller(stack, plays) if mode == "fetch" else None
    down_at = time.monotonic()
    for proc in list(stack.worker_processes):
        stack.kill_worker(proc)
    ingresses = [stack.stop_ingress(i) for i in range(len(stack.ingress_urls))]
    workers = opts.workers
    await asyncio.sleep(max(0.0, opts.outage_s - (time.monotonic() - down_at)))
    for index, args in enumerate(ingresses):
        await stack.start_ingress(index, args)
    for _ in range(workers):
        stack.spawn_worker()
    return {"outage_s": round(time.monotonic() - down_at, 1), "poller_killed": poller}


async def _logs_confirmed(plays: list[PortalPlay], within_s: float) -> None:
    """Wait (at most `within_s`) until no bot's log holds an event: what is still there after
    that counts as lost."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(p.runtime.portal.fetch_queue.pending() for p in plays):
            return
        await asyncio.sleep(0.5)


async def _kill_a_poller(stack: Stack, plays: list[PortalPlay]) -> dict[str, Any] | None:
    """SIGKILL the worker that polls a bot while the portal holds events of that bot it handed
    out unconfirmed or not yet handed out (within 10 s; None when no lease was seen)."""
    keys = Keys(stack.settings.key_prefix)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        for play in plays:
            portal = play.runtime.portal
            for bot_id in portal.bots_v2.bots:
                pending = len(portal.fetch_queue.pending(bot_id))
                lease = await stack.redis.get(
                    f"{keys.poller(play.member_id, f'bot-{bot_id}')}:lease"
                )
                if not lease or not pending:
                    continue
                pid = int(lease.decode().rsplit(":", 1)[1])
                if pid not in {p.pid for p in stack.worker_processes}:
                    continue
                os.kill(pid, signal.SIGKILL)
                return {"pid": pid, "bot_id": bot_id, "events_in_the_log": pending}
        await asyncio.sleep(0.05)
    return None


async def _report(
    plays: list[PortalPlay],
    outage: dict[str, Any],
    not_terminal: int,
    seconds: float,
    drain: float,
) -> dict[str, Any]:
    judgment = await judge_portals(plays)
    counters = [await p.control.counters() for p in plays]
    # a dialog is lost when the portal shows its session stuck (judgment.stuck counts each
    # problem of a session: no rating, no lead, not closed) or its client gave up waiting
    lost_dialogs: set[tuple[str, int]] = set()
    for play in plays:
        truth = await read_truth(play.control)
        for run in play.runs:
            if run.chat_id and (run.error or truth.stuck([run.chat_id])):
                lost_dialogs.add((play.member_id, run.chat_id))
    unconfirmed = sum(len(p.runtime.portal.fetch_queue.pending()) for p in plays)
    gave_up = {(p.member_id, r.chat_id) for p in plays for r in p.runs if r.error}
    started = sum(1 for p in plays for r in p.runs if r.chat_id)
    j = judgment.report()
    return {
        **outage,
        "dialogs_started": started,
        "dialogs_not_started": sum(1 for p in plays for r in p.runs if not r.chat_id),
        "acknowledged": judgment.acknowledged,
        "handled": judgment.handled,
        "lost": judgment.lost + judgment.refused + unconfirmed,
        "lost_acknowledged": judgment.lost,
        "refused_pushes": judgment.refused,
        "unconfirmed_in_log": unconfirmed,
        "stuck": judgment.stuck,  # problems, one per missing rating, lead or close
        "clients_gave_up": len(gave_up),
        "not_terminal_ours": not_terminal,
        "dialogs_lost": len(lost_dialogs),
        "duplicate_leads": judgment.duplicate_leads,
        "duplicate_messages": judgment.duplicate_messages,
        "contact_data_missing": judgment.contact_data_missing,
        **polling_budget(counters, seconds=seconds, drain_per_s=drain),
        "examples": j.get("problem_examples", {}),
    }


def render(report: dict[str, Any], console: Console) -> None:
    """The two modes side by side."""
    table = Table(title=f"{report['outage_s']:.0f} s with every ingress and worker down")
    table.add_column("")
    for mode in MODES:
        table.add_column(mode, justify="right")
    rows = (
        ("outage_s", "down, measured (s)"),
        ("acknowledged", "events acknowledged"),
        ("lost", "events lost"),
        ("refused_pushes", "  of which pushes refused"),
        ("unconfirmed_in_log", "  of which left in the bot's log"),
        ("dialogs_started", "dialogs started"),
        ("dialogs_lost", "dialogs lost"),
        ("stuck", "sessions stuck"),
        ("clients_gave_up", "clients who gave up"),
        ("budget_share_polling", "share of the request budget spent polling"),
    )
    for key, label in rows:
        table.add_row(label, *(str(report.get(mode, {}).get(key, "")) for mode in MODES))
    console.print(table)
    console.print(f"verdict (fetch mode loses nothing): {report.get('verdict')}")


def outage_cli(args: argparse.Namespace) -> int:
    """`orchestrator chaos --outage S`: both modes, the table, outage.json; 0 on a pass."""
    configure_logging("console", "WARNING")
    console = Console()
    opts = OutageOptions(
        outage_s=args.outage,
        dialogs=args.outage_dialogs,
        workers=args.workers if args.workers != 3 else OutageOptions.workers,
        output="outage.json" if args.output == "chaos.json" else args.output,
    )
    report = asyncio.run(asyncio.wait_for(run_outage(load_settings(), opts, console), args.timeout))
    render(report, console)
    console.print(f"wrote {opts.output}")
    return 0 if report["verdict"] == "pass" else 1

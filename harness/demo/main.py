"""`orchestrator demo`: the product's main job on embedded defaults (what `make run` runs).

Starts Redis (embedded unless REDIS_URL is set), the emulated portal, the ingress and worker
processes; plays clients, operators and the portal's clock through whole dialog lifecycles with a
progress bar; then judges the run by the portal's journal (harness/judge.py: nothing lost, no
duplicate, nothing stuck, no client left waiting), checks our dialog states against the portal's
own state and prints a summary. Exit code 0 only when every invariant held and everything
agrees; demo.json holds the report and demo.png its chart (harness/demo/chart.py), both
written whatever ends the run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.bench.e2e_watch import STEPS, StepWatch
from harness.bench.play import PortalPlay
from harness.charts import available as charts_available
from harness.demo.actors import DEMO_MIX, Actors, ClientRun, client_runs
from harness.demo.answerer import DemoAnswerer, demo_answerer
from harness.demo.chart import chart_path, write_chart
from harness.demo.diagnose import pipeline_notes
from harness.demo.portal_setup import write_demo_scenario
from harness.demo.report import Verdict, percentile, render, verify
from harness.demo.stack import Stack, StackOptions, run_stack
from harness.judge import Tamper, broken, judge_portals, why_stopped
from harness.provenance import write_json
from orchestrator.dialog.state import TERMINAL, DialogState
from orchestrator.observe.logs import configure_logging
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings, load_settings

__all__ = ["DemoOptions", "cli_main", "play_on", "run_demo"]


@dataclass
class DemoOptions:
    """What to play."""

    dialogs: int = 200
    workers: int = 2
    timeout_s: float = 600.0
    arrivals_per_s: float = 8.0
    in_process: bool = False
    output: str = "demo.json"
    bot: str = "v2"  # v2: our fetch-mode bot on a fresh portal; v1: the seeded v1 bot, pushed
    tamper: Tamper | None = None  # a test seam (harness/judge.py), never set by the command
    # the contact center's service answering the assistant desk (run_demo starts it)
    answerer: DemoAnswerer | None = None


async def _states(stack: Stack, runs: list[ClientRun]) -> dict[int, DialogState | None]:
    store = Store(stack.redis, stack.settings)
    states: dict[int, DialogState | None] = {}
    for run in runs:
        if run.chat_id:
            raw = (await store.state(store.dialog(stack.member_id, str(run.chat_id)))).data
            states[run.chat_id] = DialogState.from_json(raw) if raw else None
    return states


def _finished(runs: list[ClientRun], states: dict[int, DialogState | None]) -> int:
    return sum(1 for r in runs if (s := states.get(r.chat_id)) is not None and s.status in TERMINAL)


async def _play(
    stack: Stack,
    opts: DemoOptions,
    actors: Actors,
    progress: Progress,
    runs: list[ClientRun],
    clients: list[asyncio.Task[None]],
) -> None:
    """Launch the clients, then watch our states until every dialog is terminal."""
    bar = progress.add_task("dialogs finished", total=len(runs))
    for run in runs:
        clients.append(asyncio.create_task(actors.client(run)))
        await asyncio.sleep(1 / opts.arrivals_per_s)
        if run.index % 10 == 0:
            progress.update(bar, completed=_finished(runs, await _states(stack, runs)))
    await asyncio.gather(*clients)
    while True:
        done = _finished(runs, await _states(stack, runs))
        progress.update(bar, completed=done)
        if done == len(runs):
            return
        await asyncio.sleep(0.5)


async def run_demo(settings: Settings, opts: DemoOptions, console: Console) -> Verdict:
    """Play the demo on a fresh stack; the verdict says whether everything agreed."""
    with tempfile.TemporaryDirectory(prefix="ol-demo-") as tmp:
        async with demo_answerer() as service:
            opts.answerer = service
            return await _run_demo(settings, opts, console, Path(tmp), service.url)


async def _run_demo(
    settings: Settings, opts: DemoOptions, console: Console, tmp: Path, answerer_url: str
) -> Verdict:
    prefix = f"demo{uuid.uuid4().hex[:6]}"
    settings = settings.model_copy(
        update={
            "key_prefix": prefix,
            "queue_name": f"{prefix}:queue",
            "scenario_path": write_demo_scenario(tmp / "scenario.yaml", answerer_url),
            "spool_dir": str(tmp / "spool"),
            "log_level": "WARNING",
        }
    )
    stack_opts = StackOptions(
        workers=opts.workers, in_process=opts.in_process, log_dir=tmp, bot=opts.bot
    )
    console.print(f"Starting Redis, the emulated portal, the ingress and {opts.workers} workers...")
    try:
        async with run_stack(settings, stack_opts) as stack:
            return await play_on(stack, opts, console)
    finally:
        if settings.redis_url:  # someone else's Redis: leave nothing of ours behind
            await _forget(settings)


async def _forget(settings: Settings) -> None:
    """Delete the demo's keys (its own prefix and queue, and its arq job records)."""
    client = aioredis.Redis.from_url(str(settings.redis_url))
    try:
        job_ids = await client.zrange(settings.queue_name, 0, -1)
        if job_ids:
            await client.delete(*(b"arq:job:" + j for j in job_ids))
        async for key in client.scan_iter(match=f"{settings.key_prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


async def play_on(stack: Stack, opts: DemoOptions, console: Console) -> Verdict:
    """Play the demo's clients on a running stack and judge the outcome against the portal."""
    actors = Actors(stack.control, stack.view)
    stop = asyncio.Event()
    runs = client_runs(opts.dialogs, DEMO_MIX)
    # The later steps (handoff -> accepted, finish -> vote, finish -> lead) are read off the
    # in-process portal, the way `bench e2e` times them.
    plays = [
        PortalPlay(r.identity.member_id, r, stack.control, actors, runs) for r in stack.emu.portals
    ]
    watch = StepWatch(plays)
    helpers = [
        asyncio.create_task(actors.operators(stop)),
        asyncio.create_task(actors.clock(stop)),
        asyncio.create_task(watch.run(stop)),
    ]
    clients: list[asyncio.Task[None]] = []
    started = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    timed_out = False
    with Progress(*columns, console=console) as progress:
        try:
            async with asyncio.timeout(opts.timeout_s):
                await _play(stack, opts, actors, progress, runs, clients)
        except TimeoutError:
            timed_out = True
    stop.set()
    for task in clients:
        task.cancel()
    await asyncio.gather(*helpers, *clients, return_exceptions=True)
    if opts.tamper is not None:
        await opts.tamper(plays)
    states = await _states(stack, runs)
    verdict = verify(
        runs, states, await stack.control.state(), await stack.control.counters(), actors.step_s
    )
    verdict.pipeline = await pipeline_notes(
        Store(stack.redis, stack.settings), stack.member_id, stack.settings.queue_name, states
    )
    verdict.steps = {
        f"{start} -> {end}": (percentile(spans, 50), percentile(spans, 99))
        for start, end in STEPS.values()
        for spans in [watch.durations(start, end)]
    }
    verdict.elapsed_s = time.monotonic() - started
    verdict.closed_at_s = sorted(
        max(0.0, marks["closed"] - started) for marks in watch.marks.values() if "closed" in marks
    )
    verdict.replies = [
        (at - started, latency) for at, latency in zip(actors.reply_at, actors.step_s, strict=True)
    ]
    verdict.steps["button press -> bot reply"] = (
        percentile(actors.press_s, 50),
        percentile(actors.press_s, 99),
    )
    if opts.answerer is not None:
        verdict.answerer = {"asked": opts.answerer.asked, **opts.answerer.by_action}
    verdict.portal = (await judge_portals(plays)).report()
    verdict.reasons = broken(
        {
            **verdict.portal,
            "disagreements": len(verdict.problems),
            "dialogs_not_started": sum(1 for r in runs if not r.chat_id),
        }
    )
    if timed_out:
        verdict.reasons.insert(0, f"did not finish: {why_stopped(TimeoutError(), opts.timeout_s)}")
    return verdict


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator demo`."""
    settings = load_settings()
    configure_logging("console", "WARNING")
    console = Console()
    opts = DemoOptions(
        dialogs=args.dialogs,
        workers=args.workers,
        timeout_s=args.timeout,
        arrivals_per_s=args.arrivals,
        output=args.output,
        bot=args.bot,
    )
    try:
        verdict = asyncio.run(run_demo(settings, opts, console))
    except (Exception, KeyboardInterrupt, asyncio.CancelledError) as exc:
        verdict = Verdict(
            dialogs=opts.dialogs, reasons=[f"did not finish: {why_stopped(exc, opts.timeout_s)}"]
        )
        console.print(f"[red]demo: {verdict.reasons[0]}[/]")
    else:
        render(verdict, console)
    write_json(opts.output, verdict.report())
    if charts_available():
        # written whatever ended the run, like the JSON: an old chart beside it would lie
        chart = chart_path(opts.output)
        write_chart(verdict, chart)
        console.print(f"wrote {opts.output} and {chart}")
    else:
        console.print(f"wrote {opts.output} (no chart: matplotlib, the bench extra, is missing)")
    return 0 if verdict.ok else 1

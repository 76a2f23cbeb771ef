"""`orchestrator bench e2e`: whole dialog lifecycles through the whole product against the
emulated portal at its real limits, measured against the portal's true ceiling.

The ceiling is the REST budget a dialog needs. A standard portal drains 2 HTTP requests/s from
its leaky bucket and a batch carries up to 50 method calls, so at most 100 calls/s reach it.
What a dialog needs at the least is read off the portal's journal, not off our client: one call
per message of ours the client saw, per handoff, transfer and close, per rating and per lead,
and the reads the portal offers no other way around, each named (harness/truth.py). So

    true_ceiling_dialogs_per_s = drain_per_s × 50 calls per batch ÷ necessary calls per dialog

and a wasted call of ours lowers our rate against it instead of raising the ceiling.
`calls_per_dialog` (the portal's counters ÷ dialogs) stands beside it.

and the request ratio is the HTTP requests/s we made while clients were arriving (the loaded
phase: more dialogs arrive than the budget can serve; it starts once the bucket's first burst of
`capacity` requests is spent) ÷ the drain rate. With `--portals N` one
portal bursts `--burst` times the dialogs of each other portal, after a baseline run with no
burst; every portal's clients arrive over the same window (`--arrivals` is the baseline's total,
so the burst comes on top of an unchanged schedule for the others), and each quiet portal's
dialogs/s and p99 are compared between the two runs (fairness).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from emulator.limits import PLANS
from harness.bench.e2e_render import chart, render
from harness.bench.e2e_watch import STEPS, Sampler, StepWatch, step_percentiles
from harness.bench.light import light_replies
from harness.bench.play import (
    PortalPlay,
    calls_by_method,
    launch,
    method_calls,
    polling_budget,
    portal_plays,
    start_people,
    stop_people,
    verdicts,
    wait_terminal,
)
from harness.demo.answerer import DemoAnswerer, demo_answerer
from harness.demo.portal_setup import write_demo_scenario
from harness.demo.stack import Stack, StackOptions, run_stack
from harness.judge import Tamper, judge_portals, seal, why_stopped
from harness.provenance import write_json
from orchestrator.observe.logs import configure_logging
from orchestrator.settings import Settings, load_settings

__all__ = ["E2EOptions", "cli_main", "options", "render", "run_bench", "run_cli"]

CALLS_PER_BATCH = 50
FORMULA = (
    "true_ceiling_dialogs_per_s = drain_per_s × 50 calls per batch ÷ necessary_calls_per_dialog"
)


@dataclass
class E2EOptions:
    """What to run."""

    dialogs: int = 2000
    workers: int = 3
    portals: int = 1
    burst: int = 10  # with several portals: the bursting portal's dialogs ÷ each other's
    arrivals_per_s: float = 9.0
    timeout_s: float = 1800.0
    in_process: bool = False
    output: str = "bench-e2e.json"
    chart: str = "bench-e2e.png"
    log_dir: str | None = None  # keep the ingress and worker logs here (default: dropped)
    bot: str = "v2"  # v2: our fetch-mode bot on fresh portals; v1: the seeded v1 bot, pushed
    idle_s: float = 60.0  # after the run: how long the polling cost of an idle portal is read
    light: int = (
        0  # then this many dialogs one at a time, on a fresh stack (harness/bench/light.py)
    )
    tamper: Tamper | None = None  # a test seam (harness/judge.py), never set by the command
    answerer: str = "rules"  # http: the demo's answerer service decides on every line


def _portal_result(play: PortalPlay, watch: StepWatch, counters: dict[str, Any]) -> dict[str, Any]:
    span = (play.all_terminal or time.monotonic()) - (play.first_arrival or time.monotonic())
    steps = {"client_message_to_bot_reply": step_percentiles(play.actors.step_s)}
    for name, (start, end) in STEPS.items():
        steps[name] = step_percentiles(watch.durations(start, end, play.member_id))
    methods = counters["methods"].values()
    return {
        "member_id": play.member_id,
        "dialogs": len(play.runs),
        "dialogs_per_s": round(len(play.runs) / span, 3) if span > 0 else None,
        "method_calls": method_calls(counters),
        "calls_by_method": calls_by_method(counters),
        "requests": int(counters["requests"]),
        "status_503": sum(int(m.get("503", 0)) for m in methods),
        "status_429": sum(int(m.get("429", 0)) for m in methods),
        "steps": steps,
        "p99_ms": steps["client_message_to_bot_reply"]["p99_ms"],
    }


async def _measure(stack: Stack, counts: list[int], opts: E2EOptions) -> dict[str, Any]:
    """Play `counts[i]` dialogs on portal i; everything measured, per portal and overall."""
    plays = portal_plays(stack, counts)
    stop, watching = asyncio.Event(), asyncio.Event()
    start_people(plays, stop)
    watch = StepWatch(plays)
    sampler = Sampler(plays, stack.redis, stack.settings)
    watchers = [
        asyncio.create_task(watch.run(watching)),
        asyncio.create_task(sampler.run(watching)),
    ]
    started = time.monotonic()
    left = sum(counts)
    try:
        async with asyncio.timeout(opts.timeout_s):
            await launch(plays, opts.arrivals_per_s)
            launched = time.monotonic() - sampler.started
            left = await wait_terminal(stack, plays, opts.timeout_s)
    except TimeoutError:
        launched = time.monotonic() - sampler.started
    elapsed = time.monotonic() - started
    await stop_people(plays, stop)
    watching.set()
    await asyncio.gather(*watchers)
    if opts.tamper is not None:
        await opts.tamper(plays)
    busy_counters = [await p.control.counters() for p in plays]
    per_portal = [_portal_result(p, watch, c) for p, c in zip(plays, busy_counters, strict=True)]
    config = stack.emu.config
    drain = config.drain_per_s or PLANS[config.plan][1]
    busy = polling_budget(busy_counters, seconds=elapsed, drain_per_s=drain)
    # the same portals left alone: what polling costs when nothing happens
    await asyncio.sleep(opts.idle_s)
    idle_counters = [await p.control.counters() for p in plays]
    idle = polling_budget(
        idle_counters, seconds=opts.idle_s, drain_per_s=drain, before=busy_counters
    )
    judgment = await judge_portals(plays)
    checks = await verdicts(stack, plays)
    capacity = config.bucket_capacity or PLANS[config.plan][0]
    requests, span = sampler.requests_between(0.0, launched, capacity * len(counts))
    return {
        **judgment.report(),
        "disagreements": sum(len(v.problems) for v in checks),
        "dialogs_not_started": sum(1 for p in plays for r in p.runs if not r.chat_id),
        "elapsed_s": round(elapsed, 1),
        "not_terminal_ours": left,
        "loaded_phase_s": round(span, 1),
        "requests_in_loaded_phase": requests,
        "bot": opts.bot,
        "polling_busy": busy,
        "polling_idle": idle,
        "portals": per_portal,
        "watch": watch,
        "reply_samples": [s for p in plays for s in p.actors.step_s],
        # (seconds into the run, latency) of each reply, for the chart's latency panel
        "reply_times": [
            (at - sampler.started, s)
            for p in plays
            for at, s in zip(p.actors.reply_at, p.actors.step_s, strict=True)
        ],
        "samples": sampler.samples,
        "problems": [p for v in checks for p in v.problems][:20],
        # where our unfinished dialogs wait, if any (harness/demo/diagnose.py)
        "pipeline": [n for v in checks for n in v.pipeline][:20],
    }


def _summary(run: dict[str, Any], stack: Stack) -> dict[str, Any]:
    """The headline numbers of one run, every portal together, and its verdict."""
    config = stack.emu.config
    drain = config.drain_per_s or PLANS[config.plan][1]
    portals = run.pop("portals")
    dialogs = sum(p["dialogs"] for p in portals)
    calls_per_dialog = sum(p["method_calls"] for p in portals) / max(dialogs, 1)
    necessary = sum(run["necessary_calls"].values()) / max(dialogs, 1)
    budget = len(portals) * drain * CALLS_PER_BATCH  # method calls/s the portals take
    ceiling = budget / necessary if necessary else 0.0
    rate = dialogs / run["elapsed_s"] if run["elapsed_s"] else 0.0
    span = run["loaded_phase_s"]
    ratio = run["requests_in_loaded_phase"] / (span * drain * len(portals)) if span else 0.0
    watch: StepWatch = run.pop("watch")
    steps = {
        "client_message_to_bot_reply": step_percentiles(run.pop("reply_samples")),
        **{n: step_percentiles(watch.durations(a, b)) for n, (a, b) in STEPS.items()},
    }
    return seal(
        {
            "dialogs": dialogs,
            "dialogs_per_s": round(rate, 3),
            "calls_per_dialog": round(calls_per_dialog, 2),
            "necessary_calls_per_dialog": round(necessary, 2),
            "necessary_reads": sorted(n for n in run["necessary_calls"] if n.startswith("read")),
            "drain_per_s": drain,
            "calls_per_batch": CALLS_PER_BATCH,
            "ceiling_formula": FORMULA + (f" × {len(portals)} portals" if len(portals) > 1 else ""),
            "true_ceiling_dialogs_per_s": round(ceiling, 3),
            "dialogs_vs_true_ceiling": round(rate / ceiling, 3) if ceiling else None,
            # the rate our own calls would allow: below the true ceiling by what we waste
            "ceiling_at_our_calls_dialogs_per_s": round(budget / calls_per_dialog, 3)
            if calls_per_dialog
            else None,
            "request_ratio": round(ratio, 3),
            "status_503": sum(p["status_503"] for p in portals),
            "status_429": sum(p["status_429"] for p in portals),
            "steps": steps,
            "p99_ms": steps["client_message_to_bot_reply"]["p99_ms"],
            **run,
            "per_portal": portals,
        }
    )


def _fairness(baseline: dict[str, Any], burst: dict[str, Any]) -> dict[str, Any]:
    """Each quiet portal (all but the first) in the burst run against itself in the baseline."""
    quiet = []
    for before, during in zip(baseline["portals"][1:], burst["portals"][1:], strict=True):
        rate_b, rate_d = before["dialogs_per_s"], during["dialogs_per_s"]
        p99_b, p99_d = before["p99_ms"], during["p99_ms"]
        quiet.append(
            {
                "portal": during["member_id"],
                "dialogs": during["dialogs"],
                "baseline_dialogs_per_s": rate_b,
                "burst_dialogs_per_s": rate_d,
                "throughput_ratio": round(rate_d / rate_b, 3) if rate_b and rate_d else None,
                "baseline_p99_ms": p99_b,
                "burst_p99_ms": p99_d,
                "p99_ratio": round(p99_d / p99_b, 3) if p99_b and p99_d else None,
            }
        )
    ratios = [q["throughput_ratio"] for q in quiet if q["throughput_ratio"] is not None]
    p99s = [q["p99_ratio"] for q in quiet if q["p99_ratio"] is not None]
    loud = burst["portals"][0]
    return {
        "bursting_portal": {
            k: loud[k] for k in ("member_id", "dialogs", "dialogs_per_s", "p99_ms")
        },
        "quiet_portals": quiet,
        "worst_throughput_ratio": min(ratios, default=None),
        "worst_p99_ratio": max(p99s, default=None),
    }


def _bench_settings(settings: Settings, tmp: str, answerer_url: str | None) -> Settings:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    scenario = write_demo_scenario(Path(tmp) / "scenario.yaml", answerer_url, everywhere=True)
    return settings.model_copy(
        update={
            "key_prefix": prefix,
            "queue_name": f"{prefix}:queue",
            "scenario_path": scenario,
            "spool_dir": str(Path(tmp) / "spool"),
            "log_level": "WARNING",
        }
    )


@asynccontextmanager
async def _bench_stack(
    settings: Settings, opts: E2EOptions, portals: int, seen: list[DemoAnswerer] | None = None
) -> AsyncIterator[Stack]:
    """A fresh stack (Redis, `portals` portals, ingress, workers, and with `--answerer http`
    the answerer service, added to `seen`), cleaned up after."""
    with tempfile.TemporaryDirectory(prefix="ol-bench-e2e-") as tmp:
        async with AsyncExitStack() as scope:
            service = None
            if opts.answerer == "http":
                service = await scope.enter_async_context(demo_answerer())
                if seen is not None:
                    seen.append(service)
            run_settings = _bench_settings(settings, tmp, service.url if service else None)
            stack_opts = StackOptions(
                workers=opts.workers,
                in_process=opts.in_process,
                log_dir=Path(opts.log_dir or tmp),
                emulator={"portals": portals},
                bot=opts.bot,
            )
            try:
                async with run_stack(run_settings, stack_opts) as stack:
                    yield stack
            finally:
                if settings.redis_url:  # someone else's Redis: leave nothing of ours behind
                    from harness.demo.main import _forget  # the demo's own clean-up

                    await _forget(run_settings)


async def _one_run(settings: Settings, opts: E2EOptions, counts: list[int]) -> dict[str, Any]:
    """A fresh stack, one measured run, its summary (and what the answerer was asked)."""
    seen: list[DemoAnswerer] = []
    async with _bench_stack(settings, opts, len(counts), seen) as stack:
        summary = _summary(await _measure(stack, counts, opts), stack)
    summary["answerer"] = {"kind": opts.answerer}
    for service in seen:
        summary["answerer"] |= {"asked": service.asked, "by_action": dict(service.by_action)}
    return summary


async def run_bench(settings: Settings, opts: E2EOptions, console: Console) -> dict[str, Any]:
    """The main run (and with several portals the baseline first); writes JSON and chart."""
    if opts.portals <= 1:
        console.print(f"bench e2e: {opts.dialogs} dialogs, {opts.workers} workers, one portal")
        report = await _one_run(settings, opts, [opts.dialogs])
    else:
        quiet = max(1, opts.dialogs // (opts.portals - 1 + opts.burst))
        console.print(
            f"bench e2e: {opts.portals} portals; baseline {quiet} dialogs each, "
            f"then one portal bursts {quiet * opts.burst}"
        )
        baseline = await _one_run(settings, opts, [quiet] * opts.portals)
        report = await _one_run(settings, opts, [quiet * opts.burst] + [quiet] * (opts.portals - 1))
        report["fairness"] = _fairness(
            {"portals": baseline["per_portal"]}, {"portals": report["per_portal"]}
        )
        # the baseline's dialogs are proofs too: what broke there fails the run
        report["baseline"] = {k: baseline[k] for k in ("verdict", "reasons", "dialogs")}
        if baseline["reasons"]:
            report["reasons"] += [f"baseline: {r}" for r in baseline["reasons"]]
            report["verdict"] = "fail"
    if opts.light:
        light = await light_replies(lambda: _bench_stack(settings, opts, 1), opts.light)
        report["light"] = light
        report.update({k: light[k] for k in ("light_reply_p50_ms", "light_reply_p99_ms")})
        if light["failed"]:
            report["reasons"].append(f"light load: {light['failed']} clients got no answer")
            report["verdict"] = "fail"
    report.update(workers=opts.workers, portals=opts.portals, chart=opts.chart)
    title = f"bench e2e: {report['dialogs']} dialogs"
    samples, replies = report.pop("samples"), report.pop("reply_times")
    await asyncio.to_thread(chart, report, samples, replies, opts.chart, title)
    await asyncio.to_thread(write_json, opts.output, report)
    return report


def options(args: argparse.Namespace) -> E2EOptions:
    """The run the command line asks for."""
    return E2EOptions(
        dialogs=args.dialogs,
        workers=args.workers,
        portals=args.portals,
        burst=args.burst,
        arrivals_per_s=args.arrivals,
        timeout_s=args.timeout,
        log_dir=args.log_dir,
        bot=args.bot,
        idle_s=args.idle,
        light=args.light,
        answerer=args.answerer,
    )


def run_cli(opts: E2EOptions) -> int:
    """Run the bench as the command does: the table, the JSON on any exit, 0 only on a pass."""
    configure_logging("console", "WARNING")
    console = Console()
    try:
        report = asyncio.run(run_bench(load_settings(), opts, console))
    except (Exception, KeyboardInterrupt, asyncio.CancelledError) as exc:
        reason = f"did not finish: {why_stopped(exc, opts.timeout_s)}"
        failed = {"dialogs": opts.dialogs, "verdict": "fail", "reasons": [reason]}
        write_json(opts.output, failed)
        console.print(f"[red]bench e2e: {reason}[/]")
        console.print(f"wrote {opts.output}")
        return 1
    render(report, console)
    console.print(f"wrote {opts.output} and {opts.chart}")
    return 0 if report["verdict"] == "pass" else 1


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator bench e2e`."""
    return run_cli(options(args))

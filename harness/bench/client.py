"""`orchestrator bench client`: K processes hammer one emulated portal; how close to the ceiling?

The ceiling of one portal is its drain rate in HTTP requests/s (2/s standard) and 50× that in
method calls/s with batching. The bucket's initial burst would flatter the numbers, so rates are
measured after a warm-up in which the burst is spent, over the following `--duration` seconds.
Each contender (ours, then every peer) gets a fresh emulator so no bucket state leaks between them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from harness.bench.workers import (
    LoadSpec,
    WorkerFn,
    fast_bitrix24_list_worker,
    fast_bitrix24_worker,
    ours_worker,
)
from harness.provenance import write_json

BATCH_SIZE = 50
# Spawned workers import aiohttp/redis/pydantic; start them all at one agreed instant.
_STARTUP_S = 4.0


@dataclass(frozen=True)
class Measurement:
    """One contender's numbers over the measured window (after the warm-up)."""

    requests_per_s: float
    calls_per_s: float
    request_ratio: float
    call_ratio: float
    status_503: int
    status_429: int
    calls_ok: int
    errors: dict[str, int]


async def emulator_counters(base_url: str, member_id: str) -> dict[str, Any]:
    """GET /_emulator/counters of one portal."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/_emulator/counters", params={"member_id": member_id}) as resp,
    ):
        body: dict[str, Any] = await resp.json()
        return body


def _totals(counters: dict[str, Any], method: str) -> tuple[int, int, int, int]:
    """(accepted HTTP requests, successful calls of `method`, 503s, 429s) from the counters."""
    methods: dict[str, dict[str, int]] = counters.get("methods", {})
    s503 = sum(m.get("503", 0) for m in methods.values())
    s429 = sum(m.get("429", 0) for m in methods.values())
    row = methods.get(method.lower(), methods.get(method, {}))
    ok = row.get("calls", 0) - row.get("503", 0) - row.get("429", 0) - row.get("errors", 0)
    return int(counters.get("requests", 0)) - s503, ok, s503, s429


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.time()))


async def measure(
    worker: WorkerFn,
    spec: LoadSpec,
    *,
    base_url: str,
    processes: int,
    warmup_s: float,
    drain_per_s: float,
) -> Measurement:
    """Run `worker` in `processes` spawned processes against one portal and measure it."""
    loop = asyncio.get_running_loop()
    start_at = time.time() + _STARTUP_S + 0.5 * processes
    spec = LoadSpec(**{**asdict(spec), "start_at": start_at})
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        futures = [loop.run_in_executor(pool, worker, spec) for _ in range(processes)]
        await _sleep_until(start_at + warmup_s)
        before, t0 = await emulator_counters(base_url, spec.member_id), time.monotonic()
        # Sample just before the workers stop, so the window holds no wind-down.
        await _sleep_until(start_at + spec.duration_s - 0.1)
        after, t1 = await emulator_counters(base_url, spec.member_id), time.monotonic()
        results = await asyncio.gather(*futures)
    final = await emulator_counters(base_url, spec.member_id)
    req0, ok0, _, _ = _totals(before, spec.method)
    req1, ok1, _, _ = _totals(after, spec.method)
    _, calls_ok, s503, s429 = _totals(final, spec.method)
    window = max(t1 - t0, 1e-9)
    errors: dict[str, int] = {}
    for result in results:
        for name, count in result["errors"].items():
            errors[name] = errors.get(name, 0) + count
    rps, cps = (req1 - req0) / window, (ok1 - ok0) / window
    return Measurement(
        requests_per_s=round(rps, 3),
        calls_per_s=round(cps, 2),
        request_ratio=round(rps / drain_per_s, 3),
        call_ratio=round(cps / (drain_per_s * BATCH_SIZE), 3),
        status_503=s503,
        status_429=s429,
        calls_ok=calls_ok,
        errors=errors,
    )


async def _contender(
    worker: WorkerFn, args: argparse.Namespace, redis_url: str, coalesce: bool
) -> Measurement:
    from emulator.server import EmulatorConfig, run_emulator

    async with run_emulator(EmulatorConfig(plan=args.plan)) as emu:
        creds = emu.credentials
        spec = LoadSpec(
            webhook_url=creds["webhook_url"],
            member_id=creds["member_id"],
            redis_url=redis_url,
            key_prefix=f"bench{uuid.uuid4().hex[:8]}",
            method=args.method,
            params={"ID": 1},
            duration_s=args.warmup + args.duration,
            concurrency=args.concurrency,
            coalesce=coalesce,
            plan=args.plan,
        )
        # the ceiling is the portal's own bucket as the emulator plays it, not our client's
        # table of plans: a client that misread the plan would otherwise grade itself
        bucket = emu.portals[0].bucket
        return await measure(
            worker,
            spec,
            base_url=emu.url,
            processes=args.processes,
            warmup_s=args.warmup,
            drain_per_s=bucket.drain_per_s,
        )


def _portal_bucket(plan: str) -> tuple[float, float]:
    """The bucket the emulated portal plays for `plan` (its capacity, its drain per second)."""
    from emulator.limits import PLANS as PORTAL_PLANS

    capacity, drain = PORTAL_PLANS[plan]
    return float(capacity), float(drain)


async def run_bench(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    """Ours (coalescing on), ours without coalescing, then fast_bitrix24 (single calls, and
    lists of 50 items, its own batching); the report dict."""
    ours = await _contender(ours_worker, args, redis_url, coalesce=True)
    ours_single = await _contender(ours_worker, args, redis_url, coalesce=False)
    peers: dict[str, Measurement] = {"ours_no_coalescing": ours_single}
    if not args.no_peers:
        peers["fast_bitrix24"] = await _contender(
            fast_bitrix24_worker, args, redis_url, coalesce=False
        )
        peers["fast_bitrix24_lists"] = await _contender(
            fast_bitrix24_list_worker, args, redis_url, coalesce=False
        )
    capacity, drain = _portal_bucket(args.plan)
    return {
        **asdict(ours),
        "peers": {name: asdict(m) for name, m in peers.items()},
        "setup": {
            "plan": args.plan,
            "bucket_capacity": capacity,
            "drain_per_s": drain,
            "processes": args.processes,
            "concurrency_per_process": args.concurrency,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "method": args.method,
            "ceiling": f"{drain} requests/s and {drain * BATCH_SIZE} calls/s, measured after "
            f"the warm-up (the bucket's initial burst is spent before the window)",
        },
    }


def print_table(report: dict[str, Any]) -> None:
    """The side-by-side table (rich)."""
    from rich.console import Console
    from rich.table import Table

    setup = report["setup"]
    table = Table(
        title=f"bench client: {setup['processes']} processes, one {setup['plan']} "
        f"portal, {setup['duration_s']} s after {setup['warmup_s']} s warm-up"
    )
    for column in (
        "client",
        "requests/s",
        "÷ ceiling",
        "calls/s",
        "÷ (ceiling×50)",
        "503",
        "429",
        "client errors",
    ):
        table.add_column(column, justify="right" if column != "client" else "left")
    rows = [("ours (coalescing)", report), *report["peers"].items()]
    for name, m in rows:
        errors = ", ".join(f"{k}:{v}" for k, v in m["errors"].items()) or "-"
        table.add_row(
            name,
            f"{m['requests_per_s']:.2f}",
            f"{m['request_ratio']:.3f}",
            f"{m['calls_per_s']:.1f}",
            f"{m['call_ratio']:.3f}",
            str(m["status_503"]),
            str(m["status_429"]),
            errors,
        )
    console = Console(width=max(Console().width, 110))
    console.print(table)
    console.print(f"ceiling: {setup['ceiling']}")
    console.print("503/429 and rates come from the emulator's counters, not from the clients.")


def cli_main(args: argparse.Namespace) -> int:
    """Entry point of `orchestrator bench client`."""
    from orchestrator.redis.server import EmbeddedRedis
    from orchestrator.settings import load_settings

    redis_url = args.redis_url or load_settings().redis_url
    if redis_url:
        report = asyncio.run(run_bench(args, redis_url))
    else:
        with EmbeddedRedis() as server:
            report = asyncio.run(run_bench(args, server.url))
    print_table(report)
    write_json(args.output, report)
    print(f"wrote {args.output}")
    # The targets: requests at >= 0.95 of the ceiling with no 503, calls at >= 0.9 of 50x that.
    ok = (
        report["request_ratio"] >= 0.95
        and report["status_503"] == 0
        and report["call_ratio"] >= 0.9
    )
    return 0 if ok else 1

"""`orchestrator bench ingress`: accepted events/s of one ingress process, side by side with two
baselines in the same run, and the dispatch latency from receipt to the handler starting.

    bare      an aiohttp handler that only answers 200
    durable   an aiohttp handler that reads the form and RPUSHes the body (one Redis write)
    ingress   `orchestrator ingress`: decode, validate, verify the token, dedup + append +
              schedule in one Lua call

Each server is its own process; all three get the same closed-loop load (same connections,
same duration, the same event template, each request a distinct event) from a separate
process: wrk when it is installed, else this process's aiohttp client. Each round also records
the CPU per request of the server and of the generator: where the generator spends more, it
is the ceiling of that number (the bare server under the aiohttp client, typically).
Dispatch latency runs the ingress plus one `orchestrator worker` whose handler records
`now - received_ms` when `decide` starts, at a paced rate (the aiohttp client, open loop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from rich.console import Console
from rich.table import Table

from harness.bench.load import (
    DOMAIN,
    MEMBER,
    TOKEN,
    Bodies,
    LoadResult,
    closed_loop,
    paced,
    percentile,
    wait_ready,
)
from harness.bench.wrk import available as wrk_available
from harness.bench.wrk import wrk_closed_loop
from harness.provenance import write_json
from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.records import EffectRecord, StoredEvent
from orchestrator.pipeline.runner import Decision, FollowUp
from orchestrator.redis.client import aw, open_client
from orchestrator.redis.server import EmbeddedRedis
from orchestrator.settings import Settings, load_settings

__all__ = ["LatencyHandler", "cli_main", "latency_handler"]


# --- the bench's dialog handler (runs inside `orchestrator worker`) --------------------------


class LatencyHandler:
    """Records, per event, the ms from ingress receipt to `decide` starting."""

    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self.redis = redis
        self.key = key

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        latency_ms = time.time() * 1000 - event.received_ms
        effect = EffectRecord(f"{event.chat_id}:{event.seq}", "latency", {"ms": latency_ms})
        return Decision(b"", [effect])

    async def execute(self, effect: EffectRecord) -> Sequence[FollowUp] | None:
        await aw(self.redis.rpush(self.key, str(effect.payload["ms"])))
        return None


def latency_handler(settings: Settings, redis: Any) -> LatencyHandler:
    """Handler factory for the worker (`--handler harness.bench.ingress:latency_handler`)."""
    return LatencyHandler(redis, f"{settings.key_prefix}:bench:dispatch")


# --- servers ------------------------------------------------------------------------------------


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def _serve_bare(port: int) -> None:
    app = web.Application()
    app.router.add_post("/b24/events", _ok)
    app.router.add_get("/healthz", _ok)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _serve_durable(port: int, redis_url: str, key: str) -> None:
    client = open_client(redis_url)  # the ingress's client: same packing, a fair baseline

    async def handle(request: web.Request) -> web.Response:
        await request.post()  # parse the same form
        await aw(client.rpush(key, await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/b24/events", handle)
    app.router.add_get("/healthz", _ok)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _process(target: Any, *args: Any) -> Iterator[int]:
    proc = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    try:
        yield int(proc.pid or 0)
    finally:
        proc.kill()
        proc.join(10)


@contextlib.contextmanager
def _command(argv: list[str], env: dict[str, str]) -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(10)


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far; None where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class _Round:
    """One closed-loop run, with the CPU the server and the generator spent per request."""

    load: LoadResult
    server_cpu_us: float | None  # whichever side spends more per request is the run's ceiling
    generator_cpu_us: float


async def _measured(url: str, pid: int, bodies: Bodies, args: argparse.Namespace) -> _Round:
    if args.generator == "wrk":
        await wait_ready(url)
        await wrk_closed_loop(url, bodies, args.connections, 1.0)  # warm-up, not counted
        server = _cpu_s(pid)
        run = await wrk_closed_loop(url, bodies, args.connections, args.duration)
        load, requests, generator_s = run.load, run.requests, run.cpu_s
    else:
        sent, server, started = bodies.n, _cpu_s(pid), time.process_time()
        load = await closed_loop(url, bodies, args.connections, args.duration)
        requests, generator_s = bodies.n - sent, time.process_time() - started
    server_after = _cpu_s(pid)
    requests = max(1, requests)
    server_us = (
        None
        if server is None or server_after is None
        else round((server_after - server) / requests * 1e6, 1)
    )
    return _Round(load, server_us, round(generator_s / requests * 1e6, 1))


# --- the run ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _redis(url: str | None) -> AsyncIterator[str]:
    if url:
        yield url
        return
    with EmbeddedRedis() as server:
        yield server.url


async def _cleanup(
    client: aioredis.Redis, prefix: str, *, keep: frozenset[str] = frozenset()
) -> None:
    """Delete the run's keys and arq jobs (all but `keep`)."""
    jobs = await aw(client.zrange(f"{prefix}:queue", 0, -1))
    if jobs:
        await client.delete(*(b"arq:job:" + j for j in jobs))
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        if key.decode() not in keep:
            await client.delete(key)


async def run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """All phases; returns the report."""
    run_id = uuid.uuid4().hex
    prefix = f"bench{run_id[:8]}"
    async with _redis(args.redis_url or settings.redis_url) as redis_url:
        client = open_client(redis_url)
        try:
            await Portals(client, Keys(prefix)).register(MEMBER, DOMAIN, TOKEN, source="bench")
            spool = tempfile.mkdtemp(prefix="ol-bench-spool-")
            env = {
                **os.environ,
                "REDIS_URL": redis_url,
                "KEY_PREFIX": prefix,
                "QUEUE_NAME": f"{prefix}:queue",
                "LOG_LEVEL": "WARNING",
                "SPOOL_DIR": spool,
            }
            results = await _throughput(args, run_id, redis_url, prefix, env)
            # drop the throughput phase's queued work, keep the portal
            keys = Keys(prefix)
            await _cleanup(client, prefix, keep=frozenset({keys.portals, keys.portal(MEMBER)}))
            results.update(await _dispatch(args, run_id, client, prefix, env))
        finally:
            await _cleanup(client, prefix)
            await client.aclose()
    return results


async def _throughput(
    args: argparse.Namespace, run_id: str, redis_url: str, prefix: str, env: dict[str, str]
) -> dict[str, Any]:
    """All three servers up at once; rounds alternate the load between them (the machine's
    noise then hits each alike) and each server's median round counts."""
    ports = {name: _free_port() for name in ("bare", "durable", "ingress")}
    bodies = Bodies(run_id)
    runs: dict[str, list[_Round]] = {name: [] for name in ports}
    ingress = ["ingress", "--host", "127.0.0.1", "--port", str(ports["ingress"])]
    with (
        _process(_serve_bare, ports["bare"]) as bare_pid,
        _process(_serve_durable, ports["durable"], redis_url, f"{prefix}:bench:durable") as dpid,
        _command(ingress, env) as ingress_pid,
    ):
        pids = {"bare": bare_pid, "durable": dpid, "ingress": ingress_pid}
        for _ in range(args.rounds):
            for name, port in ports.items():
                url = f"http://127.0.0.1:{port}"
                runs[name].append(await _measured(url, pids[name], bodies, args))
    ours, bare, durable = (_median(runs[n]) for n in ("ingress", "bare", "durable"))
    return {
        "events_per_s": round(ours.load.per_s, 1),
        "bare_per_s": round(bare.load.per_s, 1),
        "durable_baseline_per_s": round(durable.load.per_s, 1),
        "ratio_to_durable_baseline": round(ours.load.per_s / durable.load.per_s, 3),
        "ratio_to_bare": round(ours.load.per_s / bare.load.per_s, 3),
        "ack_p50_ms": round(ours.load.p50_ms, 2),
        "ack_p99_ms": round(ours.load.p99_ms, 2),
        # per request, median round: server CPU vs the load generator's own CPU
        "cpu_us_per_request": {
            name: {"server": r.server_cpu_us, "generator": r.generator_cpu_us}
            for name, r in (("ingress", ours), ("bare", bare), ("durable", durable))
        },
        "errors": sum(r.load.errors for rs in runs.values() for r in rs),
        "rounds": {name: [asdict(r) for r in rs] for name, rs in runs.items()},
        "generator": args.generator,
        "connections": args.connections,
        "duration_s": args.duration,
    }


def _median(results: list[_Round]) -> _Round:
    return sorted(results, key=lambda r: r.load.per_s)[len(results) // 2]


async def _dispatch(
    args: argparse.Namespace, run_id: str, client: aioredis.Redis, prefix: str, env: dict[str, str]
) -> dict[str, Any]:
    port = _free_port()
    key = f"{prefix}:bench:dispatch"
    worker = ["worker", "--handler", "harness.bench.ingress:latency_handler"]
    with (
        _command(["ingress", "--host", "127.0.0.1", "--port", str(port)], env),
        _command(worker, env),
    ):
        # arq records its health at its first poll: from then on the worker takes jobs
        await _until(lambda: _exists(client, f"{prefix}:queue:health-check"), within_s=30)
        sent = await paced(
            f"http://127.0.0.1:{port}",
            Bodies(uuid.uuid4().hex, 50),
            args.dispatch_rate,
            args.dispatch_seconds,
        )
        await _until(lambda: _handled(client, key, sent), within_s=30)
    values = [float(v) for v in await aw(client.lrange(key, 0, -1))]
    return {
        "dispatch_rate": args.dispatch_rate,
        "dispatch_events": sent,
        "dispatch_handled": len(values),
        "dispatch_p50_ms": round(percentile(values, 0.5), 2),
        "dispatch_p99_ms": round(percentile(values, 0.99), 2),
        "dispatch_mean_ms": round(statistics.fmean(values), 2) if values else None,
    }


async def _exists(client: aioredis.Redis, key: str) -> bool:
    return bool(await aw(client.exists(key)))


async def _handled(client: aioredis.Redis, key: str, sent: int) -> bool:
    return int(await aw(client.llen(key))) >= sent


async def _until(predicate: Callable[[], Awaitable[bool]], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)


def _print(report: dict[str, Any]) -> None:
    table = Table("measure", "value", "target", title="orchestrator bench ingress")
    rows = [
        ("ingress accepted events/s", report["events_per_s"], ""),
        ("bare aiohttp 200 /s", report["bare_per_s"], ""),
        ("durable baseline (form + RPUSH) /s", report["durable_baseline_per_s"], ""),
        ("ratio to durable baseline", report["ratio_to_durable_baseline"], ">= 0.7"),
        ("ratio to bare", report["ratio_to_bare"], ""),
        ("ack p99 ms", report["ack_p99_ms"], ""),
        (f"dispatch p50 ms @ {report['dispatch_rate']:g}/s", report["dispatch_p50_ms"], "<= 20"),
        (f"dispatch p99 ms @ {report['dispatch_rate']:g}/s", report["dispatch_p99_ms"], "<= 60"),
    ]
    for server, cpu in report["cpu_us_per_request"].items():
        rows.append((f"{server}: CPU us/request server / generator", _pair(cpu), ""))
    for name, value, target in rows:
        table.add_row(name, str(value), target)
    Console().print(table)


def _pair(cpu: dict[str, float | None]) -> str:
    """`server / generator`, flagged when the generator is the side that limits the rate."""
    server, generator = cpu["server"], cpu["generator"]
    limited = server is not None and generator is not None and generator >= server
    return f"{server} / {generator}" + (" (generator-bound)" if limited else "")


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator bench ingress`."""
    settings = load_settings()
    if args.generator == "auto":
        args.generator = "wrk" if wrk_available() else "python"
    report = asyncio.run(run(args, settings))
    report["cpus"] = os.cpu_count()
    write_json(args.output, report)
    _print(report)
    return 0

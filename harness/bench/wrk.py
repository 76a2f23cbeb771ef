"""The closed-loop load of `orchestrator bench ingress` from wrk (C, with a Lua body per request).

The Python generator spends more CPU per request than the bare aiohttp server it measures, so
on a small machine the bare rate is the generator's ceiling, not the framework's. wrk costs a
fraction of that, which leaves the servers the CPU. Every request still carries a distinct
event (its own MESSAGE_ID), as with the Python generator.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.bench.load import Bodies, LoadResult

__all__ = ["WrkRun", "available", "wrk_closed_loop"]

# Thread-local counters; `tid` (set per thread by `setup`) keeps the threads' ids apart.
_SCRIPT = """
local template, base, dialogs = nil, 0, 500
local counter, tid = 0, 0
local n_threads = 0
function setup(thread)
  thread:set("tid", n_threads)
  n_threads = n_threads + 1
end
function init(args)
  template = io.open(args[1]):read("*a")
  base = tonumber(args[2])
  dialogs = tonumber(args[3])
  tid = tonumber(wrk.thread:get("tid"))
end
local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
function request()
  counter = counter + 1
  local mid = string.format("%d", base + tid * 10000000 + counter)
  local chat = tostring(counter % dialogs + 1)
  local body = (template:gsub("__MID__", mid)):gsub("__CHAT__", chat)
  return wrk.format("POST", "/b24/events", headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def available() -> bool:
    """Whether wrk is on PATH."""
    return shutil.which("wrk") is not None


@dataclass
class WrkRun:
    """One wrk run: what it measured, how many requests it sent, the CPU it spent itself."""

    load: LoadResult
    requests: int
    cpu_s: float


async def wrk_closed_loop(url: str, bodies: Bodies, connections: int, duration_s: float) -> WrkRun:
    """`connections` connections posting back to back for `duration_s` (no warm-up here)."""
    with tempfile.TemporaryDirectory(prefix="ol-wrk-") as tmp:
        folder = Path(tmp)
        (folder / "load.lua").write_text(_SCRIPT, encoding="utf-8")
        template = bodies.template.replace("%40MID%40", "__MID__")
        (folder / "body.txt").write_text(template.replace("%40CHAT%40", "__CHAT__"))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        report = await _run(folder, url, connections, duration_s, bodies.dialogs)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = report["duration_us"] / 1e6
    ok = report["requests"] - report["non_2xx"]
    result = LoadResult(
        ok / seconds,
        ok,
        report["non_2xx"] + report["socket_errors"],
        report["p50_us"] / 1000,
        report["p99_us"] / 1000,
    )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkRun(result, report["requests"], cpu)


async def _run(
    folder: Path, url: str, connections: int, duration_s: float, dialogs: int
) -> dict[str, int]:
    base = random.randrange(1, 10**6) * 10**9  # ids of each run apart (2**53 > 10**15)
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",  # one thread: the machine's other cores are the servers'
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",  # whole seconds
        "-s",
        str(folder / "load.lua"),
        f"{url}/b24/events",
        "--",
        str(folder / "body.txt"),
        str(base),
        str(dialogs),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {err.decode(errors='replace')[:300]}")
    last = out.decode().strip().splitlines()[-1]
    report: dict[str, int] = json.loads(last)
    return report

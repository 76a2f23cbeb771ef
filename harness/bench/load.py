"""Load for `orchestrator bench ingress`: distinct Bitrix24 events, closed-loop and paced."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass

import aiohttp

from orchestrator.events.formdata import encode_form

__all__ = [
    "DOMAIN",
    "FORM",
    "MEMBER",
    "TOKEN",
    "Bodies",
    "LoadResult",
    "closed_loop",
    "paced",
    "percentile",
    "wait_ready",
]

MEMBER, TOKEN, DOMAIN = "bench-portal", "bench-token", "bench.bitrix24.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Bodies:
    """Distinct events from one encoded template (cheap enough not to limit the client)."""

    def __init__(self, run: str, dialogs: int = 500) -> None:
        payload = {
            "event": "ONIMBOTMESSAGEADD",
            "ts": "1767225601",
            "data": {
                "PARAMS": {
                    "MESSAGE": "bench",
                    "MESSAGE_ID": "@MID@",
                    "CHAT_ID": "@CHAT@",
                    "MESSAGE_TYPE": "L",
                }
            },
            "auth": {"domain": DOMAIN, "member_id": MEMBER, "application_token": TOKEN},
        }
        self.template = encode_form(payload).decode()
        self.dialogs = dialogs
        self.base = int(uuid.UUID(run).int % 10**9) * 10**7
        self.n = 0

    def next(self) -> bytes:
        self.n += 1
        return (
            self.template.replace("%40MID%40", str(self.base + self.n))
            .replace("%40CHAT%40", str(self.n % self.dialogs + 1))
            .encode()
        )


@dataclass
class LoadResult:
    """What one closed-loop run measured."""

    per_s: float
    ok: int
    errors: int
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_ready(url: str, within_s: float = 20.0) -> None:
    """Until `url`/healthz answers 200 (a server just started)."""
    async with aiohttp.ClientSession() as http:
        await _wait_ready(http, url, within_s)


async def _wait_ready(http: aiohttp.ClientSession, url: str, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{url}/healthz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def closed_loop(
    url: str, bodies: Bodies, connections: int, duration_s: float, warmup_s: float = 1.0
) -> LoadResult:
    """`connections` clients posting back to back; counts only the window after warm-up."""
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as http:
        await _wait_ready(http, url)
        start = time.perf_counter()
        window = (start + warmup_s, start + warmup_s + duration_s)

        async def client() -> None:
            while (now := time.perf_counter()) < window[1]:
                async with http.post(f"{url}/b24/events", data=bodies.next(), headers=FORM) as resp:
                    await resp.read()
                done = time.perf_counter()
                if done >= window[0] and done < window[1]:
                    counts["ok" if resp.status == 200 else "errors"] += 1
                    latencies.append((done - now) * 1000)

        await asyncio.gather(*(client() for _ in range(connections)))
    return LoadResult(
        counts["ok"] / duration_s,
        counts["ok"],
        counts["errors"],
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
    )


async def paced(url: str, bodies: Bodies, rate: float, duration_s: float) -> int:
    """Open loop: one event every 1/rate s, whatever the answers; returns how many were 200."""
    ok = 0
    async with aiohttp.ClientSession() as http:
        await _wait_ready(http, url)

        async def one() -> None:
            nonlocal ok
            async with http.post(f"{url}/b24/events", data=bodies.next(), headers=FORM) as r:
                ok += r.status == 200

        start = time.perf_counter()
        tasks = []
        for i in range(int(rate * duration_s)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return ok

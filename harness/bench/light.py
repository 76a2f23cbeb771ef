"""Reply latency at light load: one dialog at a time, on a stack of its own.

The loaded run measures replies while the portal's request budget is the bottleneck. Here the
next client starts only when the last one's session is closed and the portal's leaky bucket
has drained what the dialogs before it put in: the simulated people type
within milliseconds, so back-to-back dialogs would still ask for more than the 2 requests/s a
portal grants, and every reply would wait for the budget. What is left is our own path: the
portal's push (v1) or offline notice and drain (v2), the ingest, the queue, the decision and
the REST round trip. The first dialogs warm the stack up (tokens, caches, connections, the bot
directory) and are not counted; the personas are those that end by themselves (no silence
timer to wait out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from harness.bench.e2e_watch import step_percentiles
from harness.bench.play import portal_plays, start_people, stop_people
from harness.demo.actors import ClientRun, Persona
from harness.demo.stack import Stack

__all__ = ["LIGHT_PERSONAS", "WARM_UP", "light_replies"]

WARM_UP = 2  # dialogs played first and not counted
LIGHT_PERSONAS = (Persona.DATA, Persona.OPERATOR, Persona.FAQ)

StackFactory = Callable[[], AbstractAsyncContextManager[Stack]]


async def light_replies(new_stack: StackFactory, dialogs: int) -> dict[str, Any]:
    """Play `dialogs` clients one after another (after WARM_UP more) on a fresh one-portal
    stack; the reply latency they saw, and how many of them failed."""
    async with new_stack() as stack:
        [play] = portal_plays(stack, [0])
        play.runs = [
            ClientRun(index, LIGHT_PERSONAS[index % len(LIGHT_PERSONAS)])
            for index in range(WARM_UP + dialogs)
        ]
        stop = asyncio.Event()
        start_people([play], stop)
        bucket = play.runtime.bucket  # the portal's own leaky bucket (in this process)
        counted: list[float] = []
        try:
            for run in play.runs:
                # until what the last dialogs spent has drained (the bucket leaks linearly)
                await asyncio.sleep(max(0.0, bucket.level - 1) / bucket.drain_per_s)
                before = len(play.actors.step_s)
                await play.actors.client(run)
                if run.index >= WARM_UP:
                    counted += play.actors.step_s[before:]
        finally:
            await stop_people([play], stop)
    steps = step_percentiles(counted)
    return {
        "dialogs": dialogs,
        "warm_up": WARM_UP,
        "replies": steps["count"],
        "light_reply_p50_ms": steps["p50_ms"],
        "light_reply_p99_ms": steps["p99_ms"],
        "failed": sum(1 for run in play.runs[WARM_UP:] if run.error),
    }

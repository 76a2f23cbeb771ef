"""Many dialogs on one or several emulated portals: per-portal people, the launcher and the checks
at the end, shared by `orchestrator bench e2e` and `orchestrator chaos`.

Each portal gets its own simulated clients, operators and clock (the demo's actors) talking to
that portal through the control API; each portal's clients arrive at a steady rate, in
proportion to its dialogs, over one common window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.demo.actors import Actors, ClientRun, client_runs
from harness.demo.control import EmulatorControl, PortalView
from harness.demo.diagnose import pipeline_notes
from harness.demo.report import Verdict, verify
from harness.demo.stack import Stack
from orchestrator.bitrix.batch import INTAKE_METHODS
from orchestrator.dialog.state import TERMINAL, DialogState
from orchestrator.pipeline.store import Store

__all__ = [
    "POLLING_METHODS",
    "PortalPlay",
    "calls_by_method",
    "dialog_states",
    "launch",
    "method_calls",
    "polling_budget",
    "portal_plays",
    "start_people",
    "stop_people",
    "verdicts",
    "wait_terminal",
    "walked_away",
]


@dataclass
class PortalPlay:
    """One portal's side of a run: its people, its clients and when its dialogs ran."""

    member_id: str
    runtime: Any  # emulator.runtime.PortalRuntime (in this process)
    control: EmulatorControl
    actors: Actors
    runs: list[ClientRun]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    first_arrival: float | None = None  # monotonic
    all_terminal: float | None = None  # monotonic: when every dialog was seen terminal
    people: list[asyncio.Task[None]] = field(default_factory=list)


def portal_plays(stack: Stack, counts: list[int]) -> list[PortalPlay]:
    """A play per emulated portal, `counts[i]` clients on portal i."""
    plays = []
    for runtime, count in zip(stack.emu.portals, counts, strict=True):
        control = EmulatorControl(stack.http, stack.emu.url, runtime.identity.member_id)
        actors = Actors(control, PortalView(runtime.portal))
        plays.append(PortalPlay(runtime.identity.member_id, runtime, control, actors, []))
        plays[-1].runs = client_runs(count)
    return plays


def start_people(plays: list[PortalPlay], stop: asyncio.Event) -> None:
    """Each portal's operators and clock, until `stop` is set."""
    for play in plays:
        play.people = [
            asyncio.create_task(play.actors.operators(stop)),
            asyncio.create_task(play.actors.clock(stop)),
        ]


async def stop_people(plays: list[PortalPlay], stop: asyncio.Event) -> None:
    """Stop operators, clocks and every client still playing."""
    stop.set()
    tasks = [t for p in plays for t in (*p.people, *p.tasks)]
    for play in plays:
        for task in play.tasks:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def launch(plays: list[PortalPlay], arrivals_per_s: float) -> None:
    """Start every client: with equal portals `arrivals_per_s` overall; a portal with k times the
    fewest dialogs arrives k times as fast, so every portal's arrivals span the same window and
    a bursting portal adds its extra load on top of the others' unchanged schedule."""
    fewest = min(len(p.runs) for p in plays if p.runs)
    unit = arrivals_per_s / len(plays)
    await asyncio.gather(*(_arrive(p, unit * len(p.runs) / fewest) for p in plays if p.runs))


async def _arrive(play: PortalPlay, per_s: float) -> None:
    play.first_arrival = time.monotonic()
    for run in play.runs:
        play.tasks.append(asyncio.create_task(play.actors.client(run)))
        await asyncio.sleep(1 / per_s)


async def dialog_states(stack: Stack, play: PortalPlay) -> dict[int, DialogState | None]:
    """Our committed state of each of the portal's dialogs (one pipelined read)."""
    store = Store(stack.redis, stack.settings)
    chats = [run.chat_id for run in play.runs if run.chat_id]
    async with stack.redis.pipeline(transaction=False) as pipe:
        for chat_id in chats:
            pipe.hget(store.dialog(play.member_id, str(chat_id)).state, "data")
        raw = await pipe.execute()
    return {c: DialogState.from_json(r) if r else None for c, r in zip(chats, raw, strict=True)}


def _terminal(play: PortalPlay, states: dict[int, DialogState | None]) -> int:
    return sum(
        1 for r in play.runs if (s := states.get(r.chat_id)) is not None and s.status in TERMINAL
    )


def walked_away(plays: list[PortalPlay]) -> None:
    """Clients cut off (cancelled) or tired of waiting went quiet, as a person would: the bot's
    silence timer ends such a dialog, and the portal's clock (moved by the clock actor) then
    closes it unrated."""
    for play in plays:
        for run, task in zip(play.runs, play.tasks, strict=False):
            if (task.cancelled() or run.error) and run.chat_id:
                play.actors.quiet.add(run.chat_id)


async def wait_terminal(stack: Stack, plays: list[PortalPlay], within_s: float) -> int:
    """Poll until every started dialog is terminal (noting when each portal got there) or
    `within_s` passed; returns how many started dialogs are not terminal."""
    deadline = time.monotonic() + within_s
    while True:
        left = 0
        walked_away(plays)
        for play in plays:
            if play.all_terminal is not None:
                continue
            done = _terminal(play, await dialog_states(stack, play))
            started = sum(1 for run in play.runs if run.chat_id)
            if done == started and all(t.done() for t in play.tasks):
                play.all_terminal = time.monotonic()
            left += started - done
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


def method_calls(counters: dict[str, Any]) -> int:
    """Method calls the portal served (commands inside a batch each count; the batch does not)."""
    return sum(int(c.get("calls", 0)) for m, c in counters["methods"].items() if m != "batch")


def calls_by_method(counters: dict[str, Any]) -> dict[str, int]:
    """Where the method calls went, busiest first (lower-cased names; `batch` left out)."""
    calls: dict[str, int] = {}
    for method, row in counters["methods"].items():
        if method != "batch" and int(row.get("calls", 0)):
            calls[method.lower()] = calls.get(method.lower(), 0) + int(row["calls"])
    return dict(sorted(calls.items(), key=lambda kv: (-kv[1], kv[0])))


# The calls that only look for events (the fetcher's, the offline consumer's): what "polling"
# costs the portal's request budget.
POLLING_METHODS = INTAKE_METHODS


def polling_budget(
    counters: Sequence[dict[str, Any]],
    *,
    seconds: float,
    drain_per_s: float,
    before: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What polling cost the portals' request budget over `seconds` (since `before`, the same
    portals' counters at the window's start): polls sent as requests of their own (a poll inside
    a batch of the dialogs' calls costs none), as a share of the budget (drain rate × window,
    every portal) and of the requests made."""

    def tally(rows: Sequence[dict[str, Any]]) -> tuple[int, int, int]:
        polls = riding = 0
        for c in rows:
            for method, row in c["methods"].items():
                if method.lower() in POLLING_METHODS:
                    polls += int(row.get("calls", 0)) - int(row.get("nested", 0))
                    riding += int(row.get("nested", 0))
        return polls, riding, sum(int(c["requests"]) for c in rows)

    polls, riding, requests = tally(counters)
    if before is not None:
        p0, r0, q0 = tally(before)
        polls, riding, requests = polls - p0, riding - r0, requests - q0
    budget = seconds * drain_per_s * len(counters)
    return {
        "window_s": round(seconds, 1),
        "requests": requests,
        "polling_requests": polls,
        "polls_in_batches": riding,
        "budget_share_polling": round(polls / budget, 4) if budget else 0.0,
        "polling_share_of_requests": round(polls / requests, 4) if requests else 0.0,
    }


async def verdicts(stack: Stack, plays: list[PortalPlay]) -> list[Verdict]:
    """The demo's per-dialog agreement check, portal by portal."""
    found = []
    store = Store(stack.redis, stack.settings)
    for play in plays:
        states = await dialog_states(stack, play)
        verdict = verify(
            play.runs,
            states,
            await play.control.state(),
            await play.control.counters(),
            play.actors.step_s,
        )
        verdict.pipeline = await pipeline_notes(
            store, play.member_id, stack.settings.queue_name, states
        )
        found.append(verdict)
    return found

"""What `bench e2e` watches while it runs: each session's milestones on the wall clock, and a
once-a-second sample of throughput and queue depth for the chart (harness/bench/e2e_render.py).

The milestones are read from the in-process emulated portals (no REST calls, so watching costs
the portal's budget nothing):

    handoff    our bot put the session in the line's queue (waiting, no operator)
    accepted   a human operator took it
    finished   the session waits for the client's vote, or closed
    vote       the portal holds the head vote our bot saved
    lead       the portal holds our lead for the session (ORIGIN_ID member:chat:session)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from arq.constants import in_progress_key_prefix

from harness.bench.play import PortalPlay
from orchestrator.dialog.evaluation import ORIGINATOR_ID
from orchestrator.pipeline.keys import Keys
from orchestrator.settings import Settings

__all__ = ["Sample", "Sampler", "StepWatch", "drain_jobs"]

# (from, to) milestone pairs the report gives percentiles of, by name
STEPS = {
    "handoff_to_accepted": ("handoff", "accepted"),
    "finish_to_vote_saved": ("finished", "vote"),
    "finish_to_lead_created": ("finished", "lead"),
}


_VOTE_AFTER_CLOSE_S = 60.0  # how long a closed session is still watched for the head vote


@dataclass
class _PortalCursor:
    lead_cursor: int = 0
    closed: set[int] = field(default_factory=set)


@dataclass
class StepWatch:
    """Milestone times per (member_id, session id), polled from the portals."""

    plays: list[PortalPlay]
    marks: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)
    _cursors: dict[str, _PortalCursor] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event, every_s: float = 0.1) -> None:
        """Poll until `stop` is set."""
        while not stop.is_set():
            self.poll()
            await asyncio.sleep(every_s)
        self.poll()

    def poll(self) -> None:
        """Note the milestones reached since the last poll."""
        now = time.monotonic()
        for play in self.plays:
            cursor = self._cursors.setdefault(play.member_id, _PortalCursor())
            self._sessions(play, cursor, now)
            self._leads(play, cursor, now)

    def _sessions(self, play: PortalPlay, cursor: _PortalCursor, now: float) -> None:
        for s in list(play.runtime.portal.sessions.values()):
            if s.id in cursor.closed:
                continue
            m = self.marks.setdefault((play.member_id, s.id), {})
            if not s.closed and s.wait_answer and not s.operator_id:
                m.setdefault("handoff", now)
            if "handoff" in m and s.operator_id and not s.operator_is_bot:
                m.setdefault("accepted", now)
            if s.wait_vote or s.closed:
                m.setdefault("finished", now)
            if s.vote_head:
                m.setdefault("vote", now)
            if s.closed:
                # our bot saves the head vote after the client's vote closed the session
                closed_at = m.setdefault("closed", now)
                if "vote" in m or now - closed_at > _VOTE_AFTER_CLOSE_S:
                    cursor.closed.add(s.id)

    def _leads(self, play: PortalPlay, cursor: _PortalCursor, now: float) -> None:
        leads = play.runtime.portal.leads
        while (lead := leads.get(cursor.lead_cursor + 1)) is not None:
            cursor.lead_cursor += 1
            fields = lead.fields
            origin = str(fields.get("ORIGIN_ID", ""))
            if fields.get("ORIGINATOR_ID") == ORIGINATOR_ID and origin.count(":") == 2:
                member_id, _, session_id = origin.split(":")
                self.marks.setdefault((member_id, int(session_id)), {}).setdefault("lead", now)

    def durations(self, start: str, end: str, member_id: str | None = None) -> list[float]:
        """Seconds from milestone `start` to `end` per session (a lead made before the finish
        counts as 0: it was ready when the dialog ended)."""
        return [
            max(0.0, m[end] - m[start])
            for (member, _), m in self.marks.items()
            if start in m and end in m and (member_id is None or member == member_id)
        ]


@dataclass
class Sample:
    """One second of the run."""

    t: float  # seconds since the run started
    requests: int  # REST HTTP requests so far, every portal
    closed: int  # sessions closed on the portals so far
    pending: int  # dialogs with work scheduled (our pending set), being drained or not
    waiting_jobs: int  # drain jobs in arq's queue not started yet
    running_jobs: int  # drain jobs arq started and has not finished (still in its queue)


async def drain_jobs(redis: aioredis.Redis, queue: str) -> tuple[int, int]:
    """Drain jobs in arq's queue as (waiting, running). arq takes a job out of its queue only
    once it finished it, so a ZCARD counts the running drains as queued too: a dialog being
    drained has its running job there, plus the continuation a handback queued before that job
    returned. Running = marked by arq's in-progress key."""
    job_ids = await redis.zrange(queue, 0, -1)
    if not job_ids:
        return 0, 0
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(in_progress_key_prefix + job_id.decode())
        marks = await pipe.execute()
    running = sum(1 for mark in marks if mark)
    return len(job_ids) - running, running


@dataclass
class Sampler:
    """Samples throughput and queue depth once a second."""

    plays: list[PortalPlay]
    redis: aioredis.Redis
    settings: Settings
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)

    async def run(self, stop: asyncio.Event, every_s: float = 1.0) -> None:
        """Sample until `stop` is set."""
        keys = Keys(self.settings.key_prefix)
        while not stop.is_set():
            pending = int(await self.redis.zcard(keys.pending))
            waiting, running = await drain_jobs(self.redis, self.settings.queue_name)
            self.samples.append(
                Sample(
                    time.monotonic() - self.started,
                    sum(p.runtime.requests for p in self.plays),
                    sum(
                        1
                        for p in self.plays
                        for s in p.runtime.portal.sessions.values()
                        if s.closed
                    ),
                    pending,
                    waiting,
                    running,
                )
            )
            await asyncio.sleep(every_s)

    def requests_between(self, start: float, end: float, burst: float) -> tuple[int, float]:
        """REST requests made between two run times (s), and the exact span sampled; the span
        starts once `burst` requests were made (the portal's bucket starts empty, so its first
        requests pass at once and are not the sustained rate)."""
        inside = [s for s in self.samples if start <= s.t <= end and s.requests >= burst]
        if len(inside) < 2:
            return 0, 0.0
        return inside[-1].requests - inside[0].requests, inside[-1].t - inside[0].t


def step_percentiles(values: list[float]) -> dict[str, Any]:
    """p50 and p99 in ms (None without samples) and the sample count."""
    from harness.demo.report import percentile

    p50, p99 = percentile(values, 50), percentile(values, 99)
    return {
        "count": len(values),
        "p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "p99_ms": None if p99 is None else round(p99 * 1000, 1),
    }

"""The dead-letter queue: a Redis stream of events (and effects) that failed K times.

The runner moves entries in (orchestrator/pipeline/lua/dead_event.lua, dead_effect.lua), capping the
stream at about `Settings.dlq_max_len` entries (the oldest are trimmed first); this module
lists, shows, replays (back to the dialog's inbox or outbox, and schedules it) and purges.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from orchestrator.pipeline.keys import Keys, job_key
from orchestrator.pipeline.queue import JOB_TTL_MS, new_drain_job, now_ms
from orchestrator.pipeline.scripts import Scripts
from orchestrator.settings import Settings

__all__ = ["DeadLetter", "DeadLetters"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DLQ entry."""

    entry_id: str
    kind: str  # "event" or "effect"
    member_id: str
    chat_id: str
    error: str
    attempts: int
    failed_ms: int
    ref: str  # the event's seq or the effect id
    entry: str  # the inbox entry or the effect record, raw

    @classmethod
    def from_stream(cls, entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
        """Build from an XRANGE item."""
        f = {k.decode(): v.decode() for k, v in fields.items()}
        kind = f.get("kind", "event")
        return cls(
            entry_id.decode(),
            kind,
            f.get("member_id", ""),
            f.get("chat_id", ""),
            f.get("error", ""),
            int(f.get("attempts", "0")),
            int(f.get("failed_ms", "0")),
            f.get("seq", "") if kind == "event" else f.get("effect_id", ""),
            f.get("entry", ""),
        )


class DeadLetters:
    """DLQ operations."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.queue_name = settings.queue_name
        self.retention_ms = settings.dialog_retention_s * 1000
        self.scripts = Scripts(redis)

    async def entries(self, limit: int = 50) -> list[DeadLetter]:
        """Oldest first."""
        items = await self.redis.xrange(self.keys.dlq, count=limit)
        return [DeadLetter.from_stream(i, f) for i, f in items]

    async def count(self) -> int:
        """How many entries wait."""
        return int(await self.redis.xlen(self.keys.dlq))

    async def get(self, entry_id: str) -> DeadLetter | None:
        """One entry, or None."""
        items = await self.redis.xrange(self.keys.dlq, entry_id, entry_id)
        return DeadLetter.from_stream(*items[0]) if items else None

    async def replay(self, entry_id: str) -> bool:
        """Put one entry back into its dialog and schedule it; False if it is gone."""
        letter = await self.get(entry_id)
        if letter is None:
            return False
        d = self.keys.dialog(letter.member_id, letter.chat_id)
        now = now_ms()
        job = new_drain_job(letter.member_id, letter.chat_id, now)
        reply = await self.scripts.run(
            "replay",
            [
                self.keys.dlq,
                d.inbox,
                d.seq,
                d.outbox,
                d.fxstatus,
                d.sched,
                self.keys.pending,
                self.queue_name,
                job_key(job.job_id),
                d.effects,
                *d.retained,
            ],
            [entry_id, d.pending_member, now, job.job_id, job.body, JOB_TTL_MS, self.retention_ms],
        )
        return int(reply) > 0

    async def purge(self, entry_ids: list[str] | None = None) -> int:
        """Delete the given entries (all when None); returns how many went."""
        if entry_ids is None:
            count = await self.count()
            await self.redis.delete(self.keys.dlq)
            return count
        return int(await self.redis.xdel(self.keys.dlq, *entry_ids)) if entry_ids else 0

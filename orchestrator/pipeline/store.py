"""Redis: the per-dialog mailboxes (inbox, lease, state, outbox of effects) and their Lua steps.

Every multi-key step is one Lua script (orchestrator/pipeline/lua/), so a crash between two commands
never leaves a mailbox half-updated; key names come from orchestrator/pipeline/keys.py.
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis.asyncio as aioredis

from orchestrator.errors import LeaseLost
from orchestrator.pipeline.keys import DialogKeys, Keys, job_key
from orchestrator.pipeline.queue import ARQ_JOB_KEY_PREFIXES, JOB_TTL_MS, new_drain_job, now_ms
from orchestrator.pipeline.records import (
    EffectRecord,
    IngestResult,
    Peeked,
    StoredEvent,
    StoredState,
    event_json,
)
from orchestrator.pipeline.scripts import Scripts, source
from orchestrator.redis.client import aw
from orchestrator.redis.pipelined import PipelinedScript
from orchestrator.settings import Settings

__all__ = ["HISTORY_CAP", "Store"]

HISTORY_CAP = 200  # transition records kept per dialog for `orchestrator sessions show`


class Store:
    """Mailbox operations for ingress, drainers and the sweeper."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.scripts = Scripts(redis)
        self._ingest = PipelinedScript(redis, source("ingest"))  # the ingress's hot call
        self.queue_name = settings.queue_name
        self.lease_ms = settings.lease_ms
        self.dedup_ttl_s = settings.dedup_ttl_s
        # each step of a dialog re-arms the expiry of its keys to this (0: never expire)
        self.retention_ms = settings.dialog_retention_s * 1000
        self.dlq_max_len = settings.dlq_max_len

    def dialog(self, member_id: str, chat_id: str) -> DialogKeys:
        """The keys of one dialog."""
        return self.keys.dialog(member_id, chat_id)

    async def ingest(
        self,
        member_id: str,
        chat_id: str,
        event_id: str,
        name: str,
        ts: int,
        payload: dict[str, Any],
        received_ms: int | None = None,
    ) -> tuple[IngestResult, int]:
        """Dedup, append and schedule in one Lua call; returns what happened and the seq."""
        d = self.dialog(member_id, chat_id)
        now = now_ms()
        job = new_drain_job(member_id, chat_id, now)
        body = event_json(event_id, name, ts, now if received_ms is None else received_ms, payload)
        status, seq = await self._ingest(
            [
                self.keys.dedup(member_id, event_id),
                d.inbox,
                d.seq,
                d.sched,
                self.keys.pending,
                self.queue_name,
                job_key(job.job_id),
            ],
            [self.dedup_ttl_s, body, d.pending_member, now, job.job_id, job.body, JOB_TTL_MS],
        )
        return IngestResult(int(status)), int(seq)

    async def accepted_before(self, member_id: str, event_id: str) -> bool:
        """Whether an event with this dedup key was accepted (within the dedup window)."""
        return bool(await aw(self.redis.exists(self.keys.dedup(member_id, event_id))))

    # --- the drainer's steps ---------------------------------------------------------------

    async def take_lease(self, d: DialogKeys, owner: str) -> str | None:
        """A new fencing token, or None while another drainer holds the dialog."""
        return await self._lease(d, "", owner)

    async def renew_lease(self, d: DialogKeys, token: str) -> bool:
        """Extend our lease; False when it is not ours any more."""
        return await self._lease(d, token, "") is not None

    async def _lease(self, d: DialogKeys, token: str, owner: str) -> str | None:
        got = await self.scripts.run(
            "lease",
            [d.lease, d.fence, self.keys.pending],
            [token, self.lease_ms, d.pending_member, now_ms(), owner],
        )
        return got.decode() if got else None

    async def begin_effect(self, d: DialogKeys, token: str, effect_id: str) -> tuple[int, int]:
        """Right before an effect (maybe a non-idempotent call): check the lease, count the try.
        Returns (tries begun, this one counted; tries that failed cleanly)."""
        reply = await self.scripts.run("begin_effect", [d.lease, d.attempts], [token, effect_id])
        if not isinstance(reply, list):
            raise LeaseLost(d.pending_member)
        return int(reply[0]), int(reply[1])

    async def effect_failed(self, d: DialogKeys, effect_id: str) -> int:
        """Count a clean failure of an effect's try; returns the effect's clean failures."""
        return int(await aw(self.redis.hincrby(d.attempts, f"x:{effect_id}", 1)))

    async def peek(self, d: DialogKeys) -> Peeked | None:
        """The head event, its try number (this one counted) and the state; None when empty."""
        reply = await self.scripts.run("peek", [d.inbox, d.state, d.attempts], [])
        if not reply:
            return None
        entry, tries, data, seq, version, updated = reply
        state = StoredState(data, int(seq or 0), int(version or 0), int(updated or 0))
        return Peeked(StoredEvent.from_entry(d.member_id, d.chat_id, entry), int(tries), state)

    async def head(self, d: DialogKeys) -> StoredEvent | None:
        """The oldest event not yet applied."""
        entry = cast(bytes | None, await aw(self.redis.lindex(d.inbox, 0)))
        return None if entry is None else StoredEvent.from_entry(d.member_id, d.chat_id, entry)

    async def state(self, d: DialogKeys) -> StoredState:
        """The committed state (empty when the dialog never committed)."""
        data, seq, version, updated = await aw(
            self.redis.hmget(d.state, ["data", "seq", "version", "updated_ms"])
        )
        return StoredState(data, int(seq or 0), int(version or 0), int(updated or 0))

    async def commit(
        self,
        d: DialogKeys,
        token: str,
        event: StoredEvent,
        data: bytes,
        effects: list[EffectRecord],
    ) -> bool:
        """Write state + effects and pop the event, fenced; False if the head moved meanwhile."""
        history = json.dumps(
            {
                "seq": event.seq,
                "event": event.name,
                "event_id": event.event_id,
                "effects": [e.effect_id for e in effects],
                "at_ms": now_ms(),
                "outcome": "applied",
            }
        )
        args: list[Any] = [token, event.seq, data, now_ms(), history, HISTORY_CAP]
        args.append(self.retention_ms)  # ARGV[7]; the effects' pairs follow
        for effect in effects:
            args += [effect.effect_id, effect.to_json()]
        keys = [d.lease, d.inbox, d.state, d.effects, d.fxstatus, d.outbox, d.history, d.attempts]
        reply = int(await self.scripts.run("commit", keys + d.retained, args))
        if reply == -1:
            raise LeaseLost(d.pending_member)
        return reply > 0

    async def pending_effects(self, d: DialogKeys) -> list[EffectRecord]:
        """Effects committed but not done yet, in commit order."""
        ids = await aw(self.redis.lrange(d.outbox, 0, -1))
        if not ids:
            return []
        records = await aw(self.redis.hmget(d.effects, ids))
        return [EffectRecord.from_json(r) for r in records if r is not None]

    async def effect_records(self, member_id: str, chat_id: str) -> dict[bytes, bytes]:
        """A dialog's stored effects: id -> record JSON (the effect log)."""
        records: dict[bytes, bytes] = await aw(
            self.redis.hgetall(self.dialog(member_id, chat_id).effects)
        )
        return records

    async def effect_status(self, d: DialogKeys, effect_id: str) -> str | None:
        """pending, done, dead, or None for an unknown effect."""
        raw = cast(bytes | None, await aw(self.redis.hget(d.fxstatus, effect_id)))
        return None if raw is None else raw.decode()

    async def effect_done(self, d: DialogKeys, effect_id: str) -> None:
        """Mark an effect done: it never runs again."""
        await self.scripts.run(
            "effect_done",
            [d.fxstatus, d.outbox, d.attempts, *d.retained],
            [effect_id, self.retention_ms],
        )

    async def dead_event(
        self, d: DialogKeys, token: str, event: StoredEvent, error: str, attempts: int
    ) -> str | None:
        """Move the head event to the DLQ; None if the head moved meanwhile."""
        history = json.dumps(
            {
                "seq": event.seq,
                "event": event.name,
                "event_id": event.event_id,
                "effects": [],
                "at_ms": now_ms(),
                "outcome": "dead",
                "error": error[:500],
            }
        )
        reply = await self.scripts.run(
            "dead_event",
            [d.lease, d.inbox, d.attempts, self.keys.dlq, d.history, *d.retained],
            [
                token,
                event.seq,
                d.member_id,
                d.chat_id,
                error[:2000],
                attempts,
                now_ms(),
                history,
                HISTORY_CAP,
                self.dlq_max_len,
                self.retention_ms,
            ],
        )
        return _dlq_reply(reply, d)

    async def dead_effect(
        self, d: DialogKeys, token: str, effect_id: str, error: str, attempts: int
    ) -> str | None:
        """Move a failing effect to the DLQ."""
        reply = await self.scripts.run(
            "dead_effect",
            [d.lease, d.effects, d.fxstatus, d.outbox, d.attempts, self.keys.dlq, *d.retained],
            [
                token,
                effect_id,
                d.member_id,
                d.chat_id,
                error[:2000],
                attempts,
                now_ms(),
                self.dlq_max_len,
                self.retention_ms,
            ],
        )
        return _dlq_reply(reply, d)

    async def exit(self, d: DialogKeys, token: str) -> int:
        """The exit handshake: 1 exited, 0 work arrived, -1 lease lost."""
        return int(
            await self.scripts.run(
                "exit",
                [d.lease, d.inbox, d.outbox, d.sched, self.keys.pending],
                [token, d.pending_member],
            )
        )

    async def handback(self, d: DialogKeys, token: str, delay_ms: int = 0) -> bool:
        """Release the lease and queue a continuation drain `delay_ms` from now; False if the
        lease was not ours. The sweeper leaves a delayed dialog alone until it is due."""
        now, delay_ms = now_ms(), max(0, delay_ms)
        job = new_drain_job(d.member_id, d.chat_id, now)
        reply = await self.scripts.run(
            "handback",
            [d.lease, d.sched, self.keys.pending, self.queue_name, job_key(job.job_id)],
            [token, d.pending_member, now + delay_ms, job.job_id, job.body, JOB_TTL_MS + delay_ms],
        )
        return int(reply) == 1

    async def sweep(self, stale_ms: int, limit: int = 500) -> int:
        """Re-schedule dialogs pending for `stale_ms` with no live lease and no drain job
        waiting in arq's queue (a dead drainer's job is dropped); returns how many."""
        now = now_ms()
        members = await self.redis.zrangebyscore(
            self.keys.pending, "-inf", now - stale_ms, start=0, num=limit
        )
        woken = 0
        for raw in members:
            d = self.keys.dialog_from_pending(raw.decode())
            job = new_drain_job(d.member_id, d.chat_id, now)
            reply = await self.scripts.run(
                "sweep",
                [
                    d.lease,
                    d.inbox,
                    d.outbox,
                    d.sched,
                    self.keys.pending,
                    self.queue_name,
                    job_key(job.job_id),
                ],
                [
                    d.pending_member,
                    now - stale_ms,
                    now,
                    job.job_id,
                    job.body,
                    JOB_TTL_MS,
                    *ARQ_JOB_KEY_PREFIXES,
                ],
            )
            woken += int(reply) == 1
        return woken


def _dlq_reply(reply: Any, d: DialogKeys) -> str | None:
    if isinstance(reply, bytes):
        return reply.decode()
    if int(reply) == -1:
        raise LeaseLost(d.pending_member)
    return None

"""Where a dialog that did not finish is stuck in our pipeline, read from Redis after the run.

A run judged by the portal says *that* a dialog never ended; this says *why* on our side, so a
rare failure leaves its evidence in the report: the events waiting in its inbox, the effects in
its outbox with their tries, who holds its lease, and its drain job (queued, running, or due in
how long). Read only once the run is over; it changes nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from orchestrator.dialog.state import TERMINAL, DialogState
from orchestrator.pipeline.keys import job_key
from orchestrator.pipeline.store import Store
from orchestrator.redis.client import aw

__all__ = ["pipeline_notes"]


async def pipeline_notes(
    store: Store, member_id: str, queue: str, states: dict[int, DialogState | None]
) -> list[str]:
    """One line per dialog that did not reach a terminal state, and one per dialog of the portal
    that no client opened (events stored under a chat id nobody expected would show there)."""
    notes = []
    for chat_id, state in sorted(states.items()):
        if state is not None and state.status in TERMINAL:
            continue
        notes.append(await _note(store, member_id, queue, chat_id, state))
    if notes:
        notes += await _strays(store, member_id, set(states))
    return notes


async def _strays(store: Store, member_id: str, known: set[int]) -> list[str]:
    prefix = store.dialog(member_id, "0").state.rsplit(":dlg:", 1)[0] + ":dlg:"
    found = []
    async for raw in store.redis.scan_iter(match=f"{prefix}*:inbox", count=1000):
        chat = raw.decode().removeprefix(prefix).removesuffix(":inbox")
        if not chat.isdigit() or int(chat) not in known:
            inbox = await aw(store.redis.llen(raw.decode()))
            found.append(f"a dialog no client opened: {chat!r}, inbox {inbox}")
    return found


async def _note(
    store: Store, member_id: str, queue: str, chat_id: int, state: DialogState | None
) -> str:
    redis = store.redis
    d = store.dialog(member_id, str(chat_id))
    now_ms = time.time() * 1000
    effects = [
        f"{e.kind} (tries {int(await aw(redis.hget(d.attempts, f'x:{e.effect_id}')) or 0)})"
        for e in await store.pending_effects(d)
    ]
    lease = await aw(redis.get(d.lease))
    job = await aw(redis.get(d.sched))
    job_state: Any = "none"
    if job is not None:
        score = await aw(redis.zscore(queue, job))
        running = await aw(redis.exists(f"arq:in-progress:{job.decode()}"))
        recorded = await aw(redis.exists(job_key(job.decode())))
        job_state = (
            "gone from the queue"
            if score is None
            else "running"
            if running
            else f"due in {(score - now_ms) / 1000:.1f} s (record {'kept' if recorded else 'gone'})"
        )
    pending = await aw(redis.zscore(store.keys.pending, d.pending_member))
    history = [json.loads(r) for r in await aw(redis.lrange(d.history, -8, -1))]
    applied = ", ".join(f"{h['event']}:{h['outcome']}" for h in history) or "none"
    return (
        f"chat {chat_id}: ours {state.status.value if state else 'none'}; "
        f"inbox {await aw(redis.llen(d.inbox))}; outbox {', '.join(effects) or 'empty'}; "
        f"lease {lease.decode() if lease else 'free'}; drain job {job_state}; "
        f"pending {'no' if pending is None else f'{(now_ms - pending) / 1000:.1f} s'}; "
        f"last events {applied}"
    )

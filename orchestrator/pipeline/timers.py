"""Dialog timers: a due-time ZSET per portal in Redis and a poller that turns due timers into
`timer_fired` inputs in the dialog's own inbox (so they are ordered and durable like events).

    {prefix}:timer-portals                 SET   member ids that have timers armed
    {prefix}:{<member>}:timers             ZSET  "<chat>|<name>" -> due time (Unix ms)
    {prefix}:{<member>}:timer-tokens       HASH  "<chat>|<name>" -> token of the armed timer

One timer per (dialog, name): arming again replaces it, as the machine re-arms by name. Every
worker polls; the ingest's dedup key (`timer:<member>:<chat>:<token>`) makes a timer fire once
even when two pollers see it, and a timer is removed only if its token is still the one armed.

A timer asks "did nothing happen until T?". Where the portal's events are fetched (a v2 bot in
fetch mode), that is known only once its log is read past T: the fetcher writes the time up to
which it has stored the log (`Keys.watermark`), and a timer fires only when its due time is
behind that watermark. After an outage, the client's answer that waited in the portal's log is
in the inbox before its silence timer fires; meanwhile the held timers ask the pollers to look
now (`Keys.fetch_wake`). A watermark nobody renewed for an hour is dropped, and timers fire on
the clock alone, as they do for pushed events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from orchestrator.dialog.inputs import TimerFired, input_record
from orchestrator.pipeline.store import Store
from orchestrator.redis.client import aw

__all__ = ["INPUT_EVENT_PREFIX", "TIMER_POLL_S", "TimerStore", "poll_timers_forever"]

log = structlog.get_logger(__name__)

# The inbox event name of an internal input: "input:<kind>" (see orchestrator/handler/handler.py).
INPUT_EVENT_PREFIX = "input:"
TIMER_POLL_S = 0.25  # how often each worker looks for due timers
_ASK_EVERY_MS = 1000  # how often timers held by a watermark ask the poller to look

# The token of a timer that is due now, read in one step with its due time: a timer re-armed
# after the poller listed it is not due any more (not fired early), and a listed entry whose
# timer was cancelled is dropped only while it is still unarmed (a re-arm in between stays).
_CLAIM = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return false end
local token = redis.call('HGET', KEYS[2], ARGV[1])
if not token then redis.call('ZREM', KEYS[1], ARGV[1]) end
return token
"""
# Remove a fired timer only if it was not re-armed meanwhile (its token still matches).
_DISARM_IF = """
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


class TimerStore:
    """Arm, disarm and collect due timers."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._claim = redis.register_script(_CLAIM)
        self._disarm_if = redis.register_script(_DISARM_IF)
        self._asked: dict[str, int] = {}  # member id -> ms of the last ask for news

    @property
    def portals_key(self) -> str:
        """SET of member ids with armed timers."""
        return f"{self.prefix}:timer-portals"

    def due_key(self, member_id: str) -> str:
        """ZSET of one portal's timers by due time."""
        return f"{self.prefix}:{{{member_id}}}:timers"

    def tokens_key(self, member_id: str) -> str:
        """HASH of one portal's armed tokens."""
        return f"{self.prefix}:{{{member_id}}}:timer-tokens"

    async def schedule(
        self,
        member_id: str,
        chat_id: str,
        name: str,
        token: str,
        delay_s: float,
        now: float | None = None,
    ) -> None:
        """Arm (or re-arm) a dialog's timer `name` to fire after `delay_s`."""
        due_ms = int(((time.time() if now is None else now) + delay_s) * 1000)
        field = f"{chat_id}|{name}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.tokens_key(member_id), field, token)
            pipe.zadd(self.due_key(member_id), {field: due_ms})
            pipe.sadd(self.portals_key, member_id)
            await pipe.execute()

    async def cancel(self, member_id: str, chat_id: str, name: str) -> None:
        """Disarm a dialog's timer `name` (a no-op when none is armed)."""
        field = f"{chat_id}|{name}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.due_key(member_id), field)
            pipe.hdel(self.tokens_key(member_id), field)
            await pipe.execute()

    async def armed(self, member_id: str) -> dict[str, str]:
        """`"<chat>|<name>" -> token` of a portal's armed timers."""
        raw = await aw(self.redis.hgetall(self.tokens_key(member_id)))
        return {k.decode(): v.decode() for k, v in cast(dict[bytes, bytes], raw).items()}

    async def fire_due(self, store: Store, now: float | None = None, limit: int = 200) -> int:
        """Ingest every due timer as a `timer_fired` input; returns how many fired."""
        now_ms = int((time.time() if now is None else now) * 1000)
        fired = 0
        for raw in await aw(self.redis.smembers(self.portals_key)):
            member_id = raw.decode()
            # the due timers and the fetched log's watermark, in one round trip
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrangebyscore(
                    self.due_key(member_id), "-inf", now_ms, start=0, num=limit, withscores=True
                )
                pipe.hvals(store.keys.watermark(member_id))
                due, marks = await pipe.execute()
            # a timer asks "did nothing happen until T?": where events are fetched, that is
            # known up to the log's watermark only
            horizon = min([now_ms, *(int(m) for m in marks)])
            for field, score in due:
                if score <= horizon:
                    fired += await self._fire(store, member_id, field.decode(), now_ms)
            if any(score > horizon for _, score in due):
                await self._ask_for_news(store, member_id, now_ms)
        return fired

    async def _ask_for_news(self, store: Store, member_id: str, now_ms: int) -> None:
        """Timers wait for the log: ask its poller to read it now (once a second at most)."""
        if now_ms - self._asked.get(member_id, 0) >= _ASK_EVERY_MS:
            self._asked[member_id] = now_ms
            await self.redis.publish(store.keys.fetch_wake, member_id)

    async def claim(self, member_id: str, field: str, now_ms: int) -> str | None:
        """The token of `field`'s timer if it is due at `now_ms`, else None (see _CLAIM)."""
        keys = [self.due_key(member_id), self.tokens_key(member_id)]
        token = await self._claim(keys=keys, args=[field, now_ms])
        return token.decode() if isinstance(token, bytes) else None

    async def _fire(self, store: Store, member_id: str, field: str, now_ms: int) -> int:
        # the list of due timers was read before: between that read and this one the timer may
        # have been re-armed (a later due time) or cancelled
        token = await self.claim(member_id, field, now_ms)
        chat_id, _, name = field.partition("|")
        if token is None:
            return 0
        fired = TimerFired(name=name, token=token, at=now_ms / 1000)
        kind, payload = input_record(fired)
        await store.ingest(
            member_id,
            chat_id,
            f"timer:{member_id}:{chat_id}:{fired.token}",
            INPUT_EVENT_PREFIX + kind,
            now_ms // 1000,
            payload,
        )
        await self._disarm_if(
            keys=[self.due_key(member_id), self.tokens_key(member_id)], args=[field, fired.token]
        )
        return 1


async def poll_timers_forever(
    timers: TimerStore, store: Store, interval_s: float, stopping: asyncio.Event
) -> None:
    """Fire due timers every `interval_s` until `stopping` is set (one poller per worker)."""
    while not stopping.is_set():
        try:
            count = await timers.fire_due(store)
            if count:
                log.debug("timers_fired", count=count)
        except RedisError as exc:
            log.warning("timer_poll_failed", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=interval_s)

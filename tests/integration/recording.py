"""RecordingHandler: a real, simple DialogHandler for the pipeline tests.

Its state counts the events applied; its one effect per event appends `chat|seq|event_id` to a
Redis list, idempotently per effect id (as the production lead step is idempotent through
ORIGIN_ID), while counting every execution, so a test sees both what was applied and what ran.
Events whose message text starts with "poison" fail `decide` while `poisoned` is set.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from orchestrator.pipeline.records import EffectRecord, StoredEvent
from orchestrator.pipeline.runner import Decision, FollowUp
from orchestrator.settings import Settings

RECORD_LUA = """
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if redis.call('HSETNX', KEYS[2], ARGV[1], '1') == 1 then
  redis.call('RPUSH', KEYS[3], ARGV[2])
end
return 1
"""


def _text(payload: dict[str, Any]) -> str:
    """The message text of a queued event: the inputs the ingress queued (events/convert.py), or
    a wire-shaped payload a test queued itself."""
    for _, fields in payload.get("inputs", []):
        if "text" in fields:
            return str(fields["text"])
    return str(payload.get("data", {}).get("PARAMS", {}).get("MESSAGE", ""))


class RecordingHandler:
    """Counts events into the state; records each once through its effect."""

    def __init__(self, redis: aioredis.Redis, prefix: str, effect_delay_s: float = 0.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.effect_delay_s = effect_delay_s
        self.poisoned = True
        self._record = redis.register_script(RECORD_LUA)

    @property
    def log_key(self) -> str:
        return f"{self.prefix}:rec:log"

    @property
    def runs_key(self) -> str:
        return f"{self.prefix}:rec:runs"

    @property
    def applied_key(self) -> str:
        return f"{self.prefix}:rec:applied"

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        text = _text(event.payload)
        if self.poisoned and text.startswith("poison"):
            raise ValueError(f"poison event {event.event_id}")
        count = json.loads(state)["n"] if state else 0
        effect = EffectRecord(
            f"{event.chat_id}:{event.seq}:record",
            "record",
            {"line": f"{event.chat_id}|{event.seq}|{event.event_id}|{text}"},
        )
        return Decision(json.dumps({"n": count + 1, "seq": event.seq}).encode(), [effect])

    async def execute(self, effect: EffectRecord) -> Sequence[FollowUp] | None:
        if self.effect_delay_s:
            await asyncio.sleep(self.effect_delay_s)  # a slow portal call
        await self._record(
            keys=[self.runs_key, self.applied_key, self.log_key],
            args=[effect.effect_id, effect.payload["line"]],
        )
        return None


def factory(settings: Settings, redis: Any) -> RecordingHandler:
    """The worker's handler factory (`--handler tests.integration.recording:factory`)."""
    return RecordingHandler(redis, settings.key_prefix)


def slow_factory(settings: Settings, redis: Any) -> RecordingHandler:
    """Like `factory`, with each effect taking 0.2 s (so a drain is caught mid-way)."""
    return RecordingHandler(redis, settings.key_prefix, effect_delay_s=0.2)


def stuck_factory(settings: Settings, redis: Any) -> RecordingHandler:
    """Like `factory`, with each effect taking 60 s: far past any shutdown grace of a test."""
    return RecordingHandler(redis, settings.key_prefix, effect_delay_s=60.0)

"""The durable mailbox: keys, the store and its Lua steps, arq's job format, the fenced
runner, timers, dead letters, and the epoch that tells a Redis that lost its data."""

from orchestrator.pipeline.dlq import DeadLetters
from orchestrator.pipeline.epoch import EpochWatch
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.records import EffectRecord, StoredEvent
from orchestrator.pipeline.runner import Decision, DialogHandler, FollowUp, Runner
from orchestrator.pipeline.store import Store
from orchestrator.pipeline.timers import TimerStore

__all__ = [
    "DeadLetters",
    "Decision",
    "DialogHandler",
    "EffectRecord",
    "EpochWatch",
    "FollowUp",
    "Keys",
    "Runner",
    "Store",
    "StoredEvent",
    "TimerStore",
]

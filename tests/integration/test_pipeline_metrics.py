"""The dialog metrics count where the work happens: transitions once per committed event, lag
per event, effects by outcome — and replays (no status change) count nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from orchestrator.dialog.scenario_file import load_scenario
from orchestrator.handler.handler import DialogMachineHandler
from orchestrator.pipeline.records import EffectRecord, StoredEvent
from orchestrator.pipeline.runner import Decision, FollowUp, Runner
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from tests.unit import b24_payloads as p


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _stored(payload: dict[str, Any]) -> StoredEvent:
    wire = json.loads(json.dumps(p.over_the_wire(payload)))
    return StoredEvent(1, "e1", str(wire["event"]), p.MEMBER, "901", int(wire["ts"]), 0, wire)


def test_decide_reports_a_status_change_once_and_a_replay_as_none() -> None:
    """A bot join opens the dialog (none -> bot); the same join again changes nothing."""
    handler = DialogMachineHandler(load_scenario(None), executor=None)
    first = handler.decide(None, _stored(p.bot_join()))
    assert first.transitions == (("none", "bot"),)
    again = handler.decide(first.new_state, _stored(p.bot_join()))
    assert again.transitions == ()


class _Flipping:
    """Each event flips the status a <-> b and asks for one effect that succeeds."""

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        before = state.decode() if state else "a"
        after = "b" if before == "a" else "a"
        effect = EffectRecord(f"{event.chat_id}:{event.seq}:fx", "Flip", {})
        return Decision(after.encode(), [effect], transitions=((before, after),))

    async def execute(self, effect: EffectRecord) -> Sequence[FollowUp] | None:
        return None


async def test_runner_counts_transitions_lag_and_effects_per_committed_event(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """Three events drained: three transitions (a->b, b->a, a->b), three lag observations, three
    effects done — counted under the dialog's portal."""
    store = Store(redis, settings)
    member = f"m-metrics-{settings.key_prefix}"
    for index in range(3):
        await store.ingest(member, "5", f"ev{index}", "ONIMBOTMESSAGEADD", 1, {})
    before_done = _sample("ol_effects_total", kind="Flip", outcome="done")
    await Runner(store, _Flipping(), settings, owner="t").drain(member, "5")
    ab = _sample("ol_dialog_transitions_total", member_id=member, from_status="a", to_status="b")
    ba = _sample("ol_dialog_transitions_total", member_id=member, from_status="b", to_status="a")
    assert (ab, ba) == (2.0, 1.0)
    assert _sample("ol_event_lag_seconds_count", member_id=member) == 3.0
    assert _sample("ol_effects_total", kind="Flip", outcome="done") - before_done == 3.0
    job_ids = await redis.zrange(settings.queue_name, 0, -1)
    await redis.delete(settings.queue_name, *(b"arq:job:" + j for j in job_ids))

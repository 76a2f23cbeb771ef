"""A worker of this version drains dialogs whose state an earlier version stored, and leaves
alone the state of a later version.

The earlier worker is played by committing, through the Store and under a lease as the runner
does, the exact state JSON a version 0 worker wrote (a frozen recorded history,
tests/fixtures/histories/v0/); the rest of that history's events are then queued as the ingress
and the effects' follow-ups queue them, and an in-process arq worker drains them with the
production handler's `decide` (its effects recorded instead of run on a portal).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis

from orchestrator.dialog.migrations import SCHEMA_FIELD, SCHEMA_VERSION, upgrade
from orchestrator.dialog.scenario import ScenarioSet
from orchestrator.handler.handler import DialogMachineHandler
from orchestrator.pipeline.dlq import DeadLetters
from orchestrator.pipeline.records import EffectRecord
from orchestrator.pipeline.runner import FollowUp
from orchestrator.pipeline.store import Store
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX
from orchestrator.settings import Settings
from tests.histories import FROZEN, History, Step, load, stored_form
from tests.integration.pipeline.conftest import eventually
from worker.main import build_worker

# the portal event each portal-side input arrives in (the ingress queues the event's inputs)
PORTAL_EVENTS = {
    "client_message": "ONIMBOTMESSAGEADD",
    "operator_message": "ONIMBOTMESSAGEADD",
    "bot_joined": "ONIMBOTJOINCHAT",
    "session_started": "ONSESSIONSTART",
    "session_finished": "ONSESSIONFINISH",
    "message_updated": "ONIMBOTMESSAGEUPDATE",
    "message_deleted": "ONIMBOTMESSAGEDELETE",
}


class RecordedEffects(DialogMachineHandler):
    """The production handler's `decide`; each effect recorded in order instead of run."""

    def __init__(self, scenarios: ScenarioSet) -> None:
        super().__init__(scenarios, executor=None)
        self.ran: list[EffectRecord] = []

    async def execute(self, effect: EffectRecord) -> Sequence[FollowUp] | None:
        self.ran.append(effect)
        return None  # the results the machine waits for are queued from the history instead


def _queued(step: Step) -> tuple[str, dict[str, Any]]:
    """An input as the inbox holds it: a portal event's inputs, or an internal `input:<kind>`
    (our effects' results and timers)."""
    kind, fields = step.input["kind"], step.input["fields"]
    if kind in PORTAL_EVENTS:
        return PORTAL_EVENTS[kind], {"inputs": [[kind, fields]]}
    return INPUT_EVENT_PREFIX + kind, fields


async def _queue(store: Store, member: str, chat: str, steps: list[Step], first: int) -> None:
    for n, step in enumerate(steps, start=first):
        name, payload = _queued(step)
        await store.ingest(member, chat, f"replayed:{n}", name, int(step.now), payload)


async def _commit_as_another_version(
    store: Store, member: str, chat: str, step: Step, stored: str
) -> None:
    """What a worker of another version left: the step's event applied, its state stored as
    `stored`, its effects committed and done, the lease released."""
    d = store.dialog(member, chat)
    await _queue(store, member, chat, [step], first=0)
    token = await store.take_lease(d, "worker-of-another-version")
    event = await store.head(d)
    assert token is not None
    assert event is not None
    effects = [EffectRecord(e["id"], e["kind"], e["payload"]) for e in step.effects]
    assert await store.commit(d, token, event, stored.encode(), effects)
    for effect in effects:
        await store.effect_done(d, effect.effect_id)
    assert await store.exit(d, token) == 1


@asynccontextmanager
async def _worker(settings: Settings, handler: RecordedEffects) -> AsyncIterator[None]:
    """An arq worker in this process draining with `handler`."""
    worker = build_worker(settings, lambda _s, _r: handler, handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        worker.handle_sig(signal.SIGTERM)
        await asyncio.wait([task], timeout=10)
        await worker.close()


def _split(history: History, before: Callable[[Step], bool]) -> int:
    """The index of the last step before the first one `before` matches."""
    return next(i for i, step in enumerate(history.steps) if before(step)) - 1


async def test_a_dialog_stored_by_version_0_is_drained_on_and_stored_at_the_current_version(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """The main path stored by a version 0 worker while an operator had the dialog: the close,
    the transcript, the vote and the lead then step it on exactly as recorded, and the state is
    stored in the current form."""
    history = load(FROZEN / "main_path_lead.json")
    k = _split(history, lambda s: s.input["kind"] == "session_finished")
    old, rest = history.steps[k], history.steps[k + 1 :]
    assert old.state is not None
    assert old.state["status"] == "operator"
    assert SCHEMA_FIELD not in old.state  # the form main stored before the version existed
    member, chat = old.state["member_id"], str(old.state["chat_id"])
    store = Store(redis, fast_settings)
    d = store.dialog(member, chat)
    await _commit_as_another_version(store, member, chat, old, stored_form(old.state))
    await _queue(store, member, chat, rest, first=1)
    handler = RecordedEffects(history.scenarios())

    async def drained() -> bool:
        data = (await store.state(d)).data
        return (
            bool(data) and json.loads(data)["status"] == "lead" and not await redis.llen(d.outbox)
        )

    async with _worker(fast_settings, handler):
        await eventually(drained)
    stored = await store.state(d)
    assert stored.data is not None
    state = json.loads(stored.data)
    assert state[SCHEMA_FIELD] == SCHEMA_VERSION
    assert state == upgrade(history.steps[-1].state)  # the recorded end, in the current form
    assert (state["status"], state["lead_id"], state["vote"]) == ("lead", 1001, 5)
    ran = [{"kind": e.kind, "id": e.effect_id, "payload": e.payload} for e in handler.ran]
    assert ran == [effect for step in rest for effect in step.effects]
    assert [e.kind for e in handler.ran] == ["FetchTranscript", "CreateLead", "SaveHeadVote"]
    assert stored.seq == len(rest) + 1  # every queued event applied
    assert await DeadLetters(redis, fast_settings).count() == 0


async def test_a_dialog_stored_by_a_newer_version_is_left_as_it_is(
    redis: aioredis.Redis, fast_settings: Settings
) -> None:
    """A state a newer version stored (a rollback met it) is not decided on: the event is
    retried and dead-lettered, naming the versions, and the stored state is not rewritten."""
    history = load(FROZEN / "main_path_lead.json")
    k = _split(history, lambda s: s.input["kind"] == "session_finished")
    old, nxt = history.steps[k], history.steps[k + 1]
    assert old.state is not None
    newer = stored_form({**old.state, SCHEMA_FIELD: SCHEMA_VERSION + 1, "field_of_later": 1})
    member, chat = old.state["member_id"], str(old.state["chat_id"])
    store = Store(redis, fast_settings)
    await _commit_as_another_version(store, member, chat, old, newer)
    await _queue(store, member, chat, [nxt], first=1)
    dlq = DeadLetters(redis, fast_settings)

    async def dead_lettered() -> bool:
        return await dlq.count() == 1

    handler = RecordedEffects(history.scenarios())
    async with _worker(fast_settings, handler):
        await eventually(dead_lettered)
    [letter] = await dlq.entries()
    assert (letter.kind, letter.chat_id) == ("event", chat)
    assert f"schema_version {SCHEMA_VERSION + 1}" in letter.error
    assert (await store.state(store.dialog(member, chat))).data == newer.encode()
    assert handler.ran == []

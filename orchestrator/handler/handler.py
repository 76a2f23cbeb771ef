"""The production DialogHandler: the dialog machine decides, the REST client and timers act.

`decide` (pure, sync): stored event -> inputs (the ingress queued a portal event's inputs,
events/convert.py; our own follow-ups and timers are queued as `input:<kind>`) ->
`machine.transition` with the line's scenario -> the new state JSON and the effects as records.
`execute` runs one effect (orchestrator/handler/executor.py) and returns follow-up inputs.

The workers build it with `build_handler` (WORKER_HANDLER=orchestrator.handler:build_handler):
one REST client per process and the scenario file (`aclose` closes the client).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from structlog.contextvars import bound_contextvars

from orchestrator.bitrix.bot_store import BotDirectory, BotStore
from orchestrator.bitrix.client import BitrixClient
from orchestrator.dialog.effects import effect_payload
from orchestrator.dialog.inputs import Input, input_from_record
from orchestrator.dialog.machine import scenario_for, transition
from orchestrator.dialog.reconcile import RECONCILED
from orchestrator.dialog.scenario import ScenarioSet
from orchestrator.dialog.scenario_file import load_scenario
from orchestrator.dialog.state import DialogState
from orchestrator.errors import IllegalTransition
from orchestrator.events.convert import inputs_of_stored
from orchestrator.handler.answerers import AnswererPool
from orchestrator.handler.executor import EffectExecutor, is_patient
from orchestrator.observe import metrics
from orchestrator.pipeline.keys import PORTAL_DIALOG
from orchestrator.pipeline.records import EffectRecord, StoredEvent
from orchestrator.pipeline.runner import Decision, FollowUp
from orchestrator.pipeline.store import Store
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX, TimerStore
from orchestrator.settings import Settings

__all__ = ["DialogMachineHandler", "build_handler", "decode_inputs"]

log = structlog.get_logger(__name__)


def decode_inputs(event: StoredEvent) -> list[Input]:
    """The machine inputs one stored event means (none for portal-level events)."""
    if event.name.startswith(INPUT_EVENT_PREFIX):
        return [input_from_record(event.name.removeprefix(INPUT_EVENT_PREFIX), event.payload)]
    return inputs_of_stored(event.payload)


class DialogMachineHandler:
    """Implements orchestrator.pipeline.runner.DialogHandler for Open Lines dialogs."""

    def __init__(self, scenarios: ScenarioSet, executor: EffectExecutor | None) -> None:
        self.scenarios = scenarios
        self.executor = executor
        self.rest_client: BitrixClient | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        """The next state and effects for one event; illegal inputs are logged and dropped."""
        if event.chat_id == PORTAL_DIALOG:
            return self._portal_event(state, event)
        current = DialogState.from_json(state) if state else None
        records: list[EffectRecord] = []
        changes: list[tuple[str, str]] = []
        for inp in decode_inputs(event):
            now = float(event.ts) if event.ts else time.time()
            scenario = scenario_for(self.scenarios, current, inp)
            before = current.status.value if current is not None else "none"
            with bound_contextvars(session_id=current.session_id if current else None):
                try:
                    outcome = transition(current, inp, scenario, now)
                except IllegalTransition as exc:
                    log.warning("illegal_transition", input=inp.kind, reason=str(exc))
                    continue
            current = outcome.state
            if current.status.value != before:
                changes.append((before, current.status.value))
                if outcome.state.history[-1].input == RECONCILED:
                    metrics.RECONCILE_FINISHES.labels(member_id=current.member_id).inc()
            records += [
                EffectRecord(str(e.effect_id), e.kind, effect_payload(e), patient=is_patient(e))
                for e in outcome.effects
            ]
        new_state = current.to_json().encode() if current is not None else (state or b"")
        return Decision(new_state=new_state, effects=records, transitions=tuple(changes))

    def _portal_event(self, state: bytes | None, event: StoredEvent) -> Decision:
        """Portal-level events (install, uninstall, bot delete) drive no dialog: the ingress has
        applied them already (a verified install's credentials, an uninstall's removal)."""
        log.info("portal_event", name=event.name)
        return Decision(new_state=state or b"")

    async def execute(self, effect: EffectRecord) -> Sequence[FollowUp] | None:
        """Run one effect; raises on transient failures so the runner retries it."""
        if self.executor is None:
            raise RuntimeError("this handler was built without an executor (decide only)")
        return await self.executor.run(effect)

    def give_up(self, effect: EffectRecord, error_code: str) -> list[FollowUp] | None:
        """What stands in for an effect out of tries (see EffectExecutor.give_up)."""
        return None if self.executor is None else self.executor.give_up(effect, error_code)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Register an async callable run by `aclose` (last registered, first run)."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Close the REST client (the worker's on_shutdown)."""
        while self._closers:
            await self._closers.pop()()


async def build_handler(settings: Settings, redis: aioredis.Redis) -> DialogMachineHandler:
    """The workers' handler factory: the REST client, the effect log and timers, the scenario."""
    scenarios = load_scenario(settings.scenario_path).with_reconcile(settings.reconcile_interval_s)
    # the answerers' secrets and files are checked before anything connects
    scenario_dir = Path(settings.scenario_path).parent if settings.scenario_path else Path.cwd()
    answerers = AnswererPool.build(scenarios, scenario_dir)
    client = await BitrixClient.from_settings(settings, redis).open()
    executor = EffectExecutor(
        client.api,
        Store(redis, settings),
        TimerStore(redis, settings.key_prefix),
        BotDirectory(BotStore(redis, prefix=settings.key_prefix)),
        answerers,
    )
    handler = DialogMachineHandler(scenarios, executor)
    handler.rest_client = client  # the worker's pollers share it (and its budget, its batches)
    handler.on_close(client.close)
    handler.on_close(answerers.aclose)
    return handler

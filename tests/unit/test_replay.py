"""Replay of recorded dialogs: stored dialogs step on the same way under the current code.

Each history in tests/fixtures/histories/ (format: tests/histories.py) is a whole dialog the
machine once stepped through: the inputs in their stored form, the scenario it ran under, and
after each step the effects and the stored state JSON. Here every step is replayed through the
current machine, both from the recorded state before it (read back through
`DialogState.from_json`, as a worker reads Redis) and along the whole dialog from its start, and
must give the same transition: the same outcome (applied, no-op, or rejected with
IllegalTransition), the same effects (kind, id string and payload, compared as the JSON the
pipeline stores) and the same state (the stored JSON compared as a dict). Nothing is excluded:
given the state, the input, the scenario and `now`, a transition is deterministic, and the
history records all four. Only the wording of an IllegalTransition is not compared, its class is;
and a history an earlier version recorded is compared in what that version tracked (a newer
machine may keep more, e.g. which message a field came from).

A difference means a stored dialog would now continue differently. If that is intended, re-record
the histories deliberately (`python -m tests.replay_record`, then review the diff and say why in
the commit message). The histories under v0/ were written by an earlier version and are never
re-recorded: they prove its stored form still loads and steps on the same way.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.dialog.inputs import INPUT_TYPES
from orchestrator.dialog.machine import scenario_for, transition
from orchestrator.dialog.migrations import SCHEMA_FIELD, SCHEMA_VERSION, stored_version, upgrade
from orchestrator.dialog.scenario import ScenarioSet
from orchestrator.dialog.state import DialogState, DialogStatus
from orchestrator.errors import IllegalTransition
from tests.histories import (
    APPLIED,
    FROZEN,
    FROZEN_V1,
    NO_OP,
    REJECTED,
    History,
    Step,
    all_paths,
    effect_record,
    input_entry,
    load,
)
from tests.replay_dialogs import SCRIPTS

HISTORIES = [load(path) for path in all_paths()]
IDS = [f"{h.path.parent.name}/{h.name}" for h in HISTORIES]
CURRENT = [h for h in HISTORIES if h.path.parent not in (FROZEN, FROZEN_V1)]


def _as_stored(state: DialogState | None) -> dict[str, Any] | None:
    """A state as the current code stores it, read back as a dict."""
    return None if state is None else json.loads(state.to_json())


def _expected(recorded: dict[str, Any] | None) -> dict[str, Any] | None:
    """The recorded state as the current code stores it: brought up to the current version by
    the migrations alone (so they must produce the whole current form, not leave it to the
    model's defaults)."""
    return None if recorded is None else upgrade(recorded)


def _replay(state: DialogState | None, step: Step, scenarios: ScenarioSet) -> DialogState | None:
    """Apply one recorded step's input; asserts the recorded outcome and effects."""
    inp = step.rebuild_input()
    assert input_entry(inp) == step.input, "the stored form of the input changed"
    scenario = scenario_for(scenarios, state, inp)
    if step.outcome == REJECTED:
        with pytest.raises(IllegalTransition):
            transition(state, inp, scenario, step.now)
        return state
    outcome = transition(state, inp, scenario, step.now)
    assert (APPLIED if outcome.changed else NO_OP) == step.outcome
    effects = json.loads(json.dumps([effect_record(e) for e in outcome.effects]))
    assert effects == step.effects
    return outcome.state


def _tracked(
    state: dict[str, Any] | None, recorded: dict[str, Any] | None
) -> dict[str, Any] | None:
    """`state` less what later versions track that the recorded version did not (the keys its
    migrations add): a newer machine may know more, but what the older one knew must agree."""
    if state is None or recorded is None:
        return state
    added = set(upgrade(recorded)) - set(recorded) - {SCHEMA_FIELD}
    return {k: v for k, v in state.items() if k not in added}


def _same(after: DialogState | None, recorded: dict[str, Any] | None) -> bool:
    return _tracked(_as_stored(after), recorded) == _tracked(_expected(recorded), recorded)


@pytest.mark.parametrize("history", HISTORIES, ids=IDS)
def test_each_step_replays_from_its_stored_state(history: History) -> None:
    """From the stored state before it, every step gives the recorded effects and state."""
    scenarios = history.scenarios()
    before: str | None = None
    for index, step in enumerate(history.steps):
        state = DialogState.from_json(before) if before is not None else None
        after = _replay(state, step, scenarios)
        assert _same(after, step.state), f"step {index} ({step.input['kind']})"
        before = step.stored_state()


@pytest.mark.parametrize("history", HISTORIES, ids=IDS)
def test_the_whole_dialog_replays_from_its_start(history: History) -> None:
    """Fed every input in order from nothing, the machine passes through the recorded states."""
    scenarios = history.scenarios()
    state: DialogState | None = None
    for index, step in enumerate(history.steps):
        state = _replay(state, step, scenarios)
        assert _same(state, step.state), f"step {index} ({step.input['kind']})"


@pytest.mark.parametrize("history", HISTORIES, ids=IDS)
def test_stored_states_load_back_unchanged(history: History) -> None:
    """Every state the recorded version wrote is in that version's form and reads back
    (from_json) as that same state; one the current version wrote is written back byte for
    byte."""
    for step in history.steps:
        stored = step.stored_state()
        if stored is None or step.state is None:
            continue
        assert stored_version(step.state) == history.state_schema
        loaded = DialogState.from_json(stored)
        assert _as_stored(loaded) == _expected(step.state)
        if history.state_schema == SCHEMA_VERSION:
            assert loaded.to_json() == stored


def test_histories_of_an_earlier_version_are_kept() -> None:
    """At least one history is in the form version 0 workers stored (no schema_version)."""
    frozen = [h for h in HISTORIES if h.path.parent == FROZEN]
    assert {h.state_schema for h in frozen} >= {0}
    assert all(SCHEMA_FIELD not in s.state for h in frozen for s in h.steps if s.state)
    # and in the form of version 1, before the answerer's bookkeeping
    assert {h.state_schema for h in HISTORIES if h.path.parent == FROZEN_V1} == {1}


def test_the_histories_cover_every_status_input_failure_and_outcome() -> None:
    """Together the histories pass through every status, take every input kind, every effect
    failure the machine reacts to, and every outcome, under both scenarios."""
    steps = [step for h in HISTORIES for step in h.steps]
    statuses = {step.state["status"] for step in steps if step.state is not None}
    assert statuses == {status.value for status in DialogStatus}
    assert {step.input["kind"] for step in steps} == set(INPUT_TYPES)
    failures = {
        step.input["fields"]["effect_kind"]
        for step in steps
        if step.input["kind"] == "effect_failed" and step.outcome == APPLIED
    }
    reacted = {"SendMessage", "FinishBotSession", "Transfer", "HandToQueue", "AskAnswerer"}
    assert failures >= reacted | {"FetchTranscript", "SaveHeadVote", "CreateLead"}
    assert {step.outcome for step in steps} == {APPLIED, NO_OP, REJECTED}
    assert {h.scenario_name for h in HISTORIES} == {"default", "demo", "answerer"}
    assert len(CURRENT) >= 20


def test_every_script_has_its_recording() -> None:
    """A script added or renamed without re-recording (or a recording left behind) shows here."""
    assert {h.name for h in CURRENT} == set(SCRIPTS)

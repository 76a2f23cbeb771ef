"""The stored dialog state's version: written on every store, older forms migrated on reading,
a newer one refused clearly (dialog/migrations.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.dialog.inputs import SessionFinished, input_record
from orchestrator.dialog.migrations import (
    MIGRATIONS,
    SCHEMA_FIELD,
    SCHEMA_VERSION,
    stored_version,
    upgrade,
)
from orchestrator.dialog.scenario_file import load_scenario
from orchestrator.dialog.state import DialogState, DialogStatus
from orchestrator.errors import StateSchemaError, StateSchemaTooNew
from orchestrator.handler.handler import DialogMachineHandler
from orchestrator.pipeline.records import StoredEvent
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX
from tests.histories import FROZEN, load

ROOT = Path(__file__).resolve().parents[2]


def _v0_operator_state() -> dict[str, Any]:
    """A state as version 0 workers stored it: the frozen main path, an operator answering."""
    history = load(FROZEN / "main_path_lead.json")
    state = next(s.state for s in history.steps if s.state and s.state["status"] == "operator")
    assert state is not None
    assert SCHEMA_FIELD not in state
    return state


def test_the_migrations_lead_step_by_step_from_version_0_to_the_current_one() -> None:
    """One step per version, in order, ending at SCHEMA_VERSION."""
    assert [v for v, _ in MIGRATIONS] == list(range(SCHEMA_VERSION))


def test_every_stored_state_says_its_version() -> None:
    """to_json writes the current schema_version, also for a state built in code."""
    state = DialogState(member_id="m1", chat_id=1)
    assert json.loads(state.to_json())[SCHEMA_FIELD] == SCHEMA_VERSION


def test_a_version_0_state_loads_as_the_current_version_with_the_same_fields() -> None:
    """A state without the field is version 0 (what workers stored before) and still loads."""
    raw = _v0_operator_state()
    state = DialogState.from_json(json.dumps(raw).encode())
    assert state.schema_version == SCHEMA_VERSION
    assert state.status is DialogStatus.OPERATOR
    # with what later versions added, at its empty values (version 2: the answerer's)
    added = {
        "pending_ask": None,
        "unasked": False,
        "answers": 0,
        "recent": [],
        "offered": {},
        "confirming": False,
        "confirmed": False,
        "sources": {},
        "last_message_id": None,
        "language": None,
    }
    assert json.loads(state.to_json()) == {**raw, SCHEMA_FIELD: SCHEMA_VERSION, **added}


def test_upgrade_leaves_its_argument_alone() -> None:
    """The raw dict a caller holds is not changed by reading it."""
    raw = _v0_operator_state()
    before = json.dumps(raw)
    assert upgrade(raw)[SCHEMA_FIELD] == SCHEMA_VERSION
    assert json.dumps(raw) == before


def test_a_state_from_a_newer_version_is_refused_before_its_fields_are_read() -> None:
    """A newer version's state (with fields this code does not know) fails with
    StateSchemaTooNew naming both versions, not with a pydantic dump of unknown fields."""
    newer = {**_v0_operator_state(), SCHEMA_FIELD: SCHEMA_VERSION + 1, "a_field_of_later": [1]}
    with pytest.raises(StateSchemaTooNew) as caught:
        DialogState.from_json(json.dumps(newer))
    assert (caught.value.found, caught.value.known) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert f"schema_version {SCHEMA_VERSION + 1}" in str(caught.value)
    assert not isinstance(caught.value, ValidationError)


@pytest.mark.parametrize("version", ["1", -1, True, None, 1.0])
def test_a_bad_version_is_a_schema_error(version: object) -> None:
    """A version that is not a whole number >= 0 is not guessed at."""
    with pytest.raises(StateSchemaError, match=SCHEMA_FIELD):
        stored_version({SCHEMA_FIELD: version})


@pytest.mark.parametrize("raw", ["[]", '"state"', "null"])
def test_a_stored_form_that_is_not_an_object_is_a_schema_error(raw: str) -> None:
    """Not a JSON object: refused as such."""
    with pytest.raises(StateSchemaError, match="not a JSON object"):
        DialogState.from_json(raw)


def test_only_from_json_reads_another_version() -> None:
    """Validating a stored dict directly, past the migrations, is refused for any other
    version."""
    raw = {**_v0_operator_state(), SCHEMA_FIELD: 0}
    with pytest.raises(ValidationError, match="from_json"):
        DialogState.model_validate(raw)


def test_no_other_code_parses_a_stored_state() -> None:
    """DialogState is read from its stored form in one place, so every reader migrates."""
    parser = re.compile(r"DialogState\.model_validate")
    found = [
        str(path.relative_to(ROOT))
        for package in ("orchestrator", "worker", "harness")
        for path in (ROOT / package).rglob("*.py")
        if parser.search(path.read_text())
    ]
    assert found == []


def _internal(inp: Any, seq: int) -> StoredEvent:
    kind, payload = input_record(inp)
    return StoredEvent(
        seq, f"i{seq}", INPUT_EVENT_PREFIX + kind, "m1", "901", 1767226000, 0, payload
    )


def test_the_handler_steps_a_version_0_state_and_stores_the_current_version() -> None:
    """decide reads what a version 0 worker committed and commits the current form."""
    handler = DialogMachineHandler(load_scenario(None), executor=None)
    raw = _v0_operator_state()
    finish = SessionFinished(member_id="m1", chat_id=901, session_id=512, line_id=1, at=1767226000)
    decision = handler.decide(json.dumps(raw).encode(), _internal(finish, 20))
    stored = json.loads(decision.new_state)
    assert stored[SCHEMA_FIELD] == SCHEMA_VERSION
    assert stored["status"] == "finished"
    assert [e.kind for e in decision.effects] == ["FetchTranscript", "CreateLead"]


def test_the_handler_refuses_a_newer_state_so_the_runner_keeps_the_event() -> None:
    """decide raises for a newer version's state (the runner retries, then dead-letters the
    event for replay) instead of deciding on, and overwriting, a state it cannot read."""
    handler = DialogMachineHandler(load_scenario(None), executor=None)
    newer = {**_v0_operator_state(), SCHEMA_FIELD: SCHEMA_VERSION + 1}
    finish = SessionFinished(member_id="m1", chat_id=901, session_id=512, line_id=1, at=1767226000)
    with pytest.raises(StateSchemaTooNew):
        handler.decide(json.dumps(newer).encode(), _internal(finish, 20))

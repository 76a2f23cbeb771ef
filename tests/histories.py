"""Recorded dialog histories (tests/fixtures/histories/*.json): their format, read and written.

A history is one whole dialog as the machine saw it: the scenario it ran under (the document
itself, so a later wording change in default.yaml does not rewrite what was recorded), and per
step the clock (`now`), the input in its stored form (kind + fields), what the machine made of it
(`applied`, `no-op`, or `rejected` with IllegalTransition), the effects (kind, id string,
payload) and the stored state JSON after it (`null` while there is no dialog yet).
`tests/replay_record.py` writes them; `tests/unit/test_replay.py` replays them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.dialog.effects import Effect, effect_payload
from orchestrator.dialog.inputs import Input, input_from_record, input_record
from orchestrator.dialog.scenario import ScenarioSet
from orchestrator.dialog.scenario_file import parse_scenario

HISTORIES = Path(__file__).resolve().parent / "fixtures" / "histories"
# histories earlier versions of the code wrote; nothing regenerates them (see replay_record)
FROZEN = HISTORIES / "v0"
FROZEN_V1 = HISTORIES / "v1"

APPLIED, NO_OP, REJECTED = "applied", "no-op", "rejected"


def stored_form(state: dict[str, Any]) -> str:
    """The exact bytes DialogState.to_json writes for a state read back as a dict."""
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False)


def effect_record(effect: Effect) -> dict[str, Any]:
    """An effect as a history keeps it."""
    return {"kind": effect.kind, "id": str(effect.effect_id), "payload": effect_payload(effect)}


def input_entry(inp: Input) -> dict[str, Any]:
    """An input in its stored form (the one the inbox keeps for internal inputs)."""
    kind, fields = input_record(inp)
    return {"kind": kind, "fields": fields}


@dataclass(frozen=True)
class Step:
    """One recorded step."""

    now: float
    input: dict[str, Any]
    outcome: str
    effects: list[dict[str, Any]]
    state: dict[str, Any] | None
    rejected: str | None = None

    def rebuild_input(self) -> Input:
        """The input as the machine takes it."""
        return input_from_record(self.input["kind"], self.input["fields"])

    def stored_state(self) -> str | None:
        """The state after this step in its stored form (None: no dialog yet)."""
        return None if self.state is None else stored_form(self.state)


@dataclass(frozen=True)
class History:
    """One recorded dialog."""

    name: str
    about: str
    state_schema: int
    scenario_name: str
    scenario: dict[str, Any]
    steps: list[Step]
    path: Path

    def scenarios(self) -> ScenarioSet:
        """The scenario set the dialog ran under, as recorded."""
        return parse_scenario(self.scenario, f"{self.path.name} scenario")


def load(path: Path) -> History:
    """Read one history file."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    steps = [
        Step(
            now=s["now"],
            input=s["input"],
            outcome=s["outcome"],
            effects=s["effects"],
            state=s["state"],
            rejected=s.get("rejected"),
        )
        for s in raw["steps"]
    ]
    return History(
        name=raw["name"],
        about=raw["about"],
        state_schema=raw["state_schema"],
        scenario_name=raw["scenario"]["name"],
        scenario=raw["scenario"]["document"],
        steps=steps,
        path=path,
    )


def all_paths() -> list[Path]:
    """Every history file: the current recordings, then the frozen ones of earlier versions."""
    frozen = [path for folder in (FROZEN, FROZEN_V1) for path in sorted(folder.glob("*.json"))]
    return sorted(HISTORIES.glob("*.json")) + frozen


def dump(history: dict[str, Any]) -> str:
    """A history as a file: one line per step field, effect and state key, so a re-recording
    shows in a diff as the lines that changed."""
    c = stored_form
    steps = []
    for step in history["steps"]:
        lines = [f'      "now": {c(step["now"])}', f'      "input": {c(step["input"])}']
        lines.append(f'      "outcome": {c(step["outcome"])}')
        if "rejected" in step:
            lines.append(f'      "rejected": {c(step["rejected"])}')
        effects = ",\n".join(f"        {c(e)}" for e in step["effects"])
        lines.append(
            f'      "effects": [\n{effects}\n      ]' if effects else '      "effects": []'
        )
        state = step["state"]
        if state is None:
            lines.append('      "state": null')
        else:
            keys = ",\n".join(f"        {c(k)}: {c(v)}" for k, v in state.items())
            lines.append(f'      "state": {{\n{keys}\n      }}')
        steps.append("    {\n" + ",\n".join(lines) + "\n    }")
    head = [
        f'  "name": {c(history["name"])}',
        f'  "about": {c(history["about"])}',
        f'  "state_schema": {c(history["state_schema"])}',
        '  "steps": [\n' + ",\n".join(steps) + "\n  ]",
        '  "scenario": ' + json.dumps(history["scenario"], indent=2).replace("\n", "\n  "),
    ]
    text = "{\n" + ",\n".join(head) + "\n}\n"
    assert json.loads(text) == history, "the writer must keep the history as it is"
    return text

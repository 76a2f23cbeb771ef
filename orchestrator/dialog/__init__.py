"""The dialog, pure: its state, inputs, effects, scenario and the machine that steps it.

Nothing here does I/O or knows Bitrix24's wire events (no aiohttp, redis, arq or events/).
"""

from orchestrator.dialog.effects import Effect, EffectId
from orchestrator.dialog.inputs import Input
from orchestrator.dialog.machine import Transition, run_inputs, scenario_for, transition
from orchestrator.dialog.scenario import Scenario, ScenarioSet
from orchestrator.dialog.scenario_file import load_scenario
from orchestrator.dialog.state import DialogState, DialogStatus

__all__ = [
    "DialogState",
    "DialogStatus",
    "Effect",
    "EffectId",
    "Input",
    "Scenario",
    "ScenarioSet",
    "Transition",
    "load_scenario",
    "run_inputs",
    "scenario_for",
    "transition",
]

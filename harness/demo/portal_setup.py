"""The demo portal's line settings and the demo scenario: the shipped one with timers short
enough to watch, plus a second line that is always outside working hours.

The line settings are what an admin sets in the Open Lines UI (there is no REST method for
them): the scenario owns the lead step, so the line's own CRM_CREATE is off; the welcome bot is
never forwarded to the queue by the portal's timer (the demo moves the portal's clock); a vote
request waits `VOTE_WAIT_S` before the portal closes the dialog by itself.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from orchestrator.dialog.scenario_file import parse_scenario

__all__ = [
    "AFTER_HOURS_LINE",
    "SILENCE_S",
    "SUPPORT_LINE",
    "VOTE_WAIT_S",
    "demo_scenario",
    "prepare_portal",
    "write_demo_scenario",
]

SUPPORT_LINE = 1
AFTER_HOURS_LINE = 2
VOTE_WAIT_S = 120  # the portal closes an unrated dialog after this (portal clock)
SILENCE_S = 4  # the bot closes a dialog whose client went quiet (wall clock)


def prepare_portal(portal: Any) -> None:
    """Configure the seeded line and add the after-hours line served by the same bot."""
    support = portal.lines[SUPPORT_LINE]
    if AFTER_HOURS_LINE not in portal.lines:
        portal.add_line(
            "After hours",
            list(support.queue),
            welcome_bot_enable=True,
            welcome_bot_id=support.welcome_bot_id,
        )
    for line in portal.lines.values():
        line.crm_create = "none"
        line.welcome_bot_time = 0
        line.vote_time_limit = VOTE_WAIT_S


def demo_scenario() -> dict[str, Any]:
    """The shipped scenario with short timers and line 2 never open."""
    shipped = resources.files("orchestrator.dialog").joinpath("scenarios/default.yaml")
    text = shipped.read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    default = document["default"]
    default["timers"].update({"client_silence_s": SILENCE_S, "accept_timeout_s": None})
    # route nothing to another line: the only other line is the after-hours one
    default["handoff"]["routes"] = []
    document["lines"] = {
        AFTER_HOURS_LINE: {
            "greeting": {"text": "Hello! This is the after-hours desk."},
            "hours": {"timezone": "UTC", "week": {"mon": []}},  # a schedule with no open hour
        }
    }
    parse_scenario(document, "demo scenario")  # fail here, not in the workers
    return document


def write_demo_scenario(path: Path) -> str:
    """Write the demo scenario as YAML; returns the path for SCENARIO_PATH."""
    path.write_text(yaml.safe_dump(demo_scenario(), sort_keys=False), encoding="utf-8")
    return str(path)

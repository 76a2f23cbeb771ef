"""The demo portal's line settings and the demo scenario: the shipped one with timers short
enough to watch, a second line that is always outside working hours, and a third, the
assistant desk, with buttons, a confirmation of the collected data, German texts and (when
the demo runs its answerer service, harness/demo/answerer.py) the contact center's answerer.

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
    "ASSISTANT_LINE",
    "CONFIRM_YES",
    "SILENCE_S",
    "SUPPORT_LINE",
    "VOTE_WAIT_S",
    "demo_scenario",
    "prepare_portal",
    "write_demo_scenario",
]

SUPPORT_LINE = 1
AFTER_HOURS_LINE = 2
ASSISTANT_LINE = 3
CONFIRM_YES = "Yes, that's right"
VOTE_WAIT_S = 120  # the portal closes an unrated dialog after this (portal clock)
SILENCE_S = 4  # the bot closes a dialog whose client went quiet (wall clock)


def prepare_portal(portal: Any) -> None:
    """Configure the seeded line and add the after-hours line served by the same bot."""
    support = portal.lines[SUPPORT_LINE]
    for line_id, name in ((AFTER_HOURS_LINE, "After hours"), (ASSISTANT_LINE, "Assistant desk")):
        if line_id not in portal.lines:
            portal.add_line(
                name,
                list(support.queue),
                welcome_bot_enable=True,
                welcome_bot_id=support.welcome_bot_id,
            )
    for line in portal.lines.values():
        line.crm_create = "none"
        line.welcome_bot_time = 0
        line.vote_time_limit = VOTE_WAIT_S


def _assistant_desk(answerer_url: str | None) -> dict[str, Any]:
    """Line 3: the topic menu and a person's button, the data confirmed, German texts; its
    answerer the demo's service when there is one (else the rules)."""
    desk: dict[str, Any] = {
        "greeting": {"text": "Hello! This is the assistant desk.", "via": "imbot.message.add"},
        "buttons": {"operator": "Talk to a person", "faq_menu": "Popular topics:"},
        "collect": {
            "confirm": {
                "text": "Is this right? {name}, {email}, {phone}",
                "yes": CONFIRM_YES,
                "no": "No, let me fix it",
            }
        },
        "translations": {
            "de": {
                "greeting": {"text": "Hallo! Hier ist der Assistenz-Schalter."},
                "buttons": {"operator": "Mit einem Menschen sprechen", "faq_menu": "Themen:"},
            }
        },
    }
    if answerer_url:
        desk["answerer"] = {
            "kind": "http",
            "http": {"url": answerer_url, "secret_env": "ANSWERER_SECRET"},
            "timeout_s": 5,
        }
    return desk


def demo_scenario(answerer_url: str | None = None, *, everywhere: bool = False) -> dict[str, Any]:
    """The shipped scenario with short timers, line 2 never open, line 3 the assistant desk;
    `everywhere`: the answerer decides on the support line too (`bench e2e --answerer http`)."""
    shipped = resources.files("orchestrator.dialog").joinpath("scenarios/default.yaml")
    text = shipped.read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    default = document["default"]
    default["timers"].update({"client_silence_s": SILENCE_S, "accept_timeout_s": None})
    # route nothing to another line: the only other line is the after-hours one
    default["handoff"]["routes"] = []
    for entry, label in zip(default["faq"], ("Prices", "Delivery", "Opening hours"), strict=True):
        entry["button"] = label  # offered in the assistant desk's topic menu
    if answerer_url and everywhere:
        default["answerer"] = _assistant_desk(answerer_url)["answerer"]
    document["lines"] = {
        ASSISTANT_LINE: _assistant_desk(answerer_url),
        AFTER_HOURS_LINE: {
            "greeting": {"text": "Hello! This is the after-hours desk."},
            "hours": {"timezone": "UTC", "week": {"mon": []}},  # a schedule with no open hour
        },
    }
    parse_scenario(document, "demo scenario")  # fail here, not in the workers
    return document


def write_demo_scenario(
    path: Path, answerer_url: str | None = None, *, everywhere: bool = False
) -> str:
    """Write the demo scenario as YAML; returns the path for SCENARIO_PATH."""
    document = demo_scenario(answerer_url, everywhere=everywhere)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return str(path)

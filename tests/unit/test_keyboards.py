"""A message's buttons on the wire (orchestrator/handler/keyboards.py): a v2 bot's are COMMAND
buttons of our hidden command, pressed once; a v1 bot's send their label."""

from __future__ import annotations

from orchestrator.events.bots_v2 import BUTTON_COMMAND
from orchestrator.handler import keyboards

BUTTONS = [{"text": "Prices", "value": "faq:0"}, {"text": "Talk to a person", "value": "operator"}]


def test_a_v2_bot_sends_command_buttons_pressed_once() -> None:
    wire = [b.wire() for b in keyboards.v2(BUTTONS) or []]
    assert wire == [
        {"TEXT": "Prices", "COMMAND": BUTTON_COMMAND, "COMMAND_PARAMS": "faq:0", "BLOCK": "Y"},
        {
            "TEXT": "Talk to a person",
            "COMMAND": BUTTON_COMMAND,
            "COMMAND_PARAMS": "operator",
            "BLOCK": "Y",
        },
    ]
    assert keyboards.v2([]) is None


def test_a_v1_bot_sends_buttons_that_post_their_label() -> None:
    assert keyboards.v1(BUTTONS) == {
        "BUTTONS": [
            {"TEXT": "Prices", "ACTION": "SEND", "ACTION_VALUE": "Prices"},
            {"TEXT": "Talk to a person", "ACTION": "SEND", "ACTION_VALUE": "Talk to a person"},
        ]
    }
    assert keyboards.v1([]) is None

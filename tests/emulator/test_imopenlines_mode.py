"""`imopenlines.session.mode.pin|unpin|pinAll|unpinAll|silent` (docs/bitrix24.md §5.12-§5.14)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.portal import Portal
from emulator.primitives import RestError
from tests.emulator._domain import OPERATORS, call, make_portal

OP = OPERATORS[0]


def _answered(portal: Portal, operator: int = OP) -> dict[str, Any]:
    """A dialog an operator has taken from the queue (status 10)."""
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.operator", {"CHAT_ID": first["chat_id"]})
    portal.operator_answer(first["chat_id"], operator)
    return first


def test_pin_sets_pause_in_session_and_entity_data() -> None:
    """pin by the operator: session PAUSE=Y and ENTITY_DATA_1 position 3 is Y; ACTIVATE=N undoes."""
    portal, _ = make_portal()
    first = _answered(portal)
    assert (
        call(portal, "imopenlines.session.mode.pin", {"CHAT_ID": first["chat_id"]}, user_id=OP)
        is True
    )
    chat = portal.chats[first["chat_id"]]
    assert portal.sessions[first["session_id"]].pause
    assert chat.entity_data_1.split("|")[3] == "Y"
    call(
        portal,
        "imopenlines.session.mode.pin",
        {"CHAT_ID": first["chat_id"], "ACTIVATE": "N"},
        user_id=OP,
    )
    assert chat.entity_data_1.split("|")[3] == "N"


def test_pin_by_another_user_gives_the_blank_error() -> None:
    """pin by someone who is not the session's operator: HTTP 400 with empty code and text."""
    portal, _ = make_portal()
    first = _answered(portal)
    with pytest.raises(RestError) as err:
        call(portal, "imopenlines.session.mode.pin", {"CHAT_ID": first["chat_id"]})
    assert (err.value.code, err.value.description, err.value.status) == ("", "", 400)


def test_pin_to_the_current_state_needs_no_operator() -> None:
    """Pinning an already pinned dialog succeeds for anyone with access (no operator check)."""
    portal, _ = make_portal()
    first = _answered(portal)
    call(portal, "imopenlines.session.mode.pin", {"CHAT_ID": first["chat_id"]}, user_id=OP)
    assert call(portal, "imopenlines.session.mode.pin", {"CHAT_ID": first["chat_id"]}) is True
    assert (
        call(portal, "imopenlines.session.mode.unpin", {"CHAT_ID": first["chat_id"]}, user_id=OP)
        is True
    )
    assert not portal.chats[first["chat_id"]].pause


def test_pin_errors() -> None:
    """pin: CHAT_ID_EMPTY for a missing id; checkAccess codes after that."""
    portal, _ = make_portal()
    with pytest.raises(RestError) as err:
        call(portal, "imopenlines.session.mode.pin", {"chat_id": 5})
    assert err.value.code == "CHAT_ID_EMPTY"
    with pytest.raises(RestError) as err:
        call(portal, "imopenlines.session.mode.pin", {"CHAT_ID": 999})
    assert err.value.code == "CHAT_ID"


def test_pin_all_changes_only_answered_open_dialogs() -> None:
    """pinAll returns the ids of the caller's sessions with 10 <= status < 50, then [] again."""
    portal, _ = make_portal()
    answered = _answered(portal)
    talking = _answered(portal)
    portal.operator_message(talking["chat_id"], OP, "Hi")
    waiting = _answered(portal)
    portal.operator_finish(waiting["chat_id"], OP)  # status 50: not pinned
    _answered(portal, OPERATORS[1])  # someone else's
    result = call(portal, "imopenlines.session.mode.pinAll", {}, user_id=OP)
    assert sorted(result) == sorted([answered["session_id"], talking["session_id"]])
    assert call(portal, "imopenlines.session.mode.pinAll", {}, user_id=OP) == []
    result = call(portal, "imopenlines.session.mode.unpinAll", {}, user_id=OP)
    assert sorted(result) == sorted([answered["session_id"], talking["session_id"]])


def test_silent_mode_sets_entity_data_3_and_hides_operator_messages() -> None:
    """silent ACTIVATE=Y: ENTITY_DATA_3 'Y', operator messages no longer go to the connector."""
    portal, sink = make_portal()
    first = _answered(portal)
    assert (
        call(
            portal,
            "imopenlines.session.mode.silent",
            {"CHAT_ID": first["chat_id"], "ACTIVATE": "Y"},
        )
        is True
    )
    chat = portal.chats[first["chat_id"]]
    assert chat.entity_data_3 == "Y"
    before = len(sink.events("ONOPENLINEMESSAGEADD"))
    portal.operator_message(first["chat_id"], OP, "whisper")
    assert len(sink.events("ONOPENLINEMESSAGEADD")) == before
    call(portal, "imopenlines.session.mode.silent", {"CHAT_ID": first["chat_id"]})
    assert chat.entity_data_3 == ""

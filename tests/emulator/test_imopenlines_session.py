"""`imopenlines.session.*`, `imopenlines.dialog.get`, `imopenlines.message.session.start` and
`imopenlines.crm.lead.create` (docs/bitrix24.md §5 common notes, §5.5-§5.11, §5.15, §5.16)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.state import ROLE_CLIENT
from tests.emulator._domain import OPERATORS, SUPERVISOR, call, make_portal

OP = OPERATORS[0]


def _error(portal: Portal, name: str, params: dict[str, Any], **kw: Any) -> RestError:
    with pytest.raises(RestError) as err:
        call(portal, name, params, **kw)
    return err.value


def _queued(portal: Portal) -> dict[str, Any]:
    """A dialog that left the bot and waits in the queue."""
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.operator", {"CHAT_ID": first["chat_id"]})
    return first


def _private_chat(portal: Portal) -> int:
    """A private chat between the seeded bot and the admin (not an open line)."""
    call(portal, "imbot.message.add", {"DIALOG_ID": str(portal.admin_user_id), "MESSAGE": "hi"})
    return max(c.id for c in portal.chats.values() if c.type == "P")


# ---- checkAccess ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "imopenlines.session.join",
        "imopenlines.session.start",
        "imopenlines.session.mode.silent",
        "imopenlines.crm.lead.create",
    ],
)
def test_check_access_codes(name: str) -> None:
    """Operator::checkAccess: CHAT_ID (bad/unknown), CHAT_TYPE (not LINES), ACCESS_DENIED."""
    portal, _ = make_portal()
    first = _queued(portal)
    stranger = portal.add_user("Outside", "Person", role="operator")
    client = portal.add_user("Some", "Client", role=ROLE_CLIENT)
    assert _error(portal, name, {"CHAT_ID": 0}).code == "CHAT_ID"
    assert _error(portal, name, {"CHAT_ID": 999}).code == "CHAT_ID"
    assert _error(portal, name, {"CHAT_ID": _private_chat(portal)}).code == "CHAT_TYPE"
    for user in (stranger.id, client.id):
        err = _error(portal, name, {"CHAT_ID": first["chat_id"]}, user_id=user)
        assert err.code == "ACCESS_DENIED"
    assert _error(portal, name, {"CHAT_ID": first["chat_id"]}, user_id=0).code == "USER_ID"


def test_check_access_keys_are_case_sensitive() -> None:
    """session.join with `chat_id` in lower case sees no CHAT_ID at all."""
    portal, _ = make_portal()
    first = _queued(portal)
    assert (
        _error(portal, "imopenlines.session.join", {"chat_id": first["chat_id"]}).code == "CHAT_ID"
    )


# ---- session.open / dialog.get ----------------------------------------------------------------


def test_session_open_returns_the_chat_id() -> None:
    """session.open finds the chat by exact USER_CODE and answers {"chatId": "<id>"}."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    assert call(portal, "imopenlines.session.open", {"USER_CODE": first["user_code"]}) == {
        "chatId": str(first["chat_id"])
    }


def test_session_open_errors() -> None:
    """session.open: unknown code, an imol|-prefixed code and a caller without permission fail."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    stranger = portal.add_user("Outside", "Person", role="operator")
    for params, kw in (
        ({"USER_CODE": "livechat|1|1|1"}, {}),
        ({"USER_CODE": "imol|" + first["user_code"]}, {}),
        ({"user_code": first["user_code"]}, {}),
        ({"USER_CODE": first["user_code"]}, {"user_id": stranger.id}),
    ):
        assert _error(portal, "imopenlines.session.open", params, **kw).code == "ACCESS_DENIED"


def test_dialog_get_resolves_every_identifier() -> None:
    """dialog.get accepts CHAT_ID, DIALOG_ID chat<N>, SESSION_ID and USER_CODE (imol| too)."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    chat_id = first["chat_id"]
    for params in (
        {"chat_id": chat_id},
        {"DIALOG_ID": f"chat{chat_id}"},
        {"session_id": first["session_id"]},
        {"USER_CODE": first["user_code"]},
        {"user_code": "imol|" + first["user_code"]},
    ):
        result = call(portal, "imopenlines.dialog.get", params)
        assert result["id"] == chat_id
        assert result["dialog_id"] == f"chat{chat_id}"


def test_dialog_get_chat_object_is_snake_case() -> None:
    """dialog.get answers the chat object with type lines, entity fields and owner."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    chat = portal.chats[first["chat_id"]]
    result = call(portal, "imopenlines.dialog.get", {"CHAT_ID": chat.id})
    assert result["type"] == "lines"
    assert result["entity_type"] == "LINES"
    assert result["entity_id"] == first["user_code"]
    assert result["entity_data_1"] == chat.entity_data_1
    assert result["owner"] == chat.author_id
    assert result["message_type"] == "L"
    assert set(result["permissions"]) >= {"manage_users_add", "can_post"}


def test_dialog_get_access_error() -> None:
    """dialog.get: no identifier, bad DIALOG_ID, unknown ids or a private chat -> ACCESS_ERROR."""
    portal, _ = make_portal()
    portal.client_message(1, "Hello")
    private = _private_chat(portal)
    for params in (
        {},
        {"DIALOG_ID": "1"},
        {"DIALOG_ID": "chatX"},
        {"CHAT_ID": 999},
        {"SESSION_ID": 999},
        {"USER_CODE": "nope"},
        {"CHAT_ID": private},
    ):
        err = _error(portal, "imopenlines.dialog.get", params)
        assert (err.code, err.description) == (
            "ACCESS_ERROR",
            "You do not have access to the specified dialog",
        )


# ---- session.start / message.session.start / join / intercept ---------------------------------


def test_session_start_opens_an_output_session() -> None:
    """session.start on a chat without open session creates one: MODE output, caller operates."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.finish", {"CHAT_ID": first["chat_id"]})
    portal.client_vote(first["chat_id"], "like")
    assert (
        call(portal, "imopenlines.session.start", {"CHAT_ID": first["chat_id"]}, user_id=OP) is True
    )
    session = portal.open_session(portal.chats[first["chat_id"]])
    assert session is not None
    assert (session.mode, session.operator_id) == ("output", OP)
    assert [h["status"] for h in session.history] == [10]
    assert len(sink.events("ONSESSIONSTART")) == 2


def test_session_start_with_open_session_only_joins() -> None:
    """session.start while a session is open adds the caller and creates nothing."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.session.start", {"CHAT_ID": first["chat_id"]}, user_id=SUPERVISOR)
    assert len(portal.sessions) == 1
    assert SUPERVISOR in portal.chats[first["chat_id"]].members


def test_message_session_start_closes_and_forks() -> None:
    """message.session.start closes the current session; the new one has PARENT_ID, MODE output."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    assert (
        call(
            portal,
            "imopenlines.message.session.start",
            {"CHAT_ID": first["chat_id"], "MESSAGE_ID": first["message_id"]},
        )
        is True
    )
    old = portal.sessions[first["session_id"]]
    new = portal.open_session(portal.chats[first["chat_id"]])
    assert old.closed
    assert old.status == 60
    assert new is not None
    assert (new.parent_id, new.mode, new.operator_id) == (old.id, "output", 1)
    assert portal.messages[portal.last_message_id(first["chat_id"])].text == "Hello"
    assert len(sink.events("ONSESSIONFINISH")) == 1


def test_message_session_start_ignores_a_wrong_message() -> None:
    """message.session.start with a missing or foreign MESSAGE_ID returns true and does nothing."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    for message_id in (None, 99999):
        assert (
            call(
                portal,
                "imopenlines.message.session.start",
                {"CHAT_ID": first["chat_id"], "MESSAGE_ID": message_id},
            )
            is True
        )
    assert len(portal.sessions) == 1


def test_join_adds_the_caller_only() -> None:
    """session.join adds the caller to the chat; operator and status stay."""
    portal, _ = make_portal()
    first = _queued(portal)
    assert (
        call(portal, "imopenlines.session.join", {"CHAT_ID": first["chat_id"]}, user_id=SUPERVISOR)
        is True
    )
    session = portal.sessions[first["session_id"]]
    assert SUPERVISOR in portal.chats[first["chat_id"]].members
    assert (session.operator_id, session.status) == (0, 5)


def test_intercept_takes_the_dialog() -> None:
    """session.intercept: the caller becomes the operator, the previous one leaves."""
    portal, _ = make_portal()
    first = _queued(portal)
    portal.operator_answer(first["chat_id"], OP)
    assert (
        call(
            portal,
            "imopenlines.session.intercept",
            {"CHAT_ID": first["chat_id"]},
            user_id=OPERATORS[1],
        )
        is True
    )
    chat = portal.chats[first["chat_id"]]
    assert chat.author_id == OPERATORS[1]
    assert OP not in chat.members
    assert "took conversation" in portal.messages[portal.last_message_id(chat.id)].text


def test_intercept_without_operator_is_a_quiet_no_op() -> None:
    """session.intercept on a queued dialog (no AUTHOR_ID) changes nothing, returns true."""
    portal, _ = make_portal()
    first = _queued(portal)
    assert (
        call(portal, "imopenlines.session.intercept", {"CHAT_ID": first["chat_id"]}, user_id=OP)
        is True
    )
    assert portal.sessions[first["session_id"]].operator_id == 0


def test_intercept_errors() -> None:
    """session.intercept: CHAT_ID_EMPTY, and any access failure becomes OPERATOR_WRONG."""
    portal, _ = make_portal()
    assert _error(portal, "imopenlines.session.intercept", {}).code == "CHAT_ID_EMPTY"
    assert (
        _error(portal, "imopenlines.session.intercept", {"CHAT_ID": 999}).code == "OPERATOR_WRONG"
    )


# ---- history.get ------------------------------------------------------------------------------


def test_history_get_shape_and_range() -> None:
    """history.get returns START_ID..END_ID of the session, camelCase top keys, lower-case rows."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.finish", {"CHAT_ID": first["chat_id"]})
    portal.client_vote(first["chat_id"], "like")
    second = portal.client_message(1, "Second session", user_code=first["user_code"])
    result = call(portal, "imopenlines.session.history.get", {"SESSION_ID": first["session_id"]})
    assert result["chatId"] == first["chat_id"]
    assert result["sessionId"] == first["session_id"]
    assert result["userId"] == f"chat{first['chat_id']}"
    assert result["canVoteHead"] == "Y"
    ids = [int(i) for i in result["message"]]
    assert min(ids) == portal.sessions[first["session_id"]].start_id
    assert first["message_id"] in ids
    assert second["message_id"] not in ids
    row = result["message"][str(first["message_id"])]
    assert set(row) == {
        "id",
        "chatid",
        "senderid",
        "recipientid",
        "date",
        "text",
        "textlegacy",
        "params",
    }
    assert row["text"] == "Hello"
    assert result["usersMessage"][f"chat{first['chat_id']}"] == [str(i) for i in ids]
    assert result["users"][str(first["user_id"])]["connector"] is True


def test_history_get_by_chat_uses_the_latest_session() -> None:
    """history.get with CHAT_ID only takes the chat's latest session."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    result = call(portal, "imopenlines.session.history.get", {"CHAT_ID": first["chat_id"]})
    assert result["sessionId"] == first["session_id"]


def test_history_get_errors() -> None:
    """history.get: MISSING_REQUIRED_PARAM, INVALID_SESSION_ID, ACCESS_DENIED (unknown/not own)."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    private = _private_chat(portal)
    name = "imopenlines.session.history.get"
    assert _error(portal, name, {}).code == "MISSING_REQUIRED_PARAM"
    assert _error(portal, name, {"session_id": 1}).code == "MISSING_REQUIRED_PARAM"
    assert _error(portal, name, {"CHAT_ID": private}).code == "INVALID_SESSION_ID"
    assert _error(portal, name, {"SESSION_ID": 999}).code == "ACCESS_DENIED"
    assert (
        _error(portal, name, {"SESSION_ID": first["session_id"]}, user_id=OP).code
        == "ACCESS_DENIED"
    )


# ---- head.vote --------------------------------------------------------------------------------


def test_head_vote_stores_rating_and_comment() -> None:
    """head.vote by a supervisor stores VOTE_HEAD and COMMENT_HEAD on any session."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    assert (
        call(
            portal,
            "imopenlines.session.head.vote",
            {"SESSION_ID": first["session_id"], "RATING": "4", "COMMENT": "Good"},
            user_id=SUPERVISOR,
        )
        is True
    )
    session = portal.sessions[first["session_id"]]
    assert (session.vote_head, session.comment_head) == (4, "Good")


def test_head_vote_value_quirks() -> None:
    """RATING > 5 is stored as 0; RATING without COMMENT wipes COMMENT_HEAD; long comments cut."""
    portal, _ = make_portal()
    sid = portal.client_message(1, "Hello")["session_id"]
    call(
        portal, "imopenlines.session.head.vote", {"SESSION_ID": sid, "RATING": 7, "COMMENT": "note"}
    )
    assert portal.sessions[sid].vote_head == 0
    call(portal, "imopenlines.session.head.vote", {"SESSION_ID": sid, "RATING": 3})
    assert (portal.sessions[sid].vote_head, portal.sessions[sid].comment_head) == (3, "")
    call(portal, "imopenlines.session.head.vote", {"SESSION_ID": sid, "COMMENT": "x" * 10_050})
    assert portal.sessions[sid].comment_head == "x" * 10_000 + "..."
    assert portal.sessions[sid].vote_head == 3


def test_head_vote_errors() -> None:
    """head.vote: EMPTY_SESSION_ID, EMPTY_VOTE_PARAMS ('0' is empty), ACCESS_DENIED."""
    portal, _ = make_portal()
    sid = portal.client_message(1, "Hello")["session_id"]
    name = "imopenlines.session.head.vote"
    assert _error(portal, name, {"RATING": 5}).code == "EMPTY_SESSION_ID"
    assert _error(portal, name, {"SESSION_ID": sid}).code == "EMPTY_VOTE_PARAMS"
    assert (
        _error(portal, name, {"SESSION_ID": sid, "RATING": "0", "COMMENT": "  "}).code
        == "EMPTY_VOTE_PARAMS"
    )
    assert _error(portal, name, {"SESSION_ID": 999, "RATING": 5}).code == "ACCESS_DENIED"
    assert (
        _error(portal, name, {"SESSION_ID": sid, "RATING": 5}, user_id=OP).code == "ACCESS_DENIED"
    )


# ---- crm.lead.create --------------------------------------------------------------------------


def test_crm_lead_create_refuses_a_caller_who_is_not_the_operator() -> None:
    """crm.lead.create by the admin (the webhook owner) on an operator's dialog fails."""
    portal, _ = make_portal()
    first = _queued(portal)
    portal.operator_answer(first["chat_id"], OP)
    err = _error(portal, "imopenlines.crm.lead.create", {"CHAT_ID": first["chat_id"]})
    assert err.code == "ERROR_USER_NOT_OPERATOR"


def test_crm_lead_create_binds_a_new_lead_once() -> None:
    """The operator creates a lead: it is bound in ENTITY_DATA_1/2; a second call creates none."""
    portal, _ = make_portal()
    portal.lines[1].crm_create = "none"
    first = _queued(portal)
    portal.operator_answer(first["chat_id"], OP)
    assert (
        call(portal, "imopenlines.crm.lead.create", {"CHAT_ID": first["chat_id"]}, user_id=OP)
        is True
    )
    chat = portal.chats[first["chat_id"]]
    (lead_id,) = portal.leads
    assert chat.entity_data_1.startswith(f"Y|LEAD|{lead_id}|")
    assert chat.entity_data_2.startswith(f"LEAD|{lead_id}|")
    assert portal.leads[lead_id].fields["ASSIGNED_BY_ID"] == str(OP)
    call(portal, "imopenlines.crm.lead.create", {"CHAT_ID": first["chat_id"]}, user_id=OP)
    assert len(portal.leads) == 1


def test_crm_lead_create_without_open_session() -> None:
    """crm.lead.create on a chat whose session is closed cannot load the session."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    portal.sessions[first["session_id"]].closed = True
    err = _error(portal, "imopenlines.crm.lead.create", {"CHAT_ID": first["chat_id"]})
    assert err.code == "IMOL_CHAT_ERROR_ANSWER_NOT_LOAD_SESSION"

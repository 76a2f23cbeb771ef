"""The Open Lines session lifecycle (docs/bitrix24.md §4.4-§4.5), driven through the domain
actions the control API calls, checked against the session's status history."""

from __future__ import annotations

import pytest

from emulator.primitives import RestError
from tests.emulator._domain import BOT, OPERATORS, call, make_portal, statuses

OP = OPERATORS[0]


def test_bot_queue_operator_finish_vote_walks_every_status() -> None:
    """Bot dialog -> queue -> operator -> finish (vote wait) -> like closes: 0,20,5,10,40,50,60."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    chat_id, session_id = first["chat_id"], first["session_id"]
    assert portal.sessions[session_id].operator_id == BOT
    call(portal, "imopenlines.bot.session.operator", {"CHAT_ID": chat_id})
    portal.operator_answer(chat_id, OP)
    portal.operator_message(chat_id, OP, "How can I help?")
    portal.operator_finish(chat_id, OP)
    assert not sink.events("ONSESSIONFINISH")  # vote wait is not closed yet
    portal.client_vote(chat_id, "like")
    assert statuses(portal, session_id) == [0, 20, 5, 10, 40, 50, 60]
    session = portal.sessions[session_id]
    assert session.closed
    assert session.vote == 5
    assert len(sink.events("ONSESSIONFINISH")) == 1


def test_bot_reply_counts_as_an_operator_message() -> None:
    """A bot answering the client moves the session to 40, the client's next message to 25."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imbot.message.add", {"DIALOG_ID": f"chat{first['chat_id']}", "MESSAGE": "Hi"})
    portal.client_message(1, "I need help", user_code=first["user_code"])
    assert statuses(portal, first["session_id"]) == [0, 20, 40, 25]


def test_first_message_creates_client_chat_and_session() -> None:
    """The first message of a new user code creates a connector user, a LINES chat and a session."""
    portal, sink = make_portal()
    out = portal.client_message(1, "Hi there", user_code="telegrambot|1|555|777", name="Jane Roe")
    client = portal.users[out["user_id"]]
    chat = portal.chats[out["chat_id"]]
    session = portal.sessions[out["session_id"]]
    assert client.is_connector
    assert client.full_name == "Jane Roe"
    assert chat.entity_type == "LINES"
    assert chat.entity_id == "telegrambot|1|555|777"
    assert chat.author_id == BOT
    assert set(chat.members) == {client.id, BOT}
    assert session.mode == "input"
    assert session.source == "telegrambot"
    start = portal.messages[session.start_id]  # START_ID: the "started" system message
    assert start.system
    assert start.id == out["message_id"] - 1
    assert sink.names()[:2] == ["ONSESSIONSTART", "ONIMBOTJOINCHAT"]
    again = portal.client_message(1, "More", user_code="telegrambot|1|555|777")
    assert (again["chat_id"], again["session_id"]) == (out["chat_id"], out["session_id"])


def test_user_code_of_another_line_is_refused() -> None:
    """A USER_CODE whose line part differs from the line is rejected by the control action."""
    portal, _ = make_portal()
    with pytest.raises(RestError) as err:
        portal.client_message(1, "x", user_code="livechat|2|1|1")
    assert err.value.code == "WRONG_USER_CODE"


def test_client_zero_ends_the_bot_session() -> None:
    """Client text '0' with an open-line bot in the chat queues the dialog (status 5)."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    bot_messages = len(sink.events("ONIMBOTMESSAGEADD"))
    portal.client_message(1, "0", user_code=first["user_code"])
    chat = portal.chats[first["chat_id"]]
    session = portal.sessions[first["session_id"]]
    assert session.status == 5
    assert session.operator_id == 0
    assert session.wait_answer
    assert BOT not in chat.members
    assert chat.author_id == 0
    assert len(sink.events("ONIMBOTMESSAGEADD")) == bot_messages  # the bot never saw '0'


def test_zero_without_a_bot_is_an_ordinary_message() -> None:
    """Without an open-line bot in the chat, '0' is just text and the bot sees nothing."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.operator", {"CHAT_ID": first["chat_id"]})
    portal.operator_answer(first["chat_id"], OP)
    portal.client_message(1, "0", user_code=first["user_code"])
    assert portal.sessions[first["session_id"]].status == 20
    assert len(sink.events("ONIMBOTMESSAGEADD")) == 1


def test_welcome_bot_timeout_sends_the_dialog_to_the_queue() -> None:
    """WELCOME_BOT_TIME (600 s default) elapsed on the portal clock: tick() queues the dialog."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    portal.clock.advance(599)
    portal.tick()
    assert portal.sessions[first["session_id"]].status == 20
    portal.clock.advance(2)
    portal.tick()
    session = portal.sessions[first["session_id"]]
    assert session.status == 5
    assert session.operator_id == 0
    assert BOT not in portal.chats[first["chat_id"]].members
    assert session.time_bot >= 600


def test_welcome_bot_time_zero_never_forwards() -> None:
    """WELCOME_BOT_TIME=0 keeps the dialog with the bot however long it waits."""
    portal, _ = make_portal()
    portal.lines[1].welcome_bot_time = 0
    first = portal.client_message(1, "Hello")
    portal.clock.advance(86_400)
    portal.tick()
    assert portal.sessions[first["session_id"]].operator_id == BOT


def test_welcome_bot_left_close_keeps_the_bot_hidden() -> None:
    """With WELCOME_BOT_LEFT=close the bot leaves the members but stays as a hidden relation."""
    portal, _ = make_portal()
    portal.lines[1].welcome_bot_left = "close"
    first = portal.client_message(1, "Hello")
    portal.clock.advance(601)
    portal.tick()
    chat = portal.chats[first["chat_id"]]
    assert BOT not in chat.members
    assert BOT in chat.fake_relations


def test_line_without_welcome_bot_queues_at_once() -> None:
    """No welcome bot: the new session goes straight to the queue and waits there (0, 5)."""
    portal, sink = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    portal.client_message(1, "Anyone?", user_code=first["user_code"])
    assert statuses(portal, first["session_id"]) == [0, 5]
    assert portal.chats[first["chat_id"]].fake_relations == list(OPERATORS)
    assert sink.posts == []  # nothing bound without an event URL


def test_operator_answer_twice_is_refused() -> None:
    """Answering a dialog one already leads fails with ..._ALREADY_RESPONSIBLE."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    with pytest.raises(RestError) as err:
        portal.operator_answer(first["chat_id"], OP)
    assert err.value.code == "IMOL_CHAT_ERROR_ANSWER_ALREADY_RESPONSIBLE"


def test_answer_replaces_the_previous_operator() -> None:
    """Another operator answering evicts the previous human operator and owns the chat."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OPERATORS[0])
    portal.operator_answer(first["chat_id"], OPERATORS[1])
    chat = portal.chats[first["chat_id"]]
    assert chat.author_id == OPERATORS[1]
    assert OPERATORS[0] not in chat.members
    assert OPERATORS[1] in chat.members
    assert portal.sessions[first["session_id"]].operator_id == OPERATORS[1]


def test_vote_time_limit_expiry_closes() -> None:
    """VOTE_TIME_LIMIT elapsed while waiting for the vote closes the session (60) in tick()."""
    portal, _sink = make_portal(event_url=None)
    portal.lines[1].vote_time_limit = 60
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    portal.clock.advance(59)
    portal.tick()
    assert portal.sessions[first["session_id"]].status == 50
    portal.clock.advance(2)
    portal.tick()
    assert portal.sessions[first["session_id"]].closed
    assert statuses(portal, first["session_id"])[-2:] == [50, 60]


def test_finish_without_vote_message_closes_at_once() -> None:
    """VOTE_MESSAGE=N: finishing closes straight away and fires OnSessionFinish."""
    portal, sink = make_portal()
    portal.lines[1].vote_message = False
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.operator", {"CHAT_ID": first["chat_id"]})
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    session = portal.sessions[first["session_id"]]
    assert session.status == 60
    assert session.closed
    assert session.end_id == portal.last_message_id(first["chat_id"])
    assert len(sink.events("ONSESSIONFINISH")) == 1


def test_dislike_is_stored_as_one() -> None:
    """A client dislike is VOTE=1 (like is 5)."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    portal.client_vote(first["chat_id"], "dislike")
    assert portal.sessions[first["session_id"]].vote == 1


def test_vote_without_closing_delay_keeps_waiting() -> None:
    """VOTE_CLOSING_DELAY=N: the vote is stored, the session stays in 50."""
    portal, _ = make_portal(event_url=None)
    portal.lines[1].vote_closing_delay = False
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    portal.client_vote(first["chat_id"], "like")
    session = portal.sessions[first["session_id"]]
    assert session.status == 50
    assert not session.closed
    assert session.vote == 5


def test_second_finish_closes_a_waiting_session() -> None:
    """Finishing a session already waiting for the client closes it."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    assert portal.sessions[first["session_id"]].status == 60


def test_client_message_during_vote_wait_reopens() -> None:
    """A client writing while the vote is awaited brings the dialog back to 25."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    portal.client_message(1, "Wait, one more thing", user_code=first["user_code"])
    session = portal.sessions[first["session_id"]]
    assert session.status == 25
    assert not session.wait_vote
    assert not session.wait_action


def test_message_after_close_starts_a_new_session_in_the_same_chat() -> None:
    """After close, the client's next message opens a new session; the welcome bot joins again."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.finish", {"CHAT_ID": first["chat_id"]})
    portal.client_vote(first["chat_id"], "like")
    second = portal.client_message(1, "Back again", user_code=first["user_code"])
    assert second["chat_id"] == first["chat_id"]
    assert second["session_id"] != first["session_id"]
    assert portal.sessions[second["session_id"]].parent_id == 0
    assert len(sink.events("ONSESSIONSTART")) == 2
    assert len(sink.events("ONIMBOTJOINCHAT")) == 2
    assert portal.chats[first["chat_id"]].session_id == second["session_id"]


def test_entity_data_follows_the_session() -> None:
    """ENTITY_DATA_1 carries CRM lead, PAUSE, WAIT_ACTION, SESSION_ID and LINE_ID at each step."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    chat = portal.chats[first["chat_id"]]
    lead_id = chat.crm_entity_id
    parts = chat.entity_data_1.split("|")
    assert parts[:6] == ["Y", "LEAD", str(lead_id), "N", "N", str(first["session_id"])]
    assert parts[7] == "1"
    assert chat.entity_data_2 == f"LEAD|{lead_id}|COMPANY|0|CONTACT|0|DEAL|0"
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    assert chat.entity_data_1.split("|")[4] == "Y"  # waiting for the client's action


def test_crm_create_none_creates_no_lead() -> None:
    """CRM_CREATE=none: the chat stays unbound (ENTITY_DATA_1 starts with N|NONE|0)."""
    portal, _ = make_portal(event_url=None)
    portal.lines[1].crm_create = "none"
    first = portal.client_message(1, "Hello")
    assert portal.chats[first["chat_id"]].entity_data_1.startswith("N|NONE|0|")
    assert portal.leads == {}


def test_operator_message_reaches_a_bot_that_stays() -> None:
    """An OPENLINE bot kept in the chat (LEAVE=N, WELCOME_BOT_LEFT=close) sees operators."""
    portal, sink = make_portal()
    portal.lines[1].welcome_bot_left = "close"
    first = portal.client_message(1, "Hello")
    call(
        portal,
        "imopenlines.bot.session.transfer",
        {"CHAT_ID": first["chat_id"], "USER_ID": OP, "LEAVE": "N"},
    )
    portal.operator_message(first["chat_id"], OP, "Operator here")
    last = sink.events("ONIMBOTMESSAGEADD")[-1]
    assert last["data"]["PARAMS"]["MESSAGE"] == "Operator here"
    assert last["data"]["USER"]["ID"] == str(OP)


def test_control_actions_validate_their_input() -> None:
    """Unknown line, chat, user or vote value fail with a RestError."""
    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    with pytest.raises(RestError):
        portal.client_message(99, "x")
    with pytest.raises(RestError):
        portal.operator_answer(999, OP)
    with pytest.raises(RestError):
        portal.operator_answer(first["chat_id"], BOT)
    with pytest.raises(RestError):
        portal.client_vote(first["chat_id"], "meh")


def test_snapshot_holds_the_state_and_history() -> None:
    """snapshot() is JSON-able and shows sessions with status history, chats, leads, counters."""
    import json

    portal, _ = make_portal()
    first = portal.client_message(1, "Hello")
    snap = json.loads(json.dumps(portal.snapshot()))
    session = next(s for s in snap["sessions"] if s["id"] == first["session_id"])
    assert [h["status"] for h in session["history"]] == [0, 20]
    chat = next(c for c in snap["chats"] if c["id"] == first["chat_id"])
    assert chat["entity_data_1"].split("|")[5] == str(first["session_id"])
    assert snap["event_counts"]["ONSESSIONSTART"] == 1
    assert snap["admin_user_id"] == 1
    assert len(snap["leads"]) == 1


def test_client_statuses_follow_the_update_rules() -> None:
    """Client after operator: 25; again: 20 (only >= 40 gives 25); operator reply: 40."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_message(first["chat_id"], OP, "Yes?")
    for text in ("One", "Two"):
        portal.client_message(1, text, user_code=first["user_code"])
    portal.operator_message(first["chat_id"], OP, "Done")
    assert statuses(portal, first["session_id"]) == [0, 5, 10, 40, 25, 20, 40]


def test_operator_message_during_vote_wait_stays_50() -> None:
    """An operator writing while the client's action is awaited keeps status 50."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    portal.operator_message(first["chat_id"], OP, "Anything else?")
    assert portal.sessions[first["session_id"]].status == 50


def test_vote_request_reaches_the_client() -> None:
    """The like/dislike request is a system message from the operator sent to the connector."""
    portal, sink = make_portal()
    first = portal.client_message(1, "Hello")
    call(portal, "imopenlines.bot.session.operator", {"CHAT_ID": first["chat_id"]})
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    out = sink.events("ONOPENLINEMESSAGEADD")[-1]["data"]["DATA"]["message"]
    assert out["system"] == "Y"
    assert out["user_id"] == str(OP)
    vote_message = portal.messages[int(out["id"])]
    assert vote_message.params["IMOL_VOTE"] == first["session_id"]


def test_vote_outside_the_vote_wait_forces_50() -> None:
    """A vote during the dialog is stored and the status is forced to 50 (portal quirk)."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.client_vote(first["chat_id"], "like")
    session = portal.sessions[first["session_id"]]
    assert session.status == 50
    assert session.vote == 5
    assert not session.closed


def test_vote_after_close_is_ignored() -> None:
    """A closed session no longer takes the client's vote."""
    portal, _ = make_portal(event_url=None)
    portal.lines[1].vote_message = False
    first = portal.client_message(1, "Hello")
    portal.operator_answer(first["chat_id"], OP)
    portal.operator_finish(first["chat_id"], OP)
    portal.client_vote(first["chat_id"], "dislike")
    assert portal.sessions[first["session_id"]].vote == 0


def test_the_close_clears_the_chats_session() -> None:
    """Chat::close (imopenlines/lib/chat.php, called by Session\\Update::closeSession when CLOSED
    turns Y) writes ID 0 into LINES_SESSION: dialog.get's entity_data_1 position 5 no longer
    names the closed session, and the chat's AUTHOR_ID and whisper mode are reset; the vote wait
    (status 50) is not a close and keeps it."""
    portal, _ = make_portal(event_url=None)
    first = portal.client_message(1, "Hello")
    chat_id, session_id = first["chat_id"], first["session_id"]
    portal.operator_answer(chat_id, OP)
    portal.operator_finish(chat_id, OP)  # the line asks for a vote first
    shown = call(portal, "imopenlines.dialog.get", {"CHAT_ID": chat_id})
    assert shown["entity_data_1"].split("|")[5] == str(session_id)
    portal.client_vote(chat_id, "like")
    assert portal.sessions[session_id].closed
    shown = call(portal, "imopenlines.dialog.get", {"CHAT_ID": chat_id})
    assert shown["entity_data_1"].split("|")[5] == "0"
    assert shown["owner"] == 0
    again = portal.client_message(1, "Back again", user_code=first["user_code"])
    shown = call(portal, "imopenlines.dialog.get", {"CHAT_ID": chat_id})
    assert shown["entity_data_1"].split("|")[5] == str(again["session_id"])

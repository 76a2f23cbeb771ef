"""harness/truth.py reads the verdict's counts off a portal's journal: hand-written journals of
one chat show what counts as lost, stuck, a duplicate message or lead, and a necessary call."""

from __future__ import annotations

from typing import Any

from harness.truth import PortalTruth, necessary_calls

MEMBER = "m1"
CHAT = 7
BOT = 6


class Journal:
    """A chat's journal, written entry by entry as the portal would."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, kind: str, **fields: Any) -> Journal:
        self.entries.append({"seq": len(self.entries) + 1, "at": 0, "kind": kind, **fields})
        return self

    def start(self, session: int = 1) -> Journal:
        self.add("bot_registered", bot_id=BOT)
        return self.add("session", chat_id=CHAT, session_id=session, reason="start", status=0)

    def client(self, text: str) -> Journal:
        return self.add("message", chat_id=CHAT, author="client", text=text, via="client")

    def event(self, name: str, ok: bool = True) -> Journal:
        return self.add("event_posted", chat_id=CHAT, name=name, ok=ok, status=200 if ok else 0)

    def bot(self, text: str) -> Journal:
        return self.add("message", chat_id=CHAT, author="bot", text=text, via="imbot.message.add")

    def operator_holds(self, session: int = 1) -> Journal:
        return self.add("session", chat_id=CHAT, session_id=session, reason="answer", operator_id=4)

    def bot_holds(self, session: int = 1) -> Journal:
        return self.add(
            "session", chat_id=CHAT, session_id=session, reason="welcome_bot", operator_id=BOT
        )

    def ended(
        self, session: int = 1, rating: int = 5, lead: bool = True, reason: str = "bot_finish"
    ) -> Journal:
        self.add(
            "session",
            chat_id=CHAT,
            session_id=session,
            reason=reason,
            status=60,
            closed=True,
        )
        if rating:
            self.add("head_vote", chat_id=CHAT, session_id=session, rating=rating)
        if lead:
            self.add(
                "lead_created",
                chat_id=CHAT,
                session_id=session,
                lead_id=100 + session,
                via="crm.lead.add",
                fields={"ORIGIN_ID": f"{MEMBER}:{CHAT}:{session}"},
            )
        return self

    def truth(self) -> PortalTruth:
        return PortalTruth(MEMBER, self.entries)


def _first_turn(j: Journal) -> Journal:
    """The client writes a question first; the bot joins; both events call for an answer."""
    return (
        j.start()
        .bot_holds()
        .client("What is the price of delivery?")
        .event("ONIMBOTJOINCHAT")
        .event("ONIMBOTMESSAGEADD")
    )


def test_a_re_ask_for_a_second_event_in_the_turn_is_no_duplicate() -> None:
    j = _first_turn(Journal()).bot("How may I call you?").bot("Our prices...")
    j.bot("How may I call you?").ended()
    assert j.truth().duplicate_messages() == []


def test_a_join_queued_before_the_first_message_still_calls_for_an_answer_after_it() -> None:
    """Fetch mode: the portal writes the bot's join into its log before the client's message
    (push mode posts it after), so the join's answer comes in the next turn."""
    j = Journal().start().bot_holds()
    j.add("event_queued", chat_id=CHAT, name="ONIMBOTV2JOINCHAT", event_id=1)
    j.client("What is the price of delivery?")
    j.add("event_queued", chat_id=CHAT, name="ONIMBOTV2MESSAGEADD", event_id=2)
    j.bot("How may I call you?").bot("Our prices...").bot("How may I call you?").ended()
    assert j.truth().duplicate_messages() == []


def test_a_text_twice_in_a_row_is_a_duplicate_even_when_two_events_called() -> None:
    j = _first_turn(Journal()).bot("How may I call you?").bot("How may I call you?").ended()
    assert j.truth().duplicate_messages() == ["chat 7: 'How may I call you?' (+1)"]


def test_more_copies_than_the_turn_called_for_are_duplicates() -> None:
    j = _first_turn(Journal())
    for _ in range(3):
        j.bot("How may I call you?").bot("Our prices...")
    assert j.truth().duplicate_messages() == [
        "chat 7: 'How may I call you?' (+1)",
        "chat 7: 'Our prices...' (+1)",
    ]


def test_the_same_text_in_two_turns_is_no_duplicate() -> None:
    j = _first_turn(Journal()).bot("Sorry, again?").client("hm").event("ONIMBOTMESSAGEADD")
    j.bot("Sorry, again?").ended()
    assert j.truth().duplicate_messages() == []


def test_a_session_that_ended_rated_with_a_lead_is_neither_stuck_nor_lost() -> None:
    j = _first_turn(Journal()).bot("How may I call you?").ended()
    truth = j.truth()
    assert truth.stuck([CHAT]) == []
    assert truth.lost() == []
    assert len(truth.acknowledged()) == 2


def test_a_session_without_rating_or_lead_is_stuck_and_its_events_lost() -> None:
    j = _first_turn(Journal()).bot("How may I call you?").ended(rating=0, lead=False)
    truth = j.truth()
    assert truth.stuck([CHAT]) == [
        "chat 7: session 1 has no rating",
        "chat 7: session 1 has no lead",
    ]
    assert [e["name"] for e in truth.lost()] == ["ONIMBOTJOINCHAT", "ONIMBOTMESSAGEADD"]


def test_an_unanswered_client_message_to_the_bot_is_lost() -> None:
    """The client answers the bot and hears nothing; the portal closing the session later (its
    own timer, rated and with a lead) does not count as the bot's answer."""
    j = _first_turn(Journal()).bot("How may I call you?").client("Anna")
    j.event("ONIMBOTMESSAGEADD").ended(reason="close")
    lost = j.truth().lost()
    assert [(e["name"], e["seq"]) for e in lost] == [("ONIMBOTMESSAGEADD", 9)]


def test_a_client_message_while_an_operator_holds_the_session_asks_nothing_of_the_bot() -> None:
    j = Journal().start().operator_holds().client("hello").event("ONIMBOTMESSAGEADD")
    assert j.ended().truth().lost() == []


def test_a_refused_delivery_is_counted_apart_from_the_acknowledged() -> None:
    j = _first_turn(Journal()).event("ONIMBOTMESSAGEADD", ok=False).bot("Hi").ended()
    assert (len(j.truth().acknowledged()), j.truth().refused()) == (2, 1)


def test_a_second_lead_of_a_session_is_a_duplicate_lead() -> None:
    j = _first_turn(Journal()).bot("How may I call you?").ended()
    j.add("crm_binding", chat_id=CHAT, session_id=1, entity_id=555)
    assert j.truth().duplicate_leads() == 1


def test_an_email_or_phone_the_client_gave_must_be_on_the_sessions_lead() -> None:
    """The client's e-mail and phone (written as people write them) must be among the lead's
    multifield values as the lead stands after every update; a name-like text is not judged."""
    j = _first_turn(Journal()).bot("How may I call you?").client("Boris")
    j.client("Boris@Example.com").client("+7 (900) 123-45-67").ended()
    lacking = j.truth().contact_data_missing([CHAT])
    assert lacking == [
        "chat 7: session 1's lead lacks 'Boris@Example.com'",
        "chat 7: session 1's lead lacks '+7 (900) 123-45-67'",
    ]
    j.add(
        "lead_updated", lead_id=101, fields={"EMAIL": [{"ID": "1", "VALUE": "boris@example.com"}]}
    )
    assert j.truth().contact_data_missing([CHAT]) == [lacking[1]]
    j.add("lead_updated", lead_id=101, fields={"PHONE": [{"ID": "2", "VALUE": "+79001234567"}]})
    assert j.truth().contact_data_missing([CHAT]) == []
    assert j.truth().contact_data_missing([]) == []  # only the chats the clients opened


def test_necessary_calls_count_what_the_portal_shows_and_name_the_read() -> None:
    j = _first_turn(Journal()).bot("How may I call you?").bot("Our prices...")
    j.add("session", chat_id=CHAT, session_id=1, reason="queue", operator_id=0)
    j.add("lead_created", chat_id=CHAT, session_id=9, lead_id=1, via="line")  # the line's own
    j.ended()
    assert necessary_calls(j.truth()) == {
        "messages": 2,
        "session_queue": 1,
        "session_bot_finish": 1,
        "ratings": 1,
        "leads": 1,
        "read: imopenlines.session.history.get (the client's vote)": 1,
    }


def test_a_press_and_an_edit_are_things_people_do() -> None:
    """A v2 button press calls for an answer like a message (the prompt asked again after the
    topic's answer is no duplicate); an edit by the client starts a turn (the e-mail asked
    again after an invalid edit is none either); contact data counts as finally written."""
    j = _first_turn(Journal()).bot("How may I call you?")
    j.event("ONIMBOTV2COMMANDADD").bot("We deliver in 3 days.").bot("How may I call you?")
    j.client("Boris").bot("What is your e-mail?").client("boris@exmaple.com")
    typo = len(j.entries) - 1
    j.entries[typo]["message_id"] = 501
    j.bot("And your phone?")
    j.add("message_updated", chat_id=CHAT, message_id=501, text="boris@wrong", via="client")
    j.bot("What is your e-mail?")
    j.add("message_updated", chat_id=CHAT, message_id=501, text="boris@example.com", via="client")
    j.ended()
    assert j.truth().chats[CHAT].duplicates() == []
    [lacking] = j.truth().contact_data_missing([CHAT])
    assert "boris@example.com" in lacking  # the edit is what counts, not the typo
    j.add("message_deleted", chat_id=CHAT, message_id=501, via="client")
    assert j.truth().contact_data_missing([CHAT]) == []

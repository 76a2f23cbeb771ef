"""The rule a SendMessage retry uses to tell its own earlier post from the bot saying the same
text again on purpose (orchestrator/handler/resend.py): skip when the chat shows more copies
than the dialog meant to post before this effect."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.bitrix.models import SessionHistory
from orchestrator.dialog.effects import EffectId, SendMessage, Via, effect_payload
from orchestrator.handler.resend import already_posted, earlier_sends
from orchestrator.pipeline.records import EffectRecord

MEMBER = "m1"
CHAT = 77
BOT = 500  # the bot's user id on the portal
CLIENT = 600  # the connector user (the client)
OPERATOR = 9
ASK = "What is your e-mail?"


def _send(seq: int, text: str = ASK, via: Via = "bot", index: int = 0, session: int = 5) -> Any:
    return SendMessage(
        effect_id=EffectId(MEMBER, CHAT, session, seq, index), chat_id=CHAT, text=text, via=via
    )


def _history(*messages: tuple[int, str], chat_id: int = CHAT, session: int = 5) -> Any:
    """A session history as imopenlines.session.history.get answers: (sender, text) per message."""
    rows = {
        str(100 + n): {
            "id": str(100 + n),
            "chatid": str(chat_id),
            "senderid": str(sender),
            "date": "2026-03-11T13:12:46+01:00",
            "text": text,
            "params": [],
        }
        for n, (sender, text) in enumerate(messages)
    }
    users = {
        str(BOT): {"id": str(BOT), "bot": True, "connector": False},
        str(CLIENT): {"id": str(CLIENT), "bot": False, "connector": True},
        str(OPERATOR): {"id": str(OPERATOR), "bot": False, "connector": False},
    }
    return SessionHistory.model_validate(
        {"chatId": chat_id, "sessionId": session, "message": rows, "users": users}
    )


def test_the_effects_own_earlier_post_is_recognised() -> None:
    """Nothing said before, one copy in the chat: that copy is this effect's earlier try."""
    assert already_posted(_send(4), [], [_history((CLIENT, "hi"), (BOT, ASK))])


def test_nothing_in_the_chat_means_post() -> None:
    """The earlier try never reached the portal: nothing shown, the message is posted."""
    assert not already_posted(_send(4), [], [_history((CLIENT, "hi"))])


def test_a_deliberate_re_ask_is_still_posted() -> None:
    """The bot asked once and asks again: the copy shown is the first ask, so the re-ask goes."""
    first = _send(2)
    history = _history((BOT, ASK), (CLIENT, "not an address"))
    assert not already_posted(_send(4), [first], [history])


def test_a_re_ask_already_posted_by_its_earlier_try_is_recognised() -> None:
    """Two copies shown, one meant before: the second is this effect's own."""
    history = _history((BOT, ASK), (CLIENT, "not an address"), (BOT, ASK))
    assert already_posted(_send(4), [_send(2)], [history])


def test_an_operator_writing_the_same_words_is_not_the_bot() -> None:
    """A person's message with the same text is not a copy of ours."""
    assert not already_posted(_send(4), [], [_history((OPERATOR, ASK))])


def test_the_voice_must_match() -> None:
    """A line (system) message and a bot message of the same text are different messages."""
    system = _send(4, via="session")
    assert not already_posted(system, [], [_history((BOT, ASK))])
    assert not already_posted(_send(4), [], [_history((0, ASK))])
    assert already_posted(system, [], [_history((0, ASK))])


def test_a_note_counts_as_the_bots_voice() -> None:
    """A note (SKIP_CONNECTOR) is posted by the bot like its messages."""
    assert already_posted(_send(4, via="note"), [], [_history((BOT, ASK))])


def test_messages_of_another_chat_are_not_counted() -> None:
    """A history of another chat adds no copies."""
    assert not already_posted(_send(4), [], [_history((BOT, ASK), chat_id=CHAT + 1)])


def test_histories_that_overlap_count_each_message_once() -> None:
    """The same message read through two histories is one copy: a re-ask still goes."""
    history = _history((BOT, ASK))
    assert not already_posted(_send(4), [_send(2)], [history, history])


def test_the_portals_html_rendering_of_the_text_matches() -> None:
    """Line breaks as <br /> and entities in the history match the text we sent."""
    text = "Prices & terms:\nsee the site"
    rendered = "Prices &amp; terms:<br />see the site "
    assert already_posted(_send(4, text=text), [], [_history((BOT, rendered))])


def test_an_earlier_message_that_was_never_posted_makes_it_repeat_not_skip() -> None:
    """The first ask failed for good; the re-ask's own earlier post is then not recognised: the
    rule errs towards a repeat (as without it), never towards a lost message."""
    history = _history((CLIENT, "hi"), (BOT, ASK))  # only the re-ask's own earlier try
    assert not already_posted(_send(4), [_send(2)], [history])


def _records(*effects: SendMessage) -> dict[bytes, bytes]:
    return {
        str(e.effect_id).encode(): EffectRecord(str(e.effect_id), e.kind, effect_payload(e))
        .to_json()
        .encode()
        for e in effects
    }


def test_earlier_sends_are_the_messages_committed_before_in_every_session() -> None:
    """Ordered by transition seq then index across sessions; later ones and other kinds left
    out."""
    old_session = _send(3, session=4)
    same_seq_before = _send(9, index=0)
    mine = _send(9, index=2)
    later = _send(10)
    records = _records(later, mine, same_seq_before, old_session, _send(12, index=1))
    records[b"m1:77:5:9:1"] = (
        EffectRecord("m1:77:5:9:1", "CancelTimer", {"name": "t"}).to_json().encode()
    )
    found = earlier_sends(mine.effect_id, records)
    assert [e.effect_id for e in found] == [old_session.effect_id, same_seq_before.effect_id]
    assert found[0].text == ASK


def test_earlier_sends_of_an_id_we_did_not_mint_are_none() -> None:
    """An id that is not `<member>:<chat>:<session>:<seq>:<index>` has no order: nothing before
    (it does not parse, and an effect without an id has none)."""
    with pytest.raises(ValueError):
        EffectId.parse("not-an-effect-id")
    assert earlier_sends(None, _records(_send(1))) == []

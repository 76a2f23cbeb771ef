"""The scripted dialogs of a line whose replies a contact center's own service decides (the
`answerer` scenario: the shipped rules, `answerer.kind: http`; line 3 hands off when it fails).
Registered into tests/replay_dialogs.SCRIPTS like the others."""

from __future__ import annotations

from tests.replay_dialogs import _close_and_rate, script
from tests.replay_scripts import SESSION, Dialog, Recorder

REPLY = {"action": "reply", "text": "Delivery is free from 50 EUR."}


@script(
    "the answerer replies to the opening question, a valid name is taken without asking it, "
    "a question while one is out waits and is asked about after the answer, a stale and a "
    "repeated answer change nothing, the answerer asks for the e-mail again (a re-ask) and "
    "hands off with its own note; through to the lead",
    scenario="answerer",
)
def answerer_decides(rec: Recorder) -> None:
    d = Dialog(chat_id=940)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("How much is delivery?"))
    first = rec.effect_id("AskAnswerer")
    rec.feed(d.answered(first, REPLY))
    rec.feed(d.answered(first, REPLY))  # the same answer again: applied once
    rec.feed(d.client("Jane Roe"))  # the name asked at the greeting: taken, no question
    rec.feed(d.client("Why do you need my e-mail?"))
    why = rec.effect_id("AskAnswerer")
    rec.feed(d.client("Is it safe?", after=1))  # one question out at a time: this one waits
    rec.feed(d.answered(first, REPLY))  # stale: an earlier turn
    ask_again = {"action": "ask", "field": "email", "text": "We only use it for this request."}
    rec.feed(d.answered(why, ask_again))  # then the waiting message goes out
    safe = rec.effect_id("AskAnswerer")
    rec.feed(
        d.answered(
            safe,
            {
                "action": "handoff",
                "reason": "privacy question",
                "note": "Worried about data protection.",
                "text": "A colleague will explain how we keep your data.",
            },
        )
    )
    rec.feed(d.operator("Hi Jane, about your data: we never share it.", after=30))
    _close_and_rate(rec, d, vote=5, lead_id=1040)


@script(
    "the answerer fails three ways (a timeout, an action invalid by now, a question given up "
    "after its workers died): each time the scenario's rules answer the same message; then "
    "it finishes the session itself",
    scenario="answerer",
)
def answerer_falls_back_to_rules(rec: Recorder) -> None:
    d = Dialog(chat_id=941)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("Hello"))
    rec.feed(d.answered(rec.effect_id("AskAnswerer"), failure="timeout"))
    rec.feed(d.client("what is the price?"))
    pending = rec.effect_id("AskAnswerer")
    rec.feed(d.client("Jane Roe"))  # taken while the question is out
    # asks for the name the client gave meanwhile: invalid now, the rules answer instead (the
    # FAQ: "price")
    rec.feed(d.answered(pending, {"action": "ask", "field": "name"}))
    rec.feed(d.client("tell me about shipping"))
    rec.feed(d.failed(rec.effect_id("AskAnswerer"), "AskAnswerer", "crashed_while_running"))
    rec.feed(d.client("that is all, thanks"))
    done = {"action": "finish", "text": "Glad to help. Goodbye!"}
    rec.feed(d.answered(rec.effect_id("AskAnswerer"), done))
    _close_and_rate(rec, d, vote=None, lead_id=1041)


@script(
    "line 3 hands the dialog to people when its answerer fails (here: an error)",
    scenario="answerer",
)
def answerer_failure_hands_off(rec: Recorder) -> None:
    d = Dialog(chat_id=942, line_id=3, session_id=SESSION + 1)
    rec.feed(d.join())
    rec.feed(d.client("Something odd happened with my card"))
    rec.feed(d.answered(rec.effect_id("AskAnswerer"), failure="error"))
    rec.feed(d.operator("Hello, I can help with your card."))
    _close_and_rate(rec, d, vote=1, lead_id=1042)


@script(
    "a rules line with buttons: the topic menu after the greeting, a topic pressed, the "
    "collected data shown for confirmation and refused (asked again), a valid edit of the "
    "e-mail's message taken, an invalid one forgets it and asks for it after the phone being "
    "asked, confirmed by typing "
    "the button's label, handed off; the phone's message deleted after the handoff is "
    "forgotten; through to the lead",
    scenario="answerer",
)
def buttons_confirm_and_edits(rec: Recorder) -> None:
    d = Dialog(chat_id=943, line_id=4, session_id=SESSION + 2)
    rec.feed(d.join())
    rec.feed(d.client("Hi"))
    rec.feed(d.pressed(1, "faq:1"))  # "Delivery" from the menu
    rec.feed(d.client("Jane Roe"))
    rec.feed(d.client("jane@example.com"))
    email = d.message_id
    rec.feed(d.client("+1 555 123 4567"))
    phone = d.message_id
    rec.feed(d.pressed(2, "confirm:no"))  # all of it asked again
    rec.feed(d.client("Jane Roe"))
    rec.feed(d.client("jane@example.com"))
    email = d.message_id
    rec.feed(d.edited(email, "jane.roe@example.com"))  # valid: taken, nothing said
    # invalid: forgotten, and asked again after the phone the bot is asking for now
    rec.feed(d.edited(email, "jane.roe at example"))
    rec.feed(d.client("+1 555 123 4567"))
    phone = d.message_id
    rec.feed(d.client("jane.roe@example.com"))
    rec.feed(d.client("Yes"))  # the confirmation's label typed
    rec.feed(d.pressed(2, "confirm:yes"))  # a stale press after the handoff: nothing
    rec.feed(d.operator("Hi Jane, I can help."))
    rec.feed(d.deleted(phone))  # taken back after the handoff: the lead goes without it
    _close_and_rate(rec, d, vote=5, lead_id=1043)


@script(
    "the answerer tells the client's language: the line's own texts follow in German from "
    "the next step; a button the answerer offered comes back to it as the client's words (not "
    "taken for the name being asked); a deleted answer is asked again after the field being "
    "asked; the German confirmation's label typed",
    scenario="answerer",
)
def language_and_answerer_buttons(rec: Recorder) -> None:
    d = Dialog(chat_id=944)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("Hallo, wo ist meine Bestellung?"))
    choose = {
        "action": "reply",
        "text": "Gern! Geht es um eine Lieferung oder eine Rücksendung?",
        "buttons": [
            {"text": "Lieferung", "value": "Lieferung"},
            {"text": "Rücksendung", "value": "Rücksendung"},
        ],
        "language": "de",
    }
    rec.feed(d.answered(rec.effect_id("AskAnswerer"), choose))
    rec.feed(d.pressed(3, "Lieferung"))  # goes to the answerer as the client's words
    rec.feed(d.answered(rec.effect_id("AskAnswerer"), {"action": "ask", "field": "name"}))
    rec.feed(d.client("Jana Roth"))
    name = d.message_id
    rec.feed(d.deleted(name))  # asking the e-mail now: the name comes again after it
    rec.feed(d.client("jana@example.de"))
    rec.feed(d.client("Jana Roth"))
    rec.feed(d.client("+49 30 1234567"))
    rec.feed(d.client("Ja"))  # "Ja": the German confirmation's label
    rec.feed(d.operator("Hallo Jana!"))
    _close_and_rate(rec, d, vote=5, lead_id=1044)

"""The bot's side of a dialog: greeting, FAQ, data collection and the handoff decision."""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.dialog import asking
from orchestrator.dialog.effects import FinishBotSession, HandToQueue, Transfer
from orchestrator.dialog.inputs import ButtonPressed, ClientMessage
from orchestrator.dialog.scenario import FaqEntry, Target
from orchestrator.dialog.state import DialogStatus
from orchestrator.dialog.step import Step, render

__all__ = [
    "CONFIRM_NO",
    "CONFIRM_YES",
    "OPERATOR",
    "RECOGNIZABLE",
    "answer",
    "ask_field",
    "ask_next",
    "begin",
    "finish_by_bot",
    "handoff",
    "keep",
    "note_contact",
    "on_button",
    "on_client_message",
    "press",
    "route",
    "rules_answer",
]

_WORD = re.compile(r"\w+", re.UNICODE)


def begin(step: Step, at: float) -> None:
    """Open the bot's conversation once per session: greet, check the hours, ask the first field."""
    st = step.state
    st.started_at = st.started_at or at
    if st.greeted:
        return
    st.greeted = True
    step.greet()
    if not step.scenario.hours.is_open(step.now):
        st.after_hours = True
        step.say(step.scenario.hours.outside_message)
    _topic_menu(step)
    ask_next(step)
    _arm_silence(step)


def _topic_menu(step: Step) -> None:
    """The FAQ topics that have a button, and the operator's, under the line's menu text."""
    buttons = step.scenario.buttons
    topics = [(e.button, f"faq:{i}") for i, e in enumerate(step.scenario.faq) if e.button]
    if buttons.faq_menu and topics:
        step.say(buttons.faq_menu, buttons=[*topics, *_operator_button(step)])


def _operator_button(step: Step) -> list[tuple[str, str]]:
    label = step.scenario.buttons.operator
    return [(label, OPERATOR)] if label and not step.state.after_hours else []


def on_client_message(step: Step, msg: ClientMessage) -> None:
    """React to the client while the bot owns the dialog: the fixed rules first (a closing
    session, the client's "0", a handoff keyword), then `answer`."""
    st = step.state
    text = msg.text.strip()
    # the session's opening message is the client's question, never an answer to our prompt
    # (the welcome bot's join may reach us before or after it)
    first = st.last_client_at is None
    st.last_message, st.last_client_at = text, msg.at
    st.last_message_id = msg.message_id
    step.remember("client", text, msg.at)
    begin(step, msg.at)
    if st.closing:
        # We asked the portal to close, but a client message during its vote wait cancels the
        # wait (Update::checkVote) and the session stays open with nobody left to close it:
        # stay quiet and ask again (the finish is a no-op on a closed session).
        step.emit(FinishBotSession(chat_id=st.chat_id))
        return
    hand = step.scenario.handoff
    if text in st.offered and press(step, st.offered[text], msg.at):
        return  # a button's label typed, or sent by a v1 button
    if hand.client_zero and text == "0":
        # the portal ended the bot session itself (endBotSession): expect the line's queue
        _to_queue_state(step, "client_zero", msg.at)
        return
    if _has_keyword(text, hand.keywords):
        # a client who asks for a person gets one, whatever the line's answerer would say
        if not st.after_hours:
            handoff(step, "keyword", msg.at)
            return
        step.say(step.scenario.hours.outside_message)  # nobody to hand to: keep collecting
        _reprompt(step)
        _arm_silence(step)
        return
    if st.status is not DialogStatus.BOT:
        return  # begin() may have closed the dialog (after hours with nothing to collect)
    answer(step, text, first, msg.at)
    if st.status is DialogStatus.BOT and not st.closing:
        _arm_silence(step)


def answer(step: Step, text: str, first: bool, at: float, *, pressed: bool = False) -> None:
    """Answer a client message: a valid answer to the field asked is taken as it is (unless it
    is the value of an answerer's button, pressed); on a line with an answerer the rest goes to
    it while its budget lasts; else the scenario's rules."""
    st, answerer = step.state, step.scenario.answerer
    spec = step.scenario.collect.spec(st.asking or "")
    typed = not first and not pressed
    if answerer.remote and spec is not None and typed and spec.accepts(text):
        _take_answer(step, text, at)
    elif answerer.remote and (st.pending_ask is not None or st.answers < answerer.max_answers):
        asking.ask(step, text, first)
    else:
        rules_answer(step, text, first, at)


def rules_answer(step: Step, text: str, first: bool, at: float) -> None:
    """The `rules` answerer: the scenario's FAQ keywords, the field asked, or its fallback (and
    a handoff after too many questions it could not answer)."""
    st, hand = step.state, step.scenario.handoff
    faq = _match_faq(text, step.scenario.faq)
    if faq is not None:
        st.unanswered = 0
        step.say(faq.answer)
        _reprompt(step)
    elif st.asking and not first:
        _take_answer(step, text, at)
    elif not st.asking and not first:
        st.unanswered += 1
        if st.unanswered >= hand.max_unanswered and not st.after_hours:
            handoff(step, "unanswered", at)
            return
        step.say(step.scenario.fallback, buttons=_operator_button(step))


def _take_answer(step: Step, text: str, at: float) -> None:
    st = step.state
    spec = step.scenario.collect.spec(st.asking or "")
    if spec is None:  # the scenario changed under a live dialog: forget the question
        st.asking = None
        return
    if spec.accepts(text):
        keep(step, spec.name, text)
        step.say(step.scenario.collect.thanks if _all_done(step) else "")
        ask_next(step, at)
        return
    st.reasks += 1
    if st.reasks > step.scenario.collect.max_reasks:
        st.skipped.append(spec.name)
        ask_next(step, at)
    else:
        step.say(spec.invalid)


# Fields whose values show by their shape (an address, a number): taken from what a client writes
# while a person holds the dialog — typed after a handoff, or answering a question the bot asked
# just before a failure handed it over — so the lead still gets them. A name has no such shape.
RECOGNIZABLE = ("email", "phone")


def note_contact(step: Step, text: str) -> None:
    """Keep an e-mail or phone the client writes to a person, if none was collected (no reply:
    the bot is quiet while a person holds the dialog)."""
    st = step.state
    for spec in step.scenario.collect.fields:
        if spec.name in RECOGNIZABLE and st.data.get(spec.name) is None and spec.accepts(text):
            keep(step, spec.name, text)
            return


def _all_done(step: Step) -> bool:
    return _next_field(step) is None


def _next_field(step: Step) -> str | None:
    st = step.state
    for spec in step.scenario.collect.fields:
        if st.data.get(spec.name) is None and spec.name not in st.skipped:
            return spec.name
    return None


def ask_next(step: Step, at: float | None = None) -> None:
    """Ask for the next missing field, or go on as when all are in (confirm, hand off)."""
    st = step.state
    name = _next_field(step)
    st.reasks = 0
    if name is not None:
        st.asking = name
        spec = step.scenario.collect.spec(name)
        step.say(spec.prompt if spec else "")
        return
    st.asking = None
    confirm = step.scenario.collect.confirm
    if confirm is not None and not st.confirmed and any(st.data.model_dump().values()):
        # the collected data shown first: No asks it all again (press, below)
        st.confirming = True
        text = render(confirm.text, st.data.model_dump())
        step.say(text, buttons=[(confirm.yes, CONFIRM_YES), (confirm.no, CONFIRM_NO)])
        return
    if st.after_hours:
        step.say(step.scenario.hours.goodbye)
        finish_by_bot(step)
    elif step.scenario.collect.fields and step.scenario.handoff.on_collected:
        handoff(step, "collected", at if at is not None else step.now)


def keep(step: Step, name: str, value: str) -> None:
    """Store a field's value and the client message it came from (an edit of that message
    changes it, a deletion forgets it: dialog/edits.py)."""
    st = step.state
    setattr(st.data, name, value)
    if st.last_message_id is not None:
        st.sources = {**st.sources, name: st.last_message_id}


# What a press of our buttons means (the rest are an answerer's values: as if typed).
OPERATOR, CONFIRM_YES, CONFIRM_NO, FAQ = "operator", "confirm:yes", "confirm:no", "faq:"


def on_button(step: Step, inp: ButtonPressed) -> bool:
    """A button of one of our messages, pressed while the bot has the dialog (once people have
    it, or after the close, a press of an old button changes nothing)."""
    st = step.state
    other_session = inp.session_id and st.session_id and inp.session_id != st.session_id
    if st.status is not DialogStatus.BOT or st.closing or other_session:
        return False
    st.last_client_at = inp.at
    step.label = "button_pressed"
    return press(step, inp.value, inp.at)


def press(step: Step, value: str, at: float) -> bool:
    """A button pressed (or its label typed) while the bot has the dialog; False for a press
    that means nothing any more (a confirmation already given: a typed label is then just
    the client's words)."""
    st = step.state
    if value == OPERATOR:
        if st.after_hours:
            step.say(step.scenario.hours.outside_message)
            _reprompt(step)
        else:
            handoff(step, "button", at)
    elif value.startswith(FAQ) and (index := value.removeprefix(FAQ)).isdigit():
        if int(index) < len(step.scenario.faq):
            st.unanswered = 0
            step.say(step.scenario.faq[int(index)].answer)
            _reprompt(step)
    elif value in (CONFIRM_YES, CONFIRM_NO):
        if not st.confirming:
            return False
        st.confirming = False
        if value == CONFIRM_YES:
            st.confirmed = True
        else:
            st.data, st.sources, st.skipped = type(st.data)(), {}, []
        ask_next(step, at)
    else:
        answer(step, value, False, at, pressed=True)
    if st.status is DialogStatus.BOT and not st.closing:
        _arm_silence(step)
    return True


def ask_field(
    step: Step,
    name: str,
    text: str | None,
    at: float,
    buttons: Sequence[tuple[str, str]] = (),
) -> None:
    """The answerer asks for a field: asked again it counts as a re-ask (past the scenario's
    limit the field is given up and the next one asked)."""
    st = step.state
    spec = step.scenario.collect.spec(name)
    if spec is None or st.data.get(name) is not None:
        return
    if st.asking == name:
        st.reasks += 1
        if st.reasks > step.scenario.collect.max_reasks:
            st.skipped.append(name)
            ask_next(step, at)
            return
    else:
        st.asking, st.reasks = name, 0
    step.say(text or spec.prompt, buttons=buttons)


def _reprompt(step: Step) -> None:
    spec = step.scenario.collect.spec(step.state.asking or "")
    if spec is not None:
        step.say(spec.prompt)


def _has_keyword(text: str, keywords: list[str]) -> bool:
    words = {w.lower() for w in _WORD.findall(text)}
    return any(k.lower() in words for k in keywords)


def _match_faq(text: str, faq: list[FaqEntry]) -> FaqEntry | None:
    words = {w.lower() for w in _WORD.findall(text)}
    return next((entry for entry in faq if any(k in words for k in entry.keywords)), None)


def _arm_silence(step: Step) -> None:
    step.schedule("silence", step.scenario.timers.client_silence_s)


def finish_by_bot(step: Step) -> None:
    """Ask the portal to close the session (imopenlines.bot.session.finish)."""
    step.state.closing = True
    step.state.asking = None
    step.cancel("silence")
    step.emit(FinishBotSession(chat_id=step.state.chat_id))


def route(step: Step) -> Target:
    """The handoff target: the first matching route, else the scenario's default target."""
    st = step.state
    for rule in step.scenario.handoff.routes:
        if rule.keywords and _has_keyword(st.last_message, rule.keywords):
            return rule.target
        value = st.data.get(rule.field) if rule.field else None
        if value and rule.pattern and re.search(rule.pattern, value):
            return rule.target
    return step.scenario.handoff.target


def handoff(
    step: Step, reason: str, at: float, *, message: str | None = None, note: str | None = None
) -> None:
    """Hand the dialog to humans: tell the client (`message`, else the line's), leave the
    operator a note (the line's, then `note`), call the portal."""
    st = step.state
    hand = step.scenario.handoff
    target = route(step)
    step.say(message or hand.message)
    rendered = render(
        hand.note,
        {"reason": reason, "last_message": st.last_message, **st.data.model_dump()},
    )
    step.say(f"{rendered}\n{note}" if note else rendered, via="note")
    if target.user_id is not None:
        step.emit(Transfer(chat_id=st.chat_id, user_id=target.user_id, leave=hand.leave))
    elif target.queue_id is not None:
        step.emit(Transfer(chat_id=st.chat_id, queue_id=target.queue_id, leave=hand.leave))
    else:
        step.emit(HandToQueue(chat_id=st.chat_id))
    if target.user_id is not None:
        # a bot-mode transfer to a user answers at once (docs/bitrix24.md §5.4)
        st.status, st.operator_id, st.operator_accepted_at = (
            DialogStatus.OPERATOR,
            target.user_id,
            at,
        )
        st.handoff_reason, st.handed_off_at, st.asking, st.closing = reason, at, None, False
        step.cancel("silence")
        return
    _to_queue_state(step, reason, at)


def _to_queue_state(step: Step, reason: str, at: float) -> None:
    st = step.state
    st.status, st.handoff_reason, st.handed_off_at, st.asking = (
        DialogStatus.OPERATOR_QUEUE,
        reason,
        at,
        None,
    )
    st.closing = False
    step.cancel("silence")
    step.schedule("accept", step.scenario.timers.accept_timeout_s)

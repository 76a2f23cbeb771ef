"""The scripted dialogs recorded as tests/fixtures/histories/<name>.json, one function each.

Together they pass through every DialogStatus and the machine's main paths; each names its
chat, so effect ids differ between histories. `record(name)` runs one against the current
machine and returns its history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.dialog.scenario_file import parse_scenario
from tests.replay_scripts import (
    MEMBER,
    OPERATOR,
    SESSION,
    STATE_SCHEMA,
    T0,
    Dialog,
    Recorder,
    scenario_document,
)

Script = Callable[[Recorder], None]


@dataclass(frozen=True)
class Scripted:
    """A script, what it shows and the scenario it runs under."""

    about: str
    scenario: str
    run: Script


SCRIPTS: dict[str, Scripted] = {}


def script(about: str, scenario: str = "default") -> Callable[[Script], Script]:
    """Register a scripted dialog under its function's name."""

    def register(run: Script) -> Script:
        SCRIPTS[run.__name__] = Scripted(about, scenario, run)
        return run

    return register


def record(name: str) -> dict[str, Any]:
    """Run a script against the current machine: the history, ready for histories.dump."""
    scripted = SCRIPTS[name]
    document = scenario_document(scripted.scenario)
    recorder = Recorder(parse_scenario(document, scripted.scenario))
    scripted.run(recorder)
    return {
        "name": name,
        "about": scripted.about,
        "state_schema": STATE_SCHEMA,
        "steps": recorder.steps,
        "scenario": {"name": scripted.scenario, "document": document},
    }


def _close_and_rate(rec: Recorder, d: Dialog, vote: int | None, lead_id: int = 5001) -> None:
    """The portal closes the session; transcript, vote and lead come back in that order."""
    rec.feed(d.finished())
    rec.feed(d.transcript(operator_id=OPERATOR, client_vote=vote, message_count=6))
    rec.feed(d.vote_saved())
    rec.feed(d.lead_created(lead_id))


def _to_operator(rec: Recorder, d: Dialog) -> None:
    """The welcome bot greets, the client asks for a person at once, an operator answers."""
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("Can I talk to an operator?"))
    rec.feed(d.operator("Hello, Olga here. How can I help?", after=40))


@script(
    "greeting, name/e-mail/phone collected, handoff to the queue, an operator answers, "
    "the portal closes, transcript (a like), head vote saved, lead created"
)
def main_path_lead(rec: Recorder) -> None:
    d = Dialog(chat_id=901)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("Hello, I have a question about my order"))
    rec.feed(d.client("Jane Roe"))
    rec.feed(d.client("jane@example.com"))
    rec.feed(d.client("+1 555 123 4567"))
    rec.feed(d.operator("Hi Jane, Olga here. Let me look.", after=30))
    rec.feed(d.client("It is order 1234, it has not arrived"))
    rec.feed(d.operator("It ships tomorrow, sorry for the wait."))
    _close_and_rate(rec, d, vote=5, lead_id=1001)


@script(
    "a silent client whose session no event named (the Open Lines copy of its message won "
    "the dedup): at the close the chat's history is read by chat and names the session; the "
    "lead waits for it, so its ORIGIN_ID and the rating name the session"
)
def session_learned_from_history(rec: Recorder) -> None:
    d = Dialog(chat_id=926, told=False)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("hi"))
    rec.feed(d.timer("silence", rec.token("silence"), after=600))
    _close_and_rate(rec, d, vote=None, lead_id=1026)


@script(
    "the client asks for a person in the first message: keyword handoff, the queue, an "
    "operator; results come back lead first, the vote last (the pipeline's run order)"
)
def operator_at_once(rec: Recorder) -> None:
    d = Dialog(chat_id=902)
    _to_operator(rec, d)
    rec.feed(d.client("My parcel is damaged"))
    rec.feed(d.finished())
    rec.feed(d.transcript(operator_id=OPERATOR, client_vote=1, message_count=4))
    rec.feed(d.lead_created(1002))
    rec.feed(d.vote_saved())


@script(
    "the client types 0: the portal ends the bot session itself, we expect the queue (no "
    "handoff call); the accept timer fires with no fallback; an operator takes it; closed"
)
def client_zero(rec: Recorder) -> None:
    d = Dialog(chat_id=903)
    rec.feed(d.join())
    rec.feed(d.client("0"))
    rec.feed(d.timer("accept", rec.token("accept"), after=300))
    rec.feed(d.operator("Sorry for the wait, how can I help?"))
    rec.feed(d.finished())


@script(
    "FAQ answers (price, delivery) with the question asked again, then 'human': keyword "
    "handoff to the queue and an operator"
)
def faq_then_human(rec: Recorder) -> None:
    d = Dialog(chat_id=904)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("What is the price?"))
    rec.feed(d.client("And how long is delivery?"))
    rec.feed(d.client("Can I speak to a human?"))
    rec.feed(d.operator("Hi, I am here."))


@script(
    "answers that do not validate: asked again, the e-mail skipped after max re-asks, the "
    "phone retried; handoff when done; the portal had queued it already (WRONG_CHAT)"
)
def invalid_answers_skipped(rec: Recorder) -> None:
    d = Dialog(chat_id=905)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("hi"))
    rec.feed(d.client("Jane"))
    rec.feed(d.client("not an email"))
    rec.feed(d.client("still no"))
    rec.feed(d.client("nope"))
    rec.feed(d.client("12"))
    rec.feed(d.client("+49 30 1234567"))
    rec.feed(d.failed(rec.effect_id("HandToQueue"), "HandToQueue", "WRONG_CHAT"))
    rec.feed(d.operator("Hello Jane!"))


@script(
    "a silent client: the silence timer says goodbye and finishes the bot session; a "
    "message while closing asks again; the close is rated on the vote alone; lead"
)
def silence_timer_closes(rec: Recorder) -> None:
    d = Dialog(chat_id=906)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("hi"))
    rec.feed(d.timer("silence", rec.token("silence"), after=600))
    rec.feed(d.client("wait, one more thing"))
    _close_and_rate(rec, d, vote=None, lead_id=1006)


@script(
    "the demo's after-hours line: closed notice, 'operator' refused out of hours, the data "
    "collected, goodbye and the bot finishes; rated without an operator; lead",
    scenario="demo",
)
def after_hours_demo(rec: Recorder) -> None:
    d = Dialog(chat_id=907, line_id=2)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("Hello?"))
    rec.feed(d.client("operator"))
    rec.feed(d.client("John Smith"))
    rec.feed(d.client("john@example.org"))
    rec.feed(d.client("+1 555 987 6543"))
    _close_and_rate(rec, d, vote=5, lead_id=1007)


@script(
    "the shipped billing line (line 2) outside its Berlin hours: its own greeting and the "
    "closed notice; the silence timer closes; the portal closes"
)
def after_hours_billing_line(rec: Recorder) -> None:
    d = Dialog(chat_id=908, line_id=2, clock=T0 + 3 * 3600)
    rec.feed(d.join())
    rec.feed(d.client("Is anyone there?"))
    rec.feed(d.timer("silence", rec.token("silence"), after=600))
    rec.feed(d.finished())


@script(
    "the billing line in hours: a handoff whose words match a route is a transfer to "
    "queue 2; an operator of that queue answers"
)
def billing_line_in_hours(rec: Recorder) -> None:
    d = Dialog(chat_id=909, line_id=2, clock=T0 + 10 * 3600)
    rec.feed(d.join())
    rec.feed(d.client("A question about my invoice, an agent please"))
    rec.feed(d.operator("Billing here, which invoice?", user_id=14))


@script(
    "a route transfer the target refuses (OPERATOR_WRONG): back to the line's queue, whose "
    "handoff is refused too (ACCESS_DENIED): failed; the client's next message is a new "
    "session"
)
def transfer_refused_then_failed(rec: Recorder) -> None:
    d = Dialog(chat_id=910)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("I want a refund, get me an operator"))
    rec.feed(d.failed(rec.effect_id("Transfer"), "Transfer", "OPERATOR_WRONG"))
    rec.feed(d.failed(rec.effect_id("HandToQueue"), "HandToQueue", "ACCESS_DENIED"))
    d.session_id += 1
    rec.feed(d.client("Hello? Anybody?", after=120))


@script(
    "the greeting could not be posted (EffectFailed SendMessage): the bot hands off; a "
    "later failed message after the handoff changes nothing"
)
def bot_message_failed(rec: Recorder) -> None:
    d = Dialog(chat_id=911)
    rec.feed(d.join())
    greeting = rec.effect_id("SendMessage", latest=False)
    rec.feed(d.started())
    rec.feed(d.client("hi"))
    rec.feed(d.failed(greeting, "SendMessage", "ERROR_NO_ACCESS"))
    rec.feed(d.failed(rec.effect_id("SendMessage"), "SendMessage", "ERROR_NO_ACCESS"))
    rec.feed(d.operator("Hello, sorry about that."))


@script(
    "the silence timer's finish is refused (EffectFailed FinishBotSession): the bot hands "
    "off instead"
)
def finish_failed_hands_off(rec: Recorder) -> None:
    d = Dialog(chat_id=912)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("hi"))
    rec.feed(d.timer("silence", rec.token("silence"), after=600))
    rec.feed(d.failed(rec.effect_id("FinishBotSession"), "FinishBotSession", "SESSION_ERROR"))


@script(
    "the transcript cannot be read (EffectFailed FetchTranscript): rated with what the bot "
    "saw; a late transcript changes nothing; vote and lead complete"
)
def transcript_failed(rec: Recorder) -> None:
    d = Dialog(chat_id=913)
    _to_operator(rec, d)
    rec.feed(d.finished())
    rec.feed(d.failed(rec.effect_id("FetchTranscript"), "FetchTranscript", "ACCESS_DENIED"))
    rec.feed(d.transcript(operator_id=OPERATOR, client_vote=5))
    rec.feed(d.vote_saved())
    rec.feed(d.lead_created(1013))


@script(
    "the head vote is refused (EffectFailed SaveHeadVote): voted with the failure noted; the "
    "lead still completes"
)
def vote_failed(rec: Recorder) -> None:
    d = Dialog(chat_id=914)
    _to_operator(rec, d)
    rec.feed(d.finished())
    rec.feed(d.transcript(operator_id=OPERATOR, client_vote=None))
    rec.feed(d.failed(rec.effect_id("SaveHeadVote"), "SaveHeadVote", "ACCESS_DENIED"))
    rec.feed(d.lead_created(1014))


@script(
    "the lead cannot be made (EffectFailed CreateLead): failed; a late lead result changes nothing"
)
def lead_failed(rec: Recorder) -> None:
    d = Dialog(chat_id=915)
    _to_operator(rec, d)
    rec.feed(d.finished())
    rec.feed(d.transcript(operator_id=OPERATOR, client_vote=5))
    rec.feed(d.vote_saved())
    rec.feed(d.failed(rec.effect_id("CreateLead"), "CreateLead", "ACCESS_DENIED"))
    rec.feed(d.lead_created(1015))


@script(
    "stale timers: a re-armed silence timer's old token, a timer never armed, the silence "
    "timer cancelled at the handoff, the accept timer cancelled when an operator answered"
)
def stale_timers(rec: Recorder) -> None:
    d = Dialog(chat_id=916)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("hi"))
    first_silence = rec.token("silence")
    rec.feed(d.client("Jane"))
    second_silence = rec.token("silence")
    rec.feed(d.timer("silence", first_silence, after=1))
    rec.feed(d.timer("reminder", "reminder:0:1", after=1))
    rec.feed(d.client("operator"))
    accept = rec.token("accept")
    rec.feed(d.timer("silence", second_silence, after=600))
    rec.feed(d.operator("Hi Jane"))
    rec.feed(d.timer("accept", accept, after=300))


@script(
    "edits and deletions of messages, a re-delivered client and operator message, a second "
    "join and start: all no-ops"
)
def edits_deletes_and_replays(rec: Recorder) -> None:
    d = Dialog(chat_id=917)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("hi there", message_id=201))
    rec.feed(d.edited(201, "hi there, I need help"))
    rec.feed(d.deleted(201))
    rec.feed(d.client("hi there", message_id=201))
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("operator", message_id=202))
    rec.feed(d.operator("Hello!", message_id=203))
    rec.feed(d.edited(203, "Hello, how can I help?"))
    rec.feed(d.operator("Hello!", message_id=203))


@script(
    "a whole session to lead, then the client writes again: a new session in the same chat "
    "(epoch 1), the old session's late results and failures ignored, a handoff in the new one"
)
def new_session_after_lead(rec: Recorder) -> None:
    d = Dialog(chat_id=918)
    _to_operator(rec, d)
    greeting = rec.effect_id("SendMessage", latest=False)  # minted before the session was known
    _close_and_rate(rec, d, vote=5, lead_id=1018)
    old_lead = rec.effect_id("CreateLead")
    d.session_id += 1
    rec.feed(d.client("Hello again, one more question", after=3600))
    rec.feed(d.join())
    d.session_id -= 1
    rec.feed(d.lead_created(1018))
    rec.feed(d.failed(old_lead, "CreateLead", "ACCESS_DENIED"))
    rec.feed(d.failed(greeting, "SendMessage", "ERROR_NO_ACCESS"))
    d.session_id += 1
    rec.feed(d.client("operator please"))
    rec.feed(d.finished())


@script(
    "the client writes while the closed session still waits for its transcript: the vote "
    "is rated at once and a new session begins; the old session's results are stale"
)
def new_session_while_finished(rec: Recorder) -> None:
    d = Dialog(chat_id=919)
    _to_operator(rec, d)
    rec.feed(d.finished())
    d.session_id += 1
    rec.feed(d.client("I forgot to ask something", after=20))
    d.session_id -= 1
    rec.feed(d.transcript(operator_id=OPERATOR, client_vote=5))
    rec.feed(d.vote_saved())
    rec.feed(d.lead_created(1019))


@script(
    "inputs that cannot happen are rejected and leave the state as it was: results and a "
    "timer before any dialog, post-close results while the only session is open"
)
def illegal_inputs_rejected(rec: Recorder) -> None:
    d = Dialog(chat_id=920)
    rec.feed(d.vote_saved())
    rec.feed(d.timer("silence", "silence:0:1", after=1))
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.transcript(operator_id=OPERATOR))
    rec.feed(d.lead_created(1020))
    rec.feed(d.failed(f"m1:920:{d.session_id}:9:0", "CreateLead", "ACCESS_DENIED"))
    rec.feed(d.client("operator"))
    rec.feed(d.vote_saved())
    rec.feed(d.operator("Hi"))
    rec.feed(d.lead_created(1020))


@script(
    "an operator writes while the bot is still collecting: a human took over, the bot's "
    "timer cancelled; closed, lead first and the vote last"
)
def operator_takes_over(rec: Recorder) -> None:
    d = Dialog(chat_id=921)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("hi"))
    rec.feed(d.client("Jane"))
    rec.feed(d.operator("Jane, I can help you directly."))
    rec.feed(d.client("Great, thanks"))
    rec.feed(d.finished())
    rec.feed(d.transcript(operator_id=OPERATOR, client_vote=5, message_count=5))
    rec.feed(d.lead_created(1021))
    rec.feed(d.vote_saved())


@script(
    "the session starts before the bot joins: no greeting until the client writes; the late "
    "join is a no-op; the portal closes while the bot has it; rated, lead"
)
def session_started_first(rec: Recorder) -> None:
    d = Dialog(chat_id=922)
    rec.feed(d.started())
    rec.feed(d.client("hello"))
    rec.feed(d.join())
    rec.feed(d.finished(after=30))
    rec.feed(d.transcript(client_vote=None, message_count=3))
    rec.feed(d.vote_saved())
    rec.feed(d.lead_created(None))


@script("a dialog whose first event is an operator's message (the bot was never there)")
def operator_first(rec: Recorder) -> None:
    d = Dialog(chat_id=923)
    rec.feed(d.operator("Good morning, how can I help?"))
    rec.feed(d.client("Hello, my order is late"))
    rec.feed(d.finished())
    rec.feed(d.transcript(operator_id=OPERATOR, client_vote=1))
    rec.feed(d.vote_saved())
    rec.feed(d.lead_created(1023))


@script("a dialog whose first event is the session's close")
def finished_first(rec: Recorder) -> None:
    d = Dialog(chat_id=924)
    rec.feed(d.finished(after=1))
    rec.feed(d.transcript(client_vote=None))
    rec.feed(d.vote_saved())
    rec.feed(d.lead_created(1024))


@script(
    "the demo scenario's support line: short silence timer, no accept timer, no routes "
    "(a refund request goes to the line's queue); through to the lead",
    scenario="demo",
)
def demo_support_line(rec: Recorder) -> None:
    d = Dialog(chat_id=925)
    rec.feed(d.join())
    rec.feed(d.started())
    rec.feed(d.client("I want a refund, operator please"))
    rec.feed(d.operator("Hi, let me check your refund."))
    _close_and_rate(rec, d, vote=5, lead_id=1025)


@script(
    "the portal closed the session but its finish push was lost: a reconcile check (the "
    "portal still shows the session, then none) runs the close tail, named session_reconciled "
    "in the history; its later answer and the finish arriving late are no-ops"
)
def finish_lost_reconciled(rec: Recorder) -> None:
    d = Dialog(chat_id=927)
    _to_operator(rec, d)
    rec.feed(d.client("Thanks, that is all"))
    # the default scenario arms no reconcile timer (the worker's setting does): the answers of
    # the checks the timer would have asked for are fed as the executor builds them
    first = f"{MEMBER}:{d.chat_id}:{SESSION}:6:0"
    rec.feed(d.checked(first, current_session_id=SESSION, after=300))
    second = f"{MEMBER}:{d.chat_id}:{SESSION}:6:1"
    rec.feed(d.checked(second, current_session_id=0, after=300))
    rec.feed(d.checked(second, current_session_id=0, after=1))
    rec.feed(d.finished(after=30))
    rec.feed(d.transcript(operator_id=OPERATOR, client_vote=None, message_count=5))
    rec.feed(d.vote_saved())
    rec.feed(d.lead_created(1027))


# the answerer's dialogs register themselves (they use `script` and the helpers above)
import tests.replay_answerer  # noqa: E402,F401

"""A client's edits and deletions of the messages its collected data came from (pure).

Each collected field remembers the client message it was taken from (`sources`). An edit of
that message is validated again: a valid new value replaces the old one (it is what the lead
will carry); an invalid one, while the bot has the dialog, forgets the field and asks for it
again (after a handoff nobody can ask, so the last valid value stays). A deleted message's
field is forgotten — the client took it back — and asked again if the bot still collects.
Edits and deletions of any other message change nothing: what the bot already said stays said.
"""

from __future__ import annotations

from orchestrator.dialog.bot import ask_next, keep
from orchestrator.dialog.inputs import MessageDeleted, MessageUpdated
from orchestrator.dialog.state import CLOSED, DialogStatus
from orchestrator.dialog.step import Step

__all__ = ["on_deleted", "on_edited"]


def _field_of(step: Step, message_id: int) -> str | None:
    return next((f for f, m in step.state.sources.items() if m == message_id), None)


def on_edited(step: Step, edit: MessageUpdated) -> bool:
    """The client edited a message: the field it filled takes the new text, if valid."""
    st = step.state
    name = _field_of(step, edit.message_id)
    spec = step.scenario.collect.spec(name or "")
    if st.status in CLOSED or name is None or spec is None:
        return False
    text = edit.text.strip()
    if spec.accepts(text):
        if st.data.get(name) == text:
            return False
        previous = st.last_message_id
        st.last_message_id = edit.message_id
        keep(step, name, text)
        st.last_message_id = previous
        step.label = f"edited:{name}"
        return True
    if st.status is not DialogStatus.BOT:
        return False  # nobody can ask again: the last valid value stays
    step.label = f"edited_invalid:{name}"
    _forget_and_ask(step, name, edit.at)
    return True


def on_deleted(step: Step, deletion: MessageDeleted) -> bool:
    """The client deleted a message: the field it filled is forgotten (and asked again)."""
    st = step.state
    name = _field_of(step, deletion.message_id)
    if st.status in CLOSED or name is None:
        return False
    step.label = f"deleted:{name}"
    if st.status is DialogStatus.BOT:
        _forget_and_ask(step, name, deletion.at)
    else:
        _forget(step, name)
    return True


def _forget(step: Step, name: str) -> None:
    st = step.state
    setattr(st.data, name, None)
    st.sources = {f: m for f, m in st.sources.items() if f != name}
    st.confirmed = False  # what was confirmed changed


def _forget_and_ask(step: Step, name: str, at: float) -> None:
    st = step.state
    _forget(step, name)
    if st.closing or st.asking is not None:
        return  # closing; or asking another field, after which this one comes again
    st.confirming = False
    ask_next(step, at)

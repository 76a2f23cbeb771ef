"""The resend rule: a message's retry posts nothing when the chat already shows it.

A SendMessage on a try after the first (a worker died mid-call, or the outcome was unknown) looks
before it posts again:

    intended  the SendMessage effects of this dialog committed before this one (every session),
              with the same text and voice (`session` posts as the system, author 0; `bot` and
              `note` as a bot user)
    shown     the messages of that text and voice in the chat's histories we read: this effect's
              session, and the latest sessions of the intended ones (at most MAX_SESSIONS)
    rule      skip when shown > intended

Why only this effect's own earlier try can tip it: effects run in commit order, so no later one
has posted yet; each intended one posted at most once; so without our earlier post shown <=
intended, whichever sessions we read (a message outside them only lowers shown). The bot may say
the same text twice on purpose (a re-ask): the first copy is counted in intended, so the second
is still sent. Wrong the other way (a copy missed: the portal's history renders the text
differently, our earlier post is in a session we did not read, an intended one was never
posted) means a repeat, as without the check. What can fool it into skipping: a copy from
elsewhere with the same text and voice (another bot in the chat, a line auto-message worded
exactly like ours), or an intended message that itself was posted twice; in both the client has
already seen the text as often as the dialog meant it. It relies on the effects hash keeping
every record of the dialog (nothing trims it today). A replayed dead letter starts again at try
1 and is not checked.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

from orchestrator.bitrix.models import HistoryMessage, SessionHistory
from orchestrator.dialog.effects import EffectId, SendMessage, effect_from_record
from orchestrator.pipeline.records import EffectRecord

__all__ = ["MAX_SESSIONS", "already_posted", "earlier_sends", "sessions_to_read", "stored_sends"]

MAX_SESSIONS = 4  # session histories read by one resend check (one REST call each)
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _plain(text: str) -> str:
    # the portal trims a message, and its history may render line breaks and entities as HTML
    return html.unescape(_BR.sub("\n", text)).strip()


def _voice_of(message: HistoryMessage, history: SessionHistory) -> str | None:
    if message.sender_id == 0:
        return "system"
    user = history.users.get(message.sender_id) or {}
    return "bot" if user.get("bot") in (True, "Y") else None  # a person: never ours


def stored_sends(raws: Iterable[bytes | str]) -> list[SendMessage]:
    """The SendMessage effects among stored effect records (the effects hash's values)."""
    sends = []
    for raw in raws:
        record = EffectRecord.from_json(raw)
        if record.kind == SendMessage.kind:
            effect = effect_from_record(
                record.kind, record.payload, EffectId.parse(record.effect_id)
            )
            assert isinstance(effect, SendMessage)
            sends.append(effect)
    return sends


def earlier_sends(
    effect_id: EffectId | None, records: Mapping[bytes, bytes] | Mapping[str, str]
) -> list[SendMessage]:
    """The SendMessage effects among a dialog's effect records (id -> stored json) committed
    before `effect_id`, in every session, oldest first (none for an effect without an id)."""
    if effect_id is None:
        return []
    found = [
        e
        for e in stored_sends(records.values())
        if e.effect_id is not None and e.effect_id.order < effect_id.order
    ]
    return sorted(found, key=lambda e: e.effect_id.order if e.effect_id else (0, 0))


def sessions_to_read(effect: SendMessage, earlier: Sequence[SendMessage]) -> list[int | None]:
    """Whose histories the check reads: this effect's session (None: the chat's latest), then
    the latest sessions the same words were said in before, at most MAX_SESSIONS in all."""
    mine = effect.effect_id.session_id if effect.effect_id else None
    text, voice = _plain(effect.text), effect.voice
    others: list[int | None] = []
    for e in reversed(earlier):
        session = e.effect_id.session_id if e.effect_id else None
        same = e.voice == voice and _plain(e.text) == text
        if same and session is not None and session != mine and session not in others:
            others.append(session)
    return [mine, *others][:MAX_SESSIONS]


def already_posted(
    effect: SendMessage, earlier: Sequence[SendMessage], histories: Sequence[SessionHistory]
) -> bool:
    """The resend rule (module docstring): the chat shows more copies of this message than the
    dialog meant to post before it, so one of them is this effect's own earlier try."""
    text, voice = _plain(effect.text), effect.voice
    intended = sum(1 for e in earlier if e.voice == voice and _plain(e.text) == text)
    shown = {
        m.id  # by id: two histories may overlap
        for h in histories
        for m in h.message.values()
        if m.chat_id == effect.chat_id and _plain(m.text) == text and _voice_of(m, h) == voice
    }
    return len(shown) > intended

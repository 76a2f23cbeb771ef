"""Runs the dialog machine's effects against the portal (REST client) and the timer store.

Results that the machine waits for (TranscriptFetched, VoteSaved, LeadCreated) and refusals
that mean "this cannot work" (the portal's own method errors and access refusals) come back as
follow-up inputs into the same dialog's inbox, so the machine decides what happens next. Transient
failures (throttles, 5xx, network, an unknown outcome) raise, and the runner retries the effect.

A SendMessage on a try after the first (a worker died mid-call, or the outcome was unknown) looks
before it posts again, and posts nothing when the chat already shows this very message:

    intended  the SendMessage effects of this dialog committed before this one (every session),
              with the same text and voice (`session` posts as the system, author 0; `bot` and
              `note` as a bot user)
    shown     the messages of that text and voice in the chat's histories we read: this effect's
              session, and the latest sessions of the intended ones (at most _MAX_SESSIONS)
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
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import structlog
from structlog.contextvars import bound_contextvars

from orchestrator.bitrix.client import BitrixClient
from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.models import HistoryMessage, SessionHistory
from orchestrator.dialog.effects import (
    CancelTimer,
    CreateLead,
    Effect,
    FetchTranscript,
    FinishBotSession,
    HandToQueue,
    SaveHeadVote,
    ScheduleTimer,
    SendMessage,
    Transfer,
    effect_from_record,
    effect_session_id,
)
from orchestrator.dialog.evaluation import client_vote_from
from orchestrator.dialog.inputs import (
    EffectFailed,
    Input,
    LeadCreated,
    TranscriptFetched,
    VoteSaved,
    input_record,
)
from orchestrator.errors import AccessDenied, MethodError
from orchestrator.handler import leads
from orchestrator.observe import metrics
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.runner import FollowUp
from orchestrator.pipeline.scripts import aw
from orchestrator.pipeline.store import EffectRecord
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX, TimerStore

__all__ = [
    "LEGACY_REGISTER_PORTAL",
    "PATIENT_KINDS",
    "EffectExecutor",
    "already_posted",
    "dialog_of",
    "earlier_sends",
    "stored_sends",
    "transcript_input",
]

log = structlog.get_logger(__name__)

# An effect kind of earlier versions (it carried an install's tokens to the worker; the ingress
# now stores verified credentials itself): a leftover record is skipped, not run.
LEGACY_REGISTER_PORTAL = "RegisterPortal"

# Effects whose lasting failure the machine can work around (the bot hands off, a refused
# transfer falls back to the queue, the rating goes without the transcript): when a transient
# failure outlives the pipeline's retries (or kills used them up) they come back as EffectFailed
# (Runner asks `give_up`), not a dead letter.
# Queue handoffs, votes and leads have no such way round: they are patient (more tries, waits
# of up to a minute, the dialog handed back meanwhile — see Runner), so an outage of a few
# minutes delays them, and only a longer one makes them dead letters, replayed once it is over.
GIVE_UP_KINDS = frozenset({"SendMessage", "FinishBotSession", "Transfer", "FetchTranscript"})
PATIENT_KINDS = frozenset({"HandToQueue", "SaveHeadVote", "CreateLead"})
_MAX_SESSIONS = 4  # session histories read by one resend check (one REST call each)
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def dialog_of(effect_id: str) -> tuple[str, str]:
    """(member_id, dialog key) of an effect id `<member>:<chat>:<session>:<seq>:<index>`."""
    parts = effect_id.rsplit(":", 4)
    if len(parts) != 5:
        raise ValueError(f"effect id {effect_id!r} does not name a dialog")
    return parts[0], parts[1]


def follow_up(chat_key: str, inp: Input) -> FollowUp:
    """An input for the dialog's inbox, as an internal event."""
    kind, payload = input_record(inp)
    return FollowUp(chat_id=chat_key, name=INPUT_EVENT_PREFIX + kind, payload=payload)


def _ts(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def transcript_input(session_id: int, history: SessionHistory) -> TranscriptFetched:
    """What the session's history tells the evaluation: who answered first, and when."""

    def is_staff(user_id: int) -> bool:
        user = history.users.get(user_id) or {}
        return user_id > 0 and not user.get("bot") and not user.get("connector")

    staff = [m for _, m in sorted(history.message.items()) if is_staff(m.sender_id)]
    first = staff[0] if staff else None
    return TranscriptFetched(
        session_id=session_id,
        at=time.time(),
        operator_id=first.sender_id if first else None,
        first_operator_response_at=_ts(first.date) if first else None,
        client_vote=client_vote_from(
            session_id, (m.params for _, m in sorted(history.message.items()))
        ),
        message_count=len(history.message),
    )


def _plain(text: str) -> str:
    # the portal trims a message, and its history may render line breaks and entities as HTML
    return html.unescape(_BR.sub("\n", text)).strip()


def _voice_of(message: HistoryMessage, history: SessionHistory) -> str | None:
    if message.sender_id == 0:
        return "system"
    user = history.users.get(message.sender_id) or {}
    return "bot" if user.get("bot") in (True, "Y") else None  # a person: never ours


def _order(effect_id: str) -> tuple[int, int] | None:
    """(transition seq, index) of an effect id; seqs grow over the dialog's whole life."""
    parts = effect_id.rsplit(":", 4)
    if len(parts) != 5 or not (parts[3].isdigit() and parts[4].isdigit()):
        return None
    return int(parts[3]), int(parts[4])


def earlier_sends(
    effect_id: str, records: Mapping[bytes, bytes] | Mapping[str, str]
) -> list[SendMessage]:
    """The SendMessage effects among a dialog's effect records (id -> stored json) committed
    before `effect_id`, in every session, oldest first."""
    mine = _order(effect_id)
    if mine is None:
        return []
    found: list[tuple[tuple[int, int], SendMessage]] = []
    for effect in stored_sends(records.values()):
        order = _order(effect.effect_id)
        if order is not None and order < mine:
            found.append((order, effect))
    return [effect for _, effect in sorted(found, key=lambda pair: pair[0])]


def stored_sends(raws: Iterable[bytes | str]) -> list[SendMessage]:
    """The SendMessage effects among stored effect records (the effects hash's values)."""
    sends = []
    for raw in raws:
        record = EffectRecord.from_json(raw)
        if record.kind == SendMessage.kind:
            effect = effect_from_record(record.kind, record.payload, record.effect_id)
            assert isinstance(effect, SendMessage)
            sends.append(effect)
    return sends


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


def _failed(chat_key: str, record: EffectRecord, code: str) -> FollowUp:
    """The effect's failure, for the machine to decide what happens instead."""
    return follow_up(
        chat_key,
        EffectFailed(
            effect_kind=record.kind,
            error_code=code,
            effect_id=record.effect_id,
            session_id=effect_session_id(record.effect_id),
            at=time.time(),
        ),
    )


class EffectExecutor:
    """One effect record in, follow-up events out."""

    def __init__(self, client: BitrixClient, timers: TimerStore) -> None:
        self.client = client
        self.timers = timers

    async def run(self, record: EffectRecord) -> list[FollowUp]:
        """Execute one effect; permanent portal refusals become an EffectFailed follow-up."""
        member_id, chat_key = dialog_of(record.effect_id)
        if record.kind == LEGACY_REGISTER_PORTAL:
            log.warning("legacy_effect_skipped", kind=record.kind)
            return []
        effect = effect_from_record(record.kind, record.payload, record.effect_id)
        with bound_contextvars(session_id=effect_session_id(record.effect_id)):
            return await self._run_bound(record, effect, member_id, chat_key)

    async def _run_bound(
        self, record: EffectRecord, effect: Effect, member_id: str, chat_key: str
    ) -> list[FollowUp]:
        try:
            api = self.client.api(member_id)
            if isinstance(effect, SendMessage):
                await self._send(api, member_id, chat_key, effect, record.attempt)
                result = None
            else:
                result = await self._dispatch(api, member_id, chat_key, effect)
        except (MethodError, AccessDenied) as exc:
            log.warning("effect_refused", kind=record.kind, code=exc.code)
            return [_failed(chat_key, record, exc.code or "ERROR")]
        log.debug("effect_executed", kind=record.kind, result=type(result).__name__)
        return [] if result is None else [follow_up(chat_key, result)]

    def give_up(self, record: EffectRecord, error_code: str) -> list[FollowUp] | None:
        """An effect out of tries (transient failures, or kills mid-call): the kinds the machine
        can work around come back as EffectFailed; the rest (None) become dead letters."""
        if record.kind not in GIVE_UP_KINDS:
            return None
        return [_failed(dialog_of(record.effect_id)[1], record, error_code)]

    async def _send(
        self, api: PortalApi, member_id: str, chat_key: str, effect: SendMessage, attempt: int
    ) -> None:
        """Post a message, unless a try before this one already did (module docstring)."""
        if attempt > 1 and await self._posted_before(api, member_id, chat_key, effect):
            log.warning("message_already_posted", attempt=attempt)
            return
        if effect.via == "session":
            await api.bot_session_message_send(effect.chat_id, effect.text, name="DEFAULT")
            return
        # the bot's own words; a note never reaches the client
        await api.imbot_message_add(
            f"chat{effect.chat_id}",
            effect.text,
            skip_connector=True if effect.via == "note" else None,
        )

    async def _posted_before(
        self, api: PortalApi, member_id: str, chat_key: str, effect: SendMessage
    ) -> bool:
        """The chat shows this message already; False when that cannot be read."""
        d = Keys(self.client.settings.key_prefix).dialog(member_id, chat_key)
        records: dict[bytes, bytes] = await aw(self.client.redis.hgetall(d.effects))
        earlier = earlier_sends(effect.effect_id, records)
        text, voice = _plain(effect.text), effect.voice
        mine = effect_session_id(effect.effect_id)
        others: list[int] = []  # the latest sessions of the same words said before
        for e in reversed(earlier):
            session = effect_session_id(e.effect_id)
            same = e.voice == voice and _plain(e.text) == text
            if same and session is not None and session != mine and session not in others:
                others.append(session)
        histories: list[SessionHistory] = []
        for n, session in enumerate([mine, *others][:_MAX_SESSIONS]):
            try:
                histories.append(
                    await api.session_history_get(session_id=session)
                    if session is not None
                    else await api.session_history_get(chat_id=effect.chat_id)
                )
            except (MethodError, AccessDenied) as exc:
                # nothing readable there (no rights, no messages): it adds no copies; without
                # our own session there is nothing to go by, so post as without the check
                if n == 0:
                    log.warning("message_resend_unchecked", code=exc.code)
                    return False
        return already_posted(effect, earlier, histories)

    async def _dispatch(
        self, api: PortalApi, member_id: str, chat_key: str, effect: Effect
    ) -> Input | None:
        match effect:
            case ScheduleTimer():
                await self.timers.schedule(
                    member_id, chat_key, effect.name, effect.token, effect.delay_s
                )
            case CancelTimer():
                await self.timers.cancel(member_id, chat_key, effect.name)
            case HandToQueue():
                await api.bot_session_operator(effect.chat_id)
                metrics.HANDOFFS.labels(member_id=member_id, kind="queue").inc()
            case Transfer():
                await api.bot_session_transfer(
                    effect.chat_id,
                    user_id=effect.user_id,
                    queue_id=effect.queue_id,
                    leave=effect.leave,
                )
                metrics.HANDOFFS.labels(member_id=member_id, kind="transfer").inc()
            case FinishBotSession():
                await api.bot_session_finish(effect.chat_id)
            case FetchTranscript():
                history = await api.session_history_get(session_id=effect.session_id)
                return transcript_input(effect.session_id, history)
            case SaveHeadVote():
                # both, always: a rating without a comment wipes the stored comment (§5.15)
                await api.session_head_vote(
                    effect.session_id, rating=effect.rating, comment=effect.comment
                )
                metrics.VOTES.labels(member_id=member_id).inc()
                return VoteSaved(session_id=effect.session_id, at=time.time())
            case CreateLead():
                lead_id = await leads.ensure_lead(api, effect)
                return LeadCreated(session_id=effect.session_id, lead_id=lead_id, at=time.time())
        return None

"""Runs the dialog machine's effects against the portal and the timer store.

Results that the machine waits for (TranscriptFetched, VoteSaved, LeadCreated) and refusals
that mean "this cannot work" (the portal's own method errors and access refusals) come back as
follow-up inputs into the same dialog's inbox, so the machine decides what happens next. Transient
failures (throttles, 5xx, network, an unknown outcome) raise, and the runner retries the effect.
A message's retry first looks whether the chat already shows it (handler/resend.py).

The executor's dependencies are explicit: a factory of typed portal APIs, the effect log (the
dialog's stored effects, for the resend rule) and the timer store. It reads the effect id once
(`EffectId.parse`) and dispatches on the effect's class.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

import structlog
from structlog.contextvars import bound_contextvars

from orchestrator.bitrix.bot_store import BotDirectory, BotRecord
from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.models import Dialog, SessionHistory
from orchestrator.dialog.effects import (
    EFFECT_TYPES,
    AskAnswerer,
    CancelTimer,
    CheckSession,
    CreateLead,
    Effect,
    EffectId,
    FetchTranscript,
    FinishBotSession,
    HandToQueue,
    SaveHeadVote,
    ScheduleTimer,
    SendMessage,
    Transfer,
    effect_from_record,
)
from orchestrator.dialog.evaluation import client_vote_from
from orchestrator.dialog.inputs import (
    EffectFailed,
    Input,
    LeadCreated,
    SessionChecked,
    TranscriptFetched,
    VoteSaved,
    input_record,
)
from orchestrator.errors import AccessDenied, MethodError
from orchestrator.handler import keyboards, leads, resend
from orchestrator.handler.answerers import AnswererPool
from orchestrator.handler.answerers.pool import TYPING_EVERY_S
from orchestrator.observe import metrics
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.records import EffectRecord
from orchestrator.pipeline.runner import FollowUp
from orchestrator.pipeline.timers import INPUT_EVENT_PREFIX, TimerStore

__all__ = [
    "GIVE_UP",
    "LEGACY_REGISTER_PORTAL",
    "PATIENT",
    "EffectExecutor",
    "EffectLog",
    "is_patient",
    "session_checked",
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
GIVE_UP: tuple[type[Effect], ...] = (
    SendMessage,
    FinishBotSession,
    Transfer,
    FetchTranscript,
    CheckSession,  # the reconcile timer asks again anyway
    AskAnswerer,  # the line's fallback answers instead
)
# Queue handoffs, votes and leads have no such way round: they are patient (more tries, waits
# of up to a minute, the dialog handed back meanwhile — see Runner), so an outage of a few
# minutes delays them, and only a longer one makes them dead letters, replayed once it is over.
PATIENT: tuple[type[Effect], ...] = (HandToQueue, SaveHeadVote, CreateLead)


def is_patient(effect: Effect) -> bool:
    """Whether the pipeline should wait out an outage for this effect (see PATIENT)."""
    return isinstance(effect, PATIENT)


class EffectLog(Protocol):
    """The dialog's stored effects (id -> record JSON), as the store keeps them."""

    async def effect_records(self, member_id: str, chat_id: str) -> Mapping[bytes, bytes]: ...


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


def session_checked(effect_id: EffectId, effect: CheckSession, dialog: Dialog) -> SessionChecked:
    """What imopenlines.dialog.get shows of the session a reconcile check asked about."""
    current = dialog.lines_session_id
    gone = not current or (effect.session_id is not None and current != effect.session_id)
    outcome = "gone" if gone else "open"
    metrics.RECONCILE_CHECKS.labels(member_id=effect_id.member_id, outcome=outcome).inc()
    log.info("session_checked", chat_id=effect.chat_id, current_session_id=current, outcome=outcome)
    return SessionChecked(
        session_id=effect.session_id,
        current_session_id=current,
        effect_id=str(effect_id),
        at=time.time(),
    )


def _failed(effect_id: EffectId, record: EffectRecord, code: str) -> FollowUp:
    """The effect's failure, for the machine to decide what happens instead."""
    return follow_up(
        effect_id.dialog_key,
        EffectFailed(
            effect_kind=record.kind,
            error_code=code,
            effect_id=record.effect_id,
            session_id=effect_id.session_id,
            at=time.time(),
        ),
    )


class EffectExecutor:
    """One effect record in, follow-up events out."""

    def __init__(
        self,
        api_for: Callable[[str], PortalApi],
        effect_log: EffectLog,
        timers: TimerStore,
        bots: BotDirectory | None = None,
        answerers: AnswererPool | None = None,
    ) -> None:
        self.api_for = api_for
        self.effect_log = effect_log
        self.timers = timers
        self.keys = Keys(timers.prefix)
        self.bots = bots
        self.answerers = answerers

    async def run(self, record: EffectRecord) -> list[FollowUp]:
        """Execute one effect; permanent portal refusals become an EffectFailed follow-up."""
        if record.kind == LEGACY_REGISTER_PORTAL:
            log.warning("legacy_effect_skipped", kind=record.kind)
            return []
        effect_id = EffectId.parse(record.effect_id)
        effect = effect_from_record(record.kind, record.payload, effect_id)
        with bound_contextvars(session_id=effect_id.session_id):
            try:
                result = await self._execute(effect, effect_id, record.attempt)
            except (MethodError, AccessDenied) as exc:
                log.warning("effect_refused", kind=record.kind, code=exc.code)
                return [_failed(effect_id, record, exc.code or "ERROR")]
            log.debug("effect_executed", kind=record.kind, result=type(result).__name__)
        return [] if result is None else [follow_up(effect_id.dialog_key, result)]

    def give_up(self, record: EffectRecord, error_code: str) -> list[FollowUp] | None:
        """An effect out of tries (transient failures, or kills mid-call): the kinds the machine
        can work around come back as EffectFailed; the rest (None) become dead letters."""
        cls = EFFECT_TYPES.get(record.kind)
        if cls is None or not issubclass(cls, GIVE_UP):
            return None
        return [_failed(EffectId.parse(record.effect_id), record, error_code)]

    async def _execute(self, effect: Effect, effect_id: EffectId, attempt: int) -> Input | None:
        bot = await self.bots.v2_bot(effect_id.member_id) if self.bots else None
        # a v2 bot owned by its token (a webhook portal) names itself to bot.session.* by it
        api = self.api_for(effect_id.member_id).owned_by(bot.bot_token if bot else None)
        member_id, chat_key = effect_id.member_id, effect_id.dialog_key
        match effect:
            case SendMessage():
                await self._send(api, bot, effect, effect_id, attempt)
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
                # by session when we know it, else the chat's newest (it names its session)
                history = (
                    await api.session_history_get(session_id=effect.session_id)
                    if effect.session_id is not None
                    else await api.session_history_get(chat_id=effect.chat_id)
                )
                return transcript_input(history.session_id, history)
            case SaveHeadVote():
                # both, always: a rating without a comment wipes the stored comment (§5.15)
                await api.session_head_vote(
                    effect.session_id, rating=effect.rating, comment=effect.comment
                )
                metrics.VOTES.labels(member_id=member_id).inc()
                return VoteSaved(session_id=effect.session_id, at=time.time())
            case CreateLead():
                lead_id = await leads.ensure_lead(api, effect, retried=attempt > 1)
                return LeadCreated(session_id=effect.session_id, lead_id=lead_id, at=time.time())
            case CheckSession():
                dialog = await api.dialog_get(chat_id=effect.chat_id)
                return session_checked(effect_id, effect, dialog)
            case AskAnswerer():
                if self.answerers is None:
                    raise RuntimeError(
                        "an AskAnswerer without answerers (build_handler makes them)"
                    )
                return await self.answerers.ask(
                    effect, effect_id, lambda: self._typing(api, bot, effect_id, effect.chat_id)
                )
        return None

    async def _typing(
        self, api: PortalApi, bot: BotRecord | None, effect_id: EffectId, chat_id: int
    ) -> None:
        """Show the client the bot is typing, unless it was shown in this dialog within the last
        few seconds (by any worker: the mark is in Redis and expires by itself)."""
        key = self.keys.dialog(effect_id.member_id, effect_id.dialog_key).typing
        every_ms = int(TYPING_EVERY_S * 1000)
        if not await self.timers.redis.set(key, b"1", nx=True, px=every_ms):
            return
        if bot is not None:
            await api.bot_v2(bot.bot_token).notify_input(bot.bot_id, f"chat{chat_id}")
        else:
            await api.imbot_chat_send_typing(f"chat{chat_id}")
        metrics.TYPING_SHOWN.labels(member_id=effect_id.member_id).inc()

    async def _send(
        self,
        api: PortalApi,
        bot: BotRecord | None,
        effect: SendMessage,
        effect_id: EffectId,
        attempt: int,
    ) -> None:
        """Post a message, unless a try before this one already did (handler/resend.py)."""
        if attempt > 1 and await self._posted_before(api, effect, effect_id):
            log.warning("message_already_posted", attempt=attempt)
            return
        if effect.via == "session":
            await api.bot_session_message_send(effect.chat_id, effect.text, name="DEFAULT")
            return
        # the bot's own words; a note never reaches the client
        if bot is not None:  # a v2 bot speaks through imbot.v2 (its v1 methods are not its own)
            await api.bot_v2(bot.bot_token).send(
                bot.bot_id,
                f"chat{effect.chat_id}",
                effect.text,
                keyboard=keyboards.v2(effect.buttons),
                skip_connector=True if effect.via == "note" else None,
            )
            if effect.buttons and bot.event_mode == "fetch":
                await keyboards.watch(self.timers.redis, self.keys, api.member_id)
            return
        await api.imbot_message_add(
            f"chat{effect.chat_id}",
            effect.text,
            keyboard=keyboards.v1(effect.buttons),
            skip_connector=True if effect.via == "note" else None,
        )

    async def _posted_before(
        self, api: PortalApi, effect: SendMessage, effect_id: EffectId
    ) -> bool:
        """The chat shows this message already; False when that cannot be read."""
        records = await self.effect_log.effect_records(effect_id.member_id, effect_id.dialog_key)
        earlier = resend.earlier_sends(effect_id, records)
        histories: list[SessionHistory] = []
        for n, session in enumerate(resend.sessions_to_read(effect, earlier)):
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
        return resend.already_posted(effect, earlier, histories)

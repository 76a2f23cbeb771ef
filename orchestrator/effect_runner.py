"""Runs the dialog machine's effects against the portal (REST client) and the timer store.

Results that the machine waits for (TranscriptFetched, VoteSaved, LeadCreated) and refusals
that mean "this cannot work" (the portal's own method errors and access refusals) come back as
follow-up inputs into the same dialog's inbox, so the machine decides what happens next. Transient
failures (throttles, 5xx, network, an unknown outcome) raise, and the runner retries the effect.
"""

from __future__ import annotations

import time
from datetime import datetime

import structlog
from structlog.contextvars import bound_contextvars

from orchestrator import leads, metrics
from orchestrator.bitrix.client import BitrixClient
from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.models import SessionHistory
from orchestrator.effects import (
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
from orchestrator.errors import (
    AccessDenied,
    MethodError,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    TransportError,
)
from orchestrator.evaluation import client_vote_from
from orchestrator.inputs import (
    EffectFailed,
    Input,
    LeadCreated,
    TranscriptFetched,
    VoteSaved,
    input_record,
)
from orchestrator.runner import FollowUp
from orchestrator.store import EffectRecord
from orchestrator.timers import INPUT_EVENT_PREFIX, TimerStore

__all__ = ["REGISTER_PORTAL", "EffectExecutor", "dialog_of", "transcript_input"]

log = structlog.get_logger(__name__)

# A portal-level effect: store the OAuth tokens an ONAPPINSTALL carries for the REST client.
REGISTER_PORTAL = "RegisterPortal"

# Effects whose lasting failure the machine can work around (the bot hands off, a refused
# transfer falls back to the queue, the rating goes without the transcript): when a transient
# failure outlives the pipeline's retries they come back as EffectFailed, not a dead letter.
# Queue handoffs, votes and leads stay dead letters, to be replayed once the portal is back.
GIVE_UP_KINDS = frozenset({"SendMessage", "FinishBotSession", "Transfer", "FetchTranscript"})
_TRANSIENT = (OutcomeUnknown, ServerError, TransportError, RateLimited)
_GIVE_UP_TTL_S = 24 * 3600


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
        if record.kind == REGISTER_PORTAL:
            await self.client.auth.register_from_install(record.payload["auth"])
            return []
        effect = effect_from_record(record.kind, record.payload, record.effect_id)
        with bound_contextvars(session_id=effect_session_id(record.effect_id)):
            return await self._run_bound(record, effect, member_id, chat_key)

    async def _run_bound(
        self, record: EffectRecord, effect: Effect, member_id: str, chat_key: str
    ) -> list[FollowUp]:
        try:
            result = await self._dispatch(self.client.api(member_id), member_id, chat_key, effect)
        except (MethodError, AccessDenied) as exc:
            log.warning("effect_refused", kind=record.kind, code=exc.code)
            return [_failed(chat_key, record, exc.code or "ERROR")]
        except _TRANSIENT as exc:
            if record.kind not in GIVE_UP_KINDS or not await self._last_try(member_id, record):
                raise  # the pipeline retries it
            log.warning("effect_given_up", kind=record.kind, error=type(exc).__name__)
            return [_failed(chat_key, record, type(exc).__name__)]
        log.debug("effect_executed", kind=record.kind, result=type(result).__name__)
        return [] if result is None else [follow_up(chat_key, result)]

    async def _last_try(self, member_id: str, record: EffectRecord) -> bool:
        """Count a transient failure of the effect; True on the pipeline's last attempt."""
        settings = self.client.settings
        key = f"{settings.key_prefix}:{{{member_id}}}:giveup:{record.effect_id}"
        failures = int(await self.client.redis.incr(key))
        await self.client.redis.expire(key, _GIVE_UP_TTL_S)
        return failures >= max(1, settings.max_attempts - 1)

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
            case SendMessage(via="session"):
                await api.bot_session_message_send(effect.chat_id, effect.text, name="DEFAULT")
            case SendMessage():  # the bot's own words; a note never reaches the client
                await api.imbot_message_add(
                    f"chat{effect.chat_id}",
                    effect.text,
                    skip_connector=True if effect.via == "note" else None,
                )
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

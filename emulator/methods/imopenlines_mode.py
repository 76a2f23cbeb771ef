"""Dialog modes: pin/unpin (§5.12), pinAll/unpinAll (§5.13) and silent (§5.14)."""

from __future__ import annotations

from typing import Any

from emulator.methods._common import check_access, php_empty
from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.state import Chat, Session, Status


def _set_pause(portal: Portal, chat: Chat, session: Session, pin: bool) -> None:
    """Chat::setPauseFlag: session and ENTITY_DATA_1 PAUSE; pinning also clears WAIT_ACTION."""
    session.pause = chat.pause = pin
    if pin:
        session.wait_action = chat.wait_action = False
    text = (
        "The conversation is pinned to the operator; auto-close moved by a week"
        if pin
        else "The conversation is unpinned"
    )
    portal.post_message(chat, 0, text, system=True)


def _pin(ctx: CallContext, params: dict[str, Any], pin: bool) -> bool:
    if php_empty(params.get("CHAT_ID")):
        raise RestError("CHAT_ID_EMPTY", "Chat ID can't be empty")
    chat = check_access(ctx, params.get("CHAT_ID"))
    if chat.pause == pin:
        return True
    session = ctx.portal.open_session(chat)
    if session is None or session.operator_id != ctx.user_id:
        # The REST layer reads the blank default BasicError: empty code and description.
        raise RestError("", "")
    _set_pause(ctx.portal, chat, session, pin)
    return True


@method("imopenlines.session.mode.pin", scope="imopenlines", keys_normalised=False)
def session_mode_pin(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Pin (ACTIVATE anything but N) or unpin (ACTIVATE=N) the dialog to its operator."""
    return _pin(ctx, params, str(params.get("ACTIVATE", "Y")) != "N")


@method("imopenlines.session.mode.unpin", scope="imopenlines", keys_normalised=False)
def session_mode_unpin(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Unpin the dialog; ACTIVATE is ignored."""
    return _pin(ctx, params, False)


def _pin_all(ctx: CallContext, pin: bool) -> list[int]:
    portal = ctx.portal
    changed = []
    for session in sorted(portal.sessions.values(), key=lambda s: s.id, reverse=True):
        if (
            session.operator_id == ctx.user_id
            and session.pause != pin
            and not session.closed
            and Status.ANSWER <= session.status < Status.WAIT_CLIENT
        ):
            _set_pause(portal, portal.chats[session.chat_id], session, pin)
            changed.append(session.id)
    return changed


@method("imopenlines.session.mode.pinAll", scope="imopenlines", keys_normalised=False)
def session_mode_pin_all(ctx: CallContext, params: dict[str, Any]) -> list[int]:
    """Pin every dialog the caller operates with 10 <= status < 50; the changed session ids."""
    return _pin_all(ctx, True)


@method("imopenlines.session.mode.unpinAll", scope="imopenlines", keys_normalised=False)
def session_mode_unpin_all(ctx: CallContext, params: dict[str, Any]) -> list[int]:
    """Unpin every pinned dialog the caller operates with 10 <= status < 50."""
    return _pin_all(ctx, False)


@method("imopenlines.session.mode.silent", scope="imopenlines", keys_normalised=False)
def session_mode_silent(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Whisper mode: ENTITY_DATA_3=Y and operator messages stop reaching the client."""
    chat = check_access(ctx, params.get("CHAT_ID"))
    chat.silent = str(params.get("ACTIVATE", "")) == "Y"
    ctx.portal.post_message(
        chat, 0, "Whisper mode is on" if chat.silent else "Whisper mode is off", system=True
    )
    return True

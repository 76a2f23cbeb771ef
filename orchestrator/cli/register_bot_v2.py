"""`orchestrator register-bot --api v2`: our Open Lines bot through the chat-bot API v2.

Each step looks before it writes, so a re-run changes nothing and says what it found:

1. the owner: an OAuth app owns its bots by its client id; over an inbound webhook the owner is
   the bot token (docs/bitrix24-bots-v2.md "Owner and token"), generated once and stored in
   Redis BEFORE the portal sees it (orchestrator/bitrix/bot_store.py), then reused;
2. `Bot.get {code}`; `Bot.register` only on `BOT_NOT_FOUND` — a bot found in the brief format
   belongs to another owner (e.g. a token lost with Redis) and is refused, never re-registered;
   a stored bot whose mode or webhook URL differs from the one asked for gets one `Bot.update`;
3. offline bindings of the Open Lines events and `onOfflineEvent` at our ingress: OAuth and an
   administrator only (docs/bitrix24-offline-events.md §1.1, §1.10), skipped and said so on a
   webhook portal, like the v1 path's `event.bind`; once bound, the portal's record is flagged
   (`Portals.mark_offline_events`) so the offline consumer drains its queue
   (orchestrator/ingress/pull/offline.py);
4. each `--line` gets the bot as its welcome bot (orchestrator/bitrix/line_config.py: all five
   welcome keys in one update, read back).

The JSON report names the bot, its mode, the lines and the bindings; never the token.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ConfigurationError, MethodError
from orchestrator.events.bots_v2 import BUTTON_COMMAND

if TYPE_CHECKING:
    from orchestrator.bitrix import BotV2Api, PortalApi
    from orchestrator.bitrix.bot_store import BotStore
    from orchestrator.bitrix.models_v2 import BotV2
    from orchestrator.ingress.portals import Portals

__all__ = [
    "NOTICE_MIN_TIMEOUT_S",
    "OFFLINE_EVENTS",
    "ON_OFFLINE_EVENT",
    "bind_offline",
    "register_v2",
]

# The Open Lines events the dialog machine needs besides the bot's own (v1: OPENLINE_EVENTS),
# bound offline so a lost push cannot lose them (docs/bitrix24-offline-events.md §4).
OFFLINE_EVENTS = ("ONSESSIONSTART", "ONSESSIONFINISH", "ONOPENLINEMESSAGEADD")
ON_OFFLINE_EVENT = "ONOFFLINEEVENT"
# onOfflineEvent's `minTimeout`: 0 asks the portal for one notice per request that wrote rows.
# With its default (1 s) it drops, not delays, every notice inside the second after one
# (docs/bitrix24-offline-events.md §1.10): under steady traffic most client messages then raise
# none and wait for a poll. A notice is one POST to our ingress, as a v1 push was; the drains it
# starts coalesce under load (orchestrator/ingress/pull/offline.py).
NOTICE_MIN_TIMEOUT_S = 0
OFFLINE_UNREGISTERED_NOTE = (
    "not flagged: the portal has no record in our registry (install the app, or "
    "`orchestrator portals add`), so no offline consumer drains its queue"
)
OFFLINE_WEBHOOK_NOTE = (
    "offline event binding needs an OAuth app and an administrator "
    "(docs/bitrix24-offline-events.md §1.1); on a webhook portal the Open Lines events "
    "(ONSESSIONSTART, ONSESSIONFINISH, ONOPENLINEMESSAGEADD) and onOfflineEvent are not bound. "
    "The bot still answers (its own events come by fetch), and a session closed by an operator "
    "or the portal is found by the workers' reconciliation sweep (RECONCILE_INTERVAL_S, 300 s by "
    "default): its rating and lead follow the close within that (docs/connect.md)"
)
NO_LINE_NOTE = (
    "no --line given: the bot is no line's welcome bot yet, so no client reaches it; run again "
    "with --line <line id> (docs/connect.md says where the portal shows a line's id)"
)


async def bind_offline(api: PortalApi, handler: str) -> dict[str, list[str]]:
    """Bind the Open Lines events offline, each once, and onOfflineEvent to `handler` with our
    minTimeout (an existing binding is bound again: event.get does not show its options)."""
    rows = await api.event_get()
    offline = {r.event.upper() for r in rows if r.offline}
    online = {r.event.upper() for r in rows if not r.offline and (r.handler or "") == handler}
    bound: list[str] = []
    already: list[str] = []
    for event in OFFLINE_EVENTS:
        if event in offline:
            already.append(event)
        elif await _bind(api, event, None, "offline"):
            bound.append(event)
        else:
            already.append(event)
    if ON_OFFLINE_EVENT in online:
        await api.event_unbind(ON_OFFLINE_EVENT, handler)
    if await _bind(api, ON_OFFLINE_EVENT, handler, None):
        (already if ON_OFFLINE_EVENT in online else bound).append(ON_OFFLINE_EVENT)
    else:
        already.append(ON_OFFLINE_EVENT)
    return {"bound": bound, "already_bound": already}


async def _bind(api: PortalApi, event: str, handler: str | None, kind: str | None) -> bool:
    """True when bound now; False when a racing run bound it first."""
    try:
        if kind == "offline":
            await api.event_bind(event, event_type="offline")
        else:
            await api.event_bind(event, handler, options={"minTimeout": NOTICE_MIN_TIMEOUT_S})
    except MethodError as exc:
        # the portal's "Unable to set event handler: Handler already binded"
        if "already" not in exc.description.lower():
            raise
        return False
    return True


async def _find_or_register(
    bots: BotV2Api, args: argparse.Namespace, webhook_url: str | None
) -> tuple[BotV2, str]:
    """The bot and what happened to it: found, registered."""
    try:
        bot = await bots.get(code=args.code)
    except MethodError as exc:
        if exc.code != "BOT_NOT_FOUND":
            raise
        bot = await bots.register(
            args.code, name=args.name, event_mode=args.event_mode, webhook_url=webhook_url
        )
        return bot, "registered"
    if not bot.owned:
        raise ConfigurationError(
            f"bot code {args.code!r} (id {bot.id}) belongs to another owner on this portal: "
            "its token is not the one stored here; choose another --code or restore the token"
        )
    return bot, "found"


async def _align_mode(
    bots: BotV2Api, bot: BotV2, args: argparse.Namespace, stored_url: str, url: str | None
) -> tuple[BotV2, bool]:
    """One `Bot.update` when the found bot's mode (or webhook URL) is not the one asked for."""
    if bot.event_mode == args.event_mode and (args.event_mode == "fetch" or stored_url == url):
        return bot, False
    fields: dict[str, Any] = {"eventMode": args.event_mode}
    if url:
        fields["webhookUrl"] = url
    updated = await bots.update(bot.id, fields)
    if updated.event_mode != args.event_mode:
        # A v1 bot seen through v2 keeps its v1 handlers whatever Bot.update is asked.
        raise ConfigurationError(
            f"bot {args.code!r} (id {bot.id}) stays in {updated.event_mode} mode: a bot "
            "registered through v1? Use --api v1 for it, or another --code"
        )
    return updated, True


async def register_v2(
    api: PortalApi,
    store: BotStore,
    args: argparse.Namespace,
    *,
    oauth: bool,
    portals: Portals | None = None,
) -> dict[str, Any]:
    """Steps 1–4 above; the report."""
    from orchestrator.bitrix import WelcomeBot

    url = args.ingress_url if args.event_mode == "webhook" else None
    token: str | None = None
    token_state = "none: the OAuth app owns its bots"
    if not oauth:
        token, created = await store.ensure_token(api.member_id, args.code)
        token_state = "generated and stored" if created else "reused from Redis"
    stored = await store.load(api.member_id, args.code)
    bots = api.bot_v2(token)
    bot, state = await _find_or_register(bots, args, url)
    bot, updated = await _align_mode(bots, bot, args, stored.webhook_url if stored else "", url)
    await store.record_bot(
        api.member_id,
        args.code,
        bot_id=bot.id,
        event_mode=bot.event_mode or args.event_mode,
        webhook_url=url or "",
    )
    # the command its keyboard buttons raise (idempotent; hidden from the command list)
    await bots.register_command(bot.id, BUTTON_COMMAND, title={"en": "Answer"}, hidden=True)
    report: dict[str, Any] = {
        "api": "v2",
        "bot_id": bot.id,
        "code": args.code,
        "member_id": api.member_id,
        "auth": "oauth" if oauth else "webhook",
        "event_mode": bot.event_mode or args.event_mode,
        "webhook_url": url,
        "bot": "mode updated" if updated and state == "found" else state,
        "bot_token_state": token_state,
        "button_command": f"/{BUTTON_COMMAND}",
    }
    if oauth and not args.no_bind:
        report.update(await bind_offline(api, args.ingress_url))
        if portals is not None:
            flagged = await portals.mark_offline_events(api.member_id, NOTICE_MIN_TIMEOUT_S)
            report["offline_consumer"] = "flagged" if flagged else OFFLINE_UNREGISTERED_NOTE
    else:
        report.update(
            {"bound": [], "already_bound": [], "skipped": [*OFFLINE_EVENTS, ON_OFFLINE_EVENT]}
        )
        if not oauth:
            report["note"] = OFFLINE_WEBHOOK_NOTE
            print(f"note: {OFFLINE_WEBHOOK_NOTE}", file=sys.stderr)
    attached: list[int] = []
    already: list[int] = []
    for line_id in args.line or []:
        changed, _ = await api.lines().attach_welcome_bot(line_id, WelcomeBot(bot.id))
        (attached if changed else already).append(line_id)
    report.update({"lines_attached": attached, "lines_already": already})
    # what the run could not do, so the bot would not answer or not finish its dialogs
    report["still_missing"] = [] if attached or already else [NO_LINE_NOTE]
    if not attached and not already:
        print(f"missing: {NO_LINE_NOTE}", file=sys.stderr)
    return report

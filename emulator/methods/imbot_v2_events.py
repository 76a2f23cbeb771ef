"""`imbot.v2.Event.get` (docs/bitrix24-bots-v2.md §3): a fetch-mode bot polls its rows of the event
log. The owner alone may read (and, by `offset`, delete) them; the semantics of the log itself are
emulator.fetch_queue's."""

from __future__ import annotations

from typing import Any

from emulator.methods._common import php_int
from emulator.methods._v2_common import first, flag, owned_bot
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.transport import iso_date

DEFAULT_LIMIT = 100


def _user_events(ctx: CallContext) -> None:
    """withUserEvents: the calling user's ONIMV2* events need scope `im`, a user, and that
    user's im.v2.Event.subscribe — which the emulator does not model, so a user that passes
    the first two checks is never subscribed."""
    if "im" not in ctx.scopes:
        raise RestError("SCOPE_ERROR", "Scope 'im' is required to fetch user events")
    if ctx.user_id <= 0:
        raise RestError("AUTH_ERROR", "Could not resolve the current user")
    raise RestError("USER_NOT_SUBSCRIBED", "The user is not subscribed to events")


@method("imbot.v2.Event.get", scope="imbot", keys_normalised=False)
def event_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Confirm (delete) the bot's rows below `offset`, return the next `limit` from it."""
    bot = owned_bot(ctx, params)
    if flag(params.get("withUserEvents", False)):
        _user_events(ctx)
    raw_limit = first(params, "limit", "LIMIT")
    limit = DEFAULT_LIMIT if raw_limit is None else php_int(raw_limit)
    offset = php_int(first(params, "offset", "OFFSET"))
    page = ctx.portal.fetch_queue.fetch([bot.id], offset, limit)
    for event_id in page.confirmed:  # the portal's own record of what the bot confirmed
        ctx.portal.journal.append("event_confirmed", event_id=event_id, bot_id=bot.id)
    return {
        "events": [
            {"eventId": row.id, "type": row.type, "date": iso_date(row.at), "data": row.data}
            for row in page.events
        ],
        "nextOffset": page.next_offset,
        "hasMore": page.has_more,
    }

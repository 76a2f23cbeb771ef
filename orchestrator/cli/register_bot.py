"""`orchestrator register-bot`: our open-line bot on a portal, its events to us.

`--api v2` registers through the chat-bot API v2 (orchestrator/cli/register_bot_v2.py): fetch
mode by default, the bot token of a webhook portal stored in Redis, the Open Lines events bound
offline, the bot attached to the `--line`s as their welcome bot. It is not the default yet: the
fetcher that polls a v2 bot's events, and the ingress's v2 event models, are still to come (a v2
bot registered today would get no answer from us); until then the default stays v1.

`--api v1` (the default until then) is the path of bots registered through `imbot.register` (a bot
receives events only in the format of the API that registered it, docs/bitrix24-bots-v2.md
"Coexistence with v1"): `imbot.register`
(TYPE=O, OPENLINE=Y) answers the same id again for the same CODE, so the command can be re-run
safely. `event.bind` of the Open Lines events works only for OAuth apps (docs/bitrix24.md:
`event.*` over a webhook is WRONG_AUTH_TYPE); on a webhook portal the binding is skipped and
said so, and a bot registered over a webhook needs CLIENT_ID.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TypeAlias

from orchestrator.cli.dialogs import (
    add_member_id,
    chosen_member,
    fail,
    portal_client,
    print_json,
    run_cli,
)
from orchestrator.cli.lazy import lazy
from orchestrator.errors import ConfigurationError, MethodError, OrchestratorError
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.bitrix import PortalApi

    Sub: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "OPENLINE_EVENTS",
    "add_register_bot",
    "bind_events",
    "register_bot_main",
    "run_register",
]

# The Open Lines events the dialog machine consumes besides the bot's own handlers.
OPENLINE_EVENTS = ("ONOPENLINEMESSAGEADD", "ONSESSIONSTART", "ONSESSIONFINISH")
WEBHOOK_NOTE = (
    "event.bind is OAuth-only on Bitrix24: on a webhook portal the Open Lines events "
    "(ONOPENLINEMESSAGEADD, ONSESSIONSTART, ONSESSIONFINISH) cannot be bound; binding skipped"
)


async def bind_events(api: PortalApi, handler: str) -> dict[str, list[str]]:
    """Bind each Open Lines event to `handler` once; an existing binding is not an error."""
    existing = {b.event.upper() for b in await api.event_get() if (b.handler or "") == handler}
    bound: list[str] = []
    already: list[str] = []
    for event in OPENLINE_EVENTS:
        if event in existing:
            already.append(event)
            continue
        try:
            await api.event_bind(event, handler)
        except MethodError as exc:
            # a bind racing another run: the portal says "Handler already binded"
            if "already" not in exc.description.lower():
                raise
            already.append(event)
            continue
        bound.append(event)
    return {"bound": bound, "already_bound": already}


async def run_register(args: argparse.Namespace, settings: Settings) -> int:
    """Register (or find) the bot and bind the events; print what was done as JSON."""
    from orchestrator.bitrix.auth import OAUTH
    from orchestrator.bitrix.bot_store import BotStore
    from orchestrator.cli.register_bot_v2 import register_v2
    from orchestrator.ingress.portals import Portals
    from orchestrator.pipeline.keys import Keys

    try:
        async with portal_client(settings) as client:
            member_id = await chosen_member(client, args.member_id)
            api = client.api(member_id, bot_client_id=args.client_id)
            oauth = (await client.auth.get(api.member_id)).kind == OAUTH
            _check(args, oauth=oauth, bot_client_id=api.bot_client_id)
            if args.api == "v1":
                report = await _register(api, args, oauth=oauth)
            else:
                store = BotStore(client.redis, prefix=settings.key_prefix)
                portals = Portals(client.redis, Keys(settings.key_prefix))
                report = await register_v2(api, store, args, oauth=oauth, portals=portals)
    except OrchestratorError as exc:
        return fail(exc)
    print_json(report)
    return 0


def _check(args: argparse.Namespace, *, oauth: bool, bot_client_id: str | None) -> None:
    """Refuse a combination that cannot work before any call reaches the portal."""
    if args.api == "v1":
        if not args.ingress_url:
            raise ConfigurationError("--api v1 needs --ingress-url (the bot's event handler)")
        if not oauth and not bot_client_id:
            raise ConfigurationError(
                "a bot registered over a webhook needs --client-id (or B24_BOT_CLIENT_ID)"
            )
        return
    if args.event_mode == "webhook" and not args.ingress_url:
        raise ConfigurationError("--event-mode webhook needs --ingress-url (the bot's webhookUrl)")
    if oauth and not args.no_bind and not args.ingress_url:
        raise ConfigurationError(
            "binding onOfflineEvent needs --ingress-url (or pass --no-bind to skip bindings)"
        )


async def _register(api: PortalApi, args: argparse.Namespace, *, oauth: bool) -> dict[str, Any]:
    bot_id = await api.imbot_register(args.code, name=args.name, event_handler=args.ingress_url)
    report: dict[str, Any] = {
        "bot_id": bot_id,
        "code": args.code,
        "member_id": api.member_id,
        "auth": "oauth" if oauth else "webhook",
        "handler": args.ingress_url,
    }
    if oauth and not args.no_bind:
        report.update(await bind_events(api, args.ingress_url))
    else:
        report.update({"bound": [], "already_bound": [], "skipped": list(OPENLINE_EVENTS)})
        if not oauth:
            report["note"] = WEBHOOK_NOTE
            print(f"note: {WEBHOOK_NOTE}", file=sys.stderr)
    return report


def register_bot_main(args: argparse.Namespace) -> int:
    """Entry of `orchestrator register-bot`."""
    return run_cli(run_register, args)


def add_register_bot(sub: Sub) -> None:
    """`orchestrator register-bot --ingress-url URL ...`."""

    p = sub.add_parser(
        "register-bot",
        help="register our open-line bot (v2, fetch mode, by default), bind the Open Lines events",
    )
    p.add_argument(
        "--api",
        choices=("v2", "v1"),
        default="v2",
        help="v2 (default: imbot.v2, the API new bots are to use) or v1 (a bot already "
        "registered through imbot.register keeps its API)",
    )
    p.add_argument(
        "--event-mode",
        choices=("fetch", "webhook"),
        default="fetch",
        help="v2: fetch (default; we poll imbot.v2.Event.get) or webhook (the portal POSTs)",
    )
    p.add_argument(
        "--line",
        type=int,
        action="append",
        metavar="ID",
        help="v2: an Open Lines line whose welcome bot ours becomes (repeatable)",
    )
    p.add_argument(
        "--ingress-url",
        default=None,
        help="our public event endpoint, e.g. https://bot.example.com/b24/events (v1, v2 "
        "webhook mode, and onOfflineEvent on an OAuth portal)",
    )
    p.add_argument("--code", default="openlines_orchestrator", help="the bot's CODE (its key)")
    p.add_argument("--name", default="Support Bot", help="the bot's PROPERTIES[NAME]")
    p.add_argument(
        "--client-id",
        default=None,
        help="v1: CLIENT_ID of a webhook-registered bot (default: B24_BOT_CLIENT_ID)",
    )
    p.add_argument("--no-bind", action="store_true", help="bind no portal event")
    add_member_id(p)
    p.set_defaults(func=lazy("orchestrator.cli.register_bot:register_bot_main"))

"""`orchestrator dialogs ...`: the operator-side Open Lines methods for supervisors and scripts.

Each action is one call of a `PortalApi` wrapper on the chosen portal (`--member-id`, default
the webhook portal of B24_WEBHOOK_URL); the result is printed as JSON, a portal error as one
line with its code on stderr and exit code 1.

    orchestrator dialogs get --chat-id 1763
    orchestrator dialogs vote 321 --rating 5 --comment "Quick and polite"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

from orchestrator.cli.failures import CommandFailed, Exit
from orchestrator.cli.lazy import lazy
from orchestrator.errors import (
    ConfigurationError,
    OrchestratorError,
    OutcomeUnknown,
    PortalError,
)
from orchestrator.settings import Settings, load_settings

if TYPE_CHECKING:
    from rich.table import Table

    from orchestrator.bitrix import BitrixClient, PortalApi
    from orchestrator.bitrix.models import SessionHistory

    Sub: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "add_dialogs",
    "dialogs_main",
    "fail",
    "portal_client",
    "print_json",
    "run_cli",
    "run_dialogs",
]

Action = Callable[["PortalApi", argparse.Namespace], Awaitable[Any]]


# --- shared by the portal commands (dialogs, register-bot) ---------------------------------------


@asynccontextmanager
async def portal_client(settings: Settings) -> AsyncIterator[BitrixClient]:
    """An open REST client; an embedded Redis for its rate budget when REDIS_URL is unset."""
    from orchestrator.bitrix import BitrixClient
    from orchestrator.redis.server import EmbeddedRedis

    async with AsyncExitStack() as stack:
        if not settings.redis_url:
            server = stack.enter_context(EmbeddedRedis())
            settings = settings.model_copy(update={"redis_url": server.url})
        client = await stack.enter_async_context(BitrixClient.from_settings(settings))
        yield client


async def chosen_member(client: BitrixClient, member_id: str | None) -> str | None:
    """`--member-id`, else B24_MEMBER_ID (the webhook portal), else the only portal in the
    registry (an OAuth app installed on one portal); several: name one."""
    from orchestrator.ingress.portals import Portals
    from orchestrator.pipeline.keys import Keys

    if member_id or client.default_member_id:
        return member_id
    registered = sorted(
        p.member_id for p in await Portals(client.redis, Keys(client.settings.key_prefix)).all()
    )
    if len(registered) == 1:
        return registered[0]
    if not registered:
        raise CommandFailed(
            "no portal: set B24_WEBHOOK_URL and B24_MEMBER_ID, or install the OAuth app "
            "(docs/connect.md), or name one with --member-id",
            Exit.CONFIG,
        )
    raise CommandFailed(
        f"several portals are registered ({', '.join(registered)}): name one with --member-id",
        Exit.USAGE,
    )


def print_json(value: Any) -> None:
    """The result on stdout as indented JSON (pydantic models dumped with their extra keys)."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def fail(exc: OrchestratorError) -> int:
    """One clear line on stderr; the exit code of a refused call (1) or a bad setup (78, as
    every command says it: orchestrator/cli/failures.py)."""
    if isinstance(exc, PortalError):
        where = f" ({exc.method})" if exc.method else ""
        text = exc.description or "no description"
        print(f"error: {exc.code or '<empty code>'}{where}: {text}", file=sys.stderr)
        return 1
    if isinstance(exc, CommandFailed):
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.code)
    if isinstance(exc, OutcomeUnknown):
        print(f"error: outcome unknown, check the portal before retrying: {exc}", file=sys.stderr)
        return 1
    print(f"error: {exc}", file=sys.stderr)
    return int(Exit.CONFIG) if isinstance(exc, ConfigurationError) else 1


def run_cli(
    run: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]],
    args: argparse.Namespace,
) -> int:
    """Run a portal command with the environment's settings (a bad setup goes up to be said in
    one line: orchestrator/cli/failures.py)."""
    return asyncio.run(run(args, load_settings()))


# --- the actions ---------------------------------------------------------------------------------


def _dialog_get(api: PortalApi, a: argparse.Namespace) -> Awaitable[Any]:
    return api.dialog_get(
        chat_id=a.chat_id, dialog_id=a.dialog_id, session_id=a.session_id, user_code=a.user_code
    )


ACTIONS: dict[str, Action] = {
    "open": lambda api, a: api.session_open(a.user_code),
    "get": _dialog_get,
    "history": lambda api, a: api.session_history_get(session_id=a.session_id, chat_id=a.chat_id),
    "start": lambda api, a: api.session_start(a.chat_id),
    "restart-from": lambda api, a: api.message_session_start(a.chat_id, a.message_id),
    "join": lambda api, a: api.session_join(a.chat_id),
    "intercept": lambda api, a: api.session_intercept(a.chat_id),
    "pin": lambda api, a: api.session_mode_pin(a.chat_id, activate=not a.off),
    "pin-all": lambda api, a: api.session_mode_pin_all(),
    "unpin-all": lambda api, a: api.session_mode_unpin_all(),
    "silent": lambda api, a: api.session_mode_silent(a.chat_id, activate=a.on),
    # both RATING and COMMENT every time: a rating alone wipes the stored comment (§5.15)
    "vote": lambda api, a: api.session_head_vote(a.session_id, rating=a.rating, comment=a.comment),
    "lead": lambda api, a: api.crm_lead_create(a.chat_id),
}


def _history_table(history: SessionHistory) -> Table:
    from rich.table import Table

    table = Table("id", "date", "author", "text", title=f"session {history.session_id}")
    for message_id, message in sorted(history.message.items()):
        user = history.users.get(message.sender_id) or {}
        author = str(user.get("name") or (message.sender_id or "system"))
        table.add_row(str(message_id), message.date, author, message.text)
    return table


async def run_dialogs(args: argparse.Namespace, settings: Settings) -> int:
    """Run one `dialogs` action and print its result; 1 when the portal refuses."""
    try:
        async with portal_client(settings) as client:
            api = client.api(await chosen_member(client, args.member_id))
            result = await ACTIONS[args.dialogs_command](api, args)
    except OrchestratorError as exc:
        return fail(exc)
    if getattr(args, "table", False):
        from rich.console import Console

        Console().print(_history_table(result))
    else:
        print_json(result)
    return 0


def dialogs_main(args: argparse.Namespace) -> int:
    """Entry of `orchestrator dialogs`."""
    return run_cli(run_dialogs, args)


# --- the parser ----------------------------------------------------------------------------------


def _chat(p: argparse.ArgumentParser) -> None:
    p.add_argument("chat_id", type=int, metavar="CHAT_ID", help="the Open Lines chat id")


def _add_handles(p: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    kinds: dict[str, type] = {"chat-id": int, "session-id": int, "dialog-id": str, "user-code": str}
    for name in names:
        group.add_argument(f"--{name}", type=kinds[name], default=None)


def _add_actions(dsub: Sub) -> None:
    p = dsub.add_parser("open", help="imopenlines.session.open: the chat of a USER_CODE")
    p.add_argument("user_code", metavar="USER_CODE", help="e.g. livechat|1|77|88")
    p = dsub.add_parser("get", help="imopenlines.dialog.get: the chat by one of its handles")
    _add_handles(p, ("chat-id", "dialog-id", "session-id", "user-code"))
    p = dsub.add_parser("history", help="imopenlines.session.history.get: the transcript")
    _add_handles(p, ("session-id", "chat-id"))
    p.add_argument("--table", action="store_true", help="the messages as a table, not JSON")
    _chat(dsub.add_parser("start", help="imopenlines.session.start: open (or join) a session"))
    p = dsub.add_parser(
        "restart-from",
        help="imopenlines.message.session.start: close the session, start one from a message",
    )
    _chat(p)
    p.add_argument("message_id", type=int, metavar="MESSAGE_ID")
    _chat(dsub.add_parser("join", help="imopenlines.session.join: join the chat"))
    _chat(dsub.add_parser("intercept", help="imopenlines.session.intercept: take the dialog"))
    p = dsub.add_parser("pin", help="imopenlines.session.mode.pin: pin the dialog to you")
    _chat(p)
    p.add_argument("--off", action="store_true", help="unpin instead (ACTIVATE=N)")
    dsub.add_parser("pin-all", help="imopenlines.session.mode.pinAll: pin all your dialogs")
    dsub.add_parser("unpin-all", help="imopenlines.session.mode.unpinAll: unpin them all")
    p = dsub.add_parser("silent", help="imopenlines.session.mode.silent: whisper mode")
    _chat(p)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--on", action="store_true", dest="on")
    mode.add_argument("--off", action="store_false", dest="on")
    p = dsub.add_parser("vote", help="imopenlines.session.head.vote: the supervisor's rating")
    p.add_argument("session_id", type=int, metavar="SESSION_ID")
    p.add_argument("--rating", type=int, required=True, choices=range(1, 6), metavar="1..5")
    p.add_argument("--comment", required=True, help="sent with the rating every time")
    _chat(dsub.add_parser("lead", help="imopenlines.crm.lead.create: a CRM lead from the chat"))


def add_member_id(p: argparse.ArgumentParser, *, default: Any = None) -> None:
    """`--member-id`: which portal (default B24_MEMBER_ID / the webhook portal)."""
    p.add_argument(
        "--member-id",
        default=default,
        help="the portal's member_id (default: B24_MEMBER_ID, the webhook portal; else the only "
        "portal registered)",
    )


def add_dialogs(sub: Sub) -> None:
    """`orchestrator dialogs ACTION ...`."""

    p = sub.add_parser("dialogs", help="operator-side Open Lines methods (one REST call each)")
    add_member_id(p)
    dsub = p.add_subparsers(dest="dialogs_command", required=True, metavar="ACTION")
    _add_actions(dsub)
    for action in dsub.choices.values():
        # accepted after the action too; SUPPRESS keeps a value given before the action
        add_member_id(action, default=argparse.SUPPRESS)
    p.set_defaults(func=lazy("orchestrator.cli.dialogs:dialogs_main"))

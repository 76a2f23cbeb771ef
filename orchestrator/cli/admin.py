"""Operator commands: `orchestrator dlq|sessions|portals|redis ...` (rich tables on stdout).

Each `*_main(args)` reads Settings and runs; `run_*(args, settings)` is the same work for a
caller that already holds Settings (tests, other commands).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from rich.table import Table

from orchestrator.cli.failures import CommandFailed, Exit
from orchestrator.cli.sessions import console, fit_ids, session_show, sessions_list
from orchestrator.ingress.portals import Portal, Portals
from orchestrator.pipeline.dlq import DeadLetters
from orchestrator.pipeline.epoch import acknowledge_loss, persistence_mode, read_loss
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.store import Store
from orchestrator.redis.client import aw, open_client
from orchestrator.settings import Settings, load_settings

__all__ = [
    "dlq_main",
    "portals_main",
    "redis_main",
    "run_dlq",
    "run_portals",
    "run_redis",
    "run_sessions",
    "sessions_main",
]


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def _client(settings: Settings) -> aioredis.Redis:
    if not settings.redis_url:
        raise CommandFailed("REDIS_URL is not set: point it at the Redis to inspect", Exit.CONFIG)
    return open_client(settings.redis_url)


def _main(
    run: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]],
    args: argparse.Namespace,
) -> int:
    """Run; an expected failure (cli/failures.py) goes up to be said in one line."""
    return asyncio.run(run(args, load_settings()))


_STREAM_ID = re.compile(r"\d+(-\d+)?")


def _entry_ids(ids: list[str]) -> list[str]:
    """Dead letter ids as given, each checked to be a stream id (`1700000000000-0`)."""
    bad = [i for i in ids if not _STREAM_ID.fullmatch(i)]
    if bad:
        raise CommandFailed(
            f"{', '.join(map(repr, bad))} is not a dead letter id (like 1700000000000-0; "
            "`orchestrator dlq list` shows them)",
            Exit.USAGE,
        )
    return ids


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _print_json(document: Any) -> int:
    """A read command's `--json`: one document on stdout (no colours, no wrapping)."""
    print(json.dumps(document, ensure_ascii=False, indent=2))
    return 0


def _portal_json(portal: Portal) -> dict[str, Any]:
    """A registry row without its token hash."""
    row = dataclasses.asdict(portal)
    del row["token_sha256"]
    return row


def _none_such(what: str, names: list[str]) -> CommandFailed:
    return CommandFailed(f"no {what} {', '.join(names)}", Exit.NOT_FOUND)


# --- dlq ---------------------------------------------------------------------------------------


async def run_dlq(args: argparse.Namespace, settings: Settings) -> int:
    """list | show | replay | purge."""
    client = _client(settings)
    try:
        dlq = DeadLetters(client, settings)
        action = args.dlq_command
        if action == "list":
            letters = await dlq.entries(args.limit)
            if _json(args):
                return _print_json([dataclasses.asdict(d) for d in letters])
            table = Table("entry id", "kind", "dialog", "ref", "attempts", "failed", "error")
            for d in letters:
                table.add_row(
                    d.entry_id,
                    d.kind,
                    f"{d.member_id}/{d.chat_id}",
                    d.ref,
                    str(d.attempts),
                    _when(d.failed_ms),
                    d.error[:60],
                )
            console.print(table)
            return 0
        if action == "show":
            letter = await dlq.get(_entry_ids([args.entry_id])[0])
            if letter is None:
                raise _none_such("dead letter", [args.entry_id])
            return _print_json(dataclasses.asdict(letter))
        ids = await _selected(dlq, args)
        # named ids are checked once each; `--all` just listed them, so none can be missing
        missing = [] if args.all else [i for i in ids if await dlq.get(i) is None]
        if action == "replay":
            done = [i for i in ids if i not in missing and await dlq.replay(i)]
            console.print(f"replayed {len(done)} of {len(ids)}")
        else:
            console.print(f"purged {await dlq.purge(None if args.all else ids)}")
        if missing:
            raise _none_such("dead letter", missing)
        return 0
    finally:
        await client.aclose()


async def _selected(dlq: DeadLetters, args: argparse.Namespace) -> list[str]:
    if args.all:
        return [d.entry_id for d in await dlq.entries(limit=1_000_000)]
    if not args.entry_ids:
        raise CommandFailed("name entry ids, or pass --all", Exit.USAGE)
    return _entry_ids(list(args.entry_ids))


def dlq_main(args: argparse.Namespace) -> int:
    """`orchestrator dlq ...`."""
    return _main(run_dlq, args)


# --- sessions ----------------------------------------------------------------------------------


async def run_sessions(args: argparse.Namespace, settings: Settings) -> int:
    """list | show."""
    client = _client(settings)
    try:
        store = Store(client, settings)
        as_json = getattr(args, "json", False)
        if args.sessions_command == "list":
            await sessions_list(store, args.member_id, args.limit, as_json)
        else:
            await session_show(store, args.member_id, args.chat_id, args.history, as_json)
        return 0
    finally:
        await client.aclose()


def sessions_main(args: argparse.Namespace) -> int:
    """`orchestrator sessions ...`."""
    return _main(run_sessions, args)


# --- portals -----------------------------------------------------------------------------------


async def run_portals(args: argparse.Namespace, settings: Settings) -> int:
    """list | add | remove."""
    client = _client(settings)
    try:
        portals = Portals(client, Keys(settings.key_prefix))
        if args.portals_command == "list":
            registered = await portals.all()
            if _json(args):
                return _print_json([_portal_json(p) for p in registered])
            table = Table("member id", "domain", "source", "client endpoint", "installed")
            for p in registered:
                table.add_row(
                    p.member_id, p.domain, p.source, p.client_endpoint, _when(p.installed_ms)
                )
            fit_ids(table, 2)
            console.print(table)
            return 0
        if args.portals_command == "add":
            await portals.register(
                args.member_id,
                args.domain,
                args.token,
                client_endpoint=args.client_endpoint,
                source="cli",
            )
            console.print(f"registered {args.member_id}")
            return 0
        if not await portals.remove(args.member_id):
            raise _none_such("portal", [args.member_id])
        console.print(f"removed {args.member_id}")
        return 0
    finally:
        await client.aclose()


def portals_main(args: argparse.Namespace) -> int:
    """`orchestrator portals ...`."""
    return _main(run_portals, args)


# --- redis -------------------------------------------------------------------------------------


async def run_redis(args: argparse.Namespace, settings: Settings) -> int:
    """status | ack-loss (orchestrator/pipeline/epoch.py)."""
    client = _client(settings)
    keys = Keys(settings.key_prefix)
    try:
        if args.redis_command == "ack-loss":
            loss = await acknowledge_loss(client, keys)
            if loss is None:
                console.print("no unacknowledged loss of Redis's data")
                return 1
            console.print(
                f"acknowledged the loss noticed {_when(loss.detected_ms)} by {loss.noticed_by}"
            )
            return 0
        epoch = await aw(client.get(keys.epoch))
        loss = await read_loss(client, keys)
        if _json(args):
            _print_json(
                {
                    "epoch": epoch.decode() if epoch else None,
                    "persistence": await persistence_mode(client),
                    "data_loss": dataclasses.asdict(loss) if loss is not None else None,
                }
            )
            return 0 if loss is None else 1
        table = Table("", "")
        table.add_row("epoch", epoch.decode() if epoch else "- (no process has started yet)")
        table.add_row("persistence", await persistence_mode(client))
        table.add_row(
            "data loss",
            "none unacknowledged"
            if loss is None
            else f"noticed {_when(loss.detected_ms)} by {loss.noticed_by} "
            f"(epoch {loss.previous_epoch} -> {loss.epoch}); `orchestrator redis ack-loss`",
        )
        console.print(table)
        return 0 if loss is None else 1
    finally:
        await client.aclose()


def redis_main(args: argparse.Namespace) -> int:
    """`orchestrator redis ...`."""
    return _main(run_redis, args)

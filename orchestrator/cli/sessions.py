"""`orchestrator sessions list|show`: the dialogs as the pipeline stored them.

Tables for people (ids never cut: a long member id wraps instead), `--json` for scripts: one JSON
document with the dialog state as an object, not a string inside a string.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import defaultdict
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from orchestrator.cli.failures import CommandFailed, Exit
from orchestrator.dialog.state import DialogState
from orchestrator.pipeline.keys import DialogKeys
from orchestrator.pipeline.records import StoredState
from orchestrator.pipeline.store import Store
from orchestrator.redis.client import aw

__all__ = ["console", "fit_ids", "session_show", "sessions_list"]

# Piped into a file or another program, a table is not cut to rich's 80-column default: ids
# and errors stay whole (a terminal, or COLUMNS, still sets the width).
console = Console(
    width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 240,
    soft_wrap=False,
)


def fit_ids(table: Table, ids: int) -> None:
    """The first `ids` columns wrap rather than lose characters; the others keep their width
    (set from what the table holds when this is called: call it after the rows)."""
    for index, column in enumerate(table.columns):
        if index < ids:
            column.overflow = "fold"
        else:
            cells = [len(str(c)) for c in column.cells]
            column.no_wrap = True
            column.min_width = max(len(str(column.header)), *cells, 1)


def _ago(unix_s: float | None) -> str:
    """How long ago, as people say it ("4m", "3h", "2d"); "-" for never."""
    if not unix_s:
        return "-"
    seconds = max(0.0, time.time() - unix_s)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _dialog_state(stored: StoredState) -> DialogState | None:
    """The machine's state, when the stored data is one (a test handler stores other things)."""
    if not stored.data:
        return None
    try:
        return DialogState.from_json(stored.data)
    except (ValidationError, ValueError):
        return None


async def _row(store: Store, d: DialogKeys) -> dict[str, Any]:
    """One dialog as `sessions list` shows it."""
    stored = await store.state(d)
    state = _dialog_state(stored)
    return {
        "member_id": d.member_id,
        "chat_id": d.chat_id,
        "status": state.status.value if state else None,
        "session_id": state.session_id if state else None,
        "line_id": state.line_id if state else None,
        "age": _ago(state.started_at if state else None),
        "updated": _ago(stored.updated_ms / 1000),
        "version": stored.version,
        "inbox": await aw(store.redis.llen(d.inbox)),
        "effects": await aw(store.redis.llen(d.outbox)),
    }


async def sessions_list(store: Store, member_id: str | None, limit: int, as_json: bool) -> None:
    """The dialogs in Redis (one portal's with `member_id`), at most `limit`."""
    pattern = re.compile(rf"^{re.escape(store.keys.prefix)}:\{{(.+)\}}:dlg:(.+):state$")
    rows: list[dict[str, Any]] = []
    async for raw in store.redis.scan_iter(match=store.keys.state_pattern(), count=1000):
        m = pattern.match(raw.decode())
        if m is None or (member_id and m.group(1) != member_id):
            continue
        rows.append(await _row(store, store.dialog(m.group(1), m.group(2))))
        if len(rows) >= limit:
            break
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(
        "member id", "chat id", "status", "session", "line", "age", "updated", "inbox", "effects"
    )
    for r in rows:
        table.add_row(
            r["member_id"],
            r["chat_id"],
            r["status"] or "-",
            str(r["session_id"] or "-"),
            str(r["line_id"] or "-"),
            r["age"],
            r["updated"],
            str(r["inbox"]),
            str(r["effects"]),
        )
    fit_ids(table, 1)
    console.print(table)


async def session_show(
    store: Store, member_id: str, chat_id: str, history: int, as_json: bool
) -> None:
    """One dialog: its state, its last `history` transitions, its pending effects by kind."""
    d = store.dialog(member_id, chat_id)
    stored = await store.state(d)
    if stored.version == 0 and not await aw(store.redis.exists(d.inbox)):
        raise CommandFailed(f"no dialog {member_id}/{chat_id}", Exit.NOT_FOUND)
    lease = await aw(store.redis.get(d.lease))
    state = _dialog_state(stored)
    pipeline = {
        "dialog": d.pending_member,
        "version": stored.version,
        "last_seq": stored.seq,
        "updated": _ago(stored.updated_ms / 1000),
        "inbox": await aw(store.redis.llen(d.inbox)),
        "lease": lease.decode() if lease else None,
        "scheduled": bool(await aw(store.redis.exists(d.sched))),
    }
    transitions = [json.loads(raw) for raw in await aw(store.redis.lrange(d.history, -history, -1))]
    effects = [(e.kind, e.effect_id, e.payload) for e in await store.pending_effects(d)]
    if as_json:
        document = {
            **pipeline,
            "state": _state_json(stored, state),
            "history": transitions,
            "pending_effects": [{"kind": k, "id": i, "payload": p} for k, i, p in effects],
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return
    console.print(_key_values(f"dialog {member_id}/{chat_id}", {**_summary(state), **pipeline}))
    table = Table("seq", "event", "event id", "outcome", "effects", "at", title="transitions")
    for rec in transitions:
        table.add_row(
            str(rec["seq"]),
            rec["event"],
            rec["event_id"],
            rec["outcome"],
            ", ".join(rec["effects"]),
            _ago(rec["at_ms"] / 1000),
        )
    console.print(table)
    console.print(_effects_by_kind(effects))


def _state_json(stored: StoredState, state: DialogState | None) -> Any:
    if state is not None:
        return state.model_dump(mode="json", by_alias=True)
    return stored.data.decode("utf-8", "replace") if stored.data else None


def _summary(state: DialogState | None) -> dict[str, Any]:
    """What an operator asks first about a dialog."""
    if state is None:
        return {}
    return {
        "status": state.status.value,
        "session": state.session_id,
        "line": state.line_id,
        "client": state.user_code or state.client_user_id,
        "operator": state.operator_id,
        "collected": ", ".join(f"{k}={v}" for k, v in state.data.model_dump().items() if v) or "-",
        "asking": state.asking,
        "started": _ago(state.started_at),
        "closed": _ago(state.closed_at) if state.closed_at else None,
        "rating": state.vote,
        "lead": state.lead_id,
        "failure": state.failure,
    }


def _key_values(title: str, values: dict[str, Any]) -> Table:
    table = Table("", "", title=title, show_header=False)
    for key, value in values.items():
        table.add_row(key, "-" if value is None else str(value))
    return table


def _effects_by_kind(effects: list[tuple[str, str, dict[str, Any]]]) -> Table:
    table = Table("kind", "pending", "effect ids", "first payload", title="pending effects")
    grouped: defaultdict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for kind, effect_id, payload in effects:
        grouped[kind].append((effect_id, payload))
    for kind, items in sorted(grouped.items()):
        text = json.dumps(items[0][1], ensure_ascii=False)
        table.add_row(
            kind,
            str(len(items)),
            "\n".join(i for i, _ in items),
            text if len(text) < 80 else text[:77] + "...",
        )
    return table

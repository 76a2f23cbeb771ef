"""The operator commands `dlq` and `sessions` read and change what the pipeline stored."""

from __future__ import annotations

import argparse
import json
import time

import pytest
import redis.asyncio as aioredis

from orchestrator.cli.admin import run_dlq, run_sessions
from orchestrator.cli.failures import CommandFailed, Exit
from orchestrator.dialog.state import DialogState, DialogStatus
from orchestrator.pipeline.dlq import DeadLetters
from orchestrator.pipeline.runner import Runner
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from tests.integration.recording import RecordingHandler

M = "m-admin"


def _ns(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**kw)


async def _dialog_with_a_dead_letter(
    redis: aioredis.Redis, settings: Settings, recording: RecordingHandler
) -> Store:
    store = Store(redis, settings)
    for n, text in enumerate(["hello", "poison", "bye"]):
        await store.ingest(
            M, "12", f"e{n}", "ONIMBOTMESSAGEADD", 1, {"data": {"PARAMS": {"MESSAGE": text}}}
        )
    runner = Runner(store, recording, settings, owner="test", backoff_base_s=0.001)
    assert await runner.drain(M, "12") == "done"
    return store


async def test_sessions_list_and_show_print_state_history_and_effects(
    redis: aioredis.Redis,
    fast_settings: Settings,
    recording: RecordingHandler,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`sessions list` names the dialog; `sessions show` prints its state and transitions as
    tables, and `--json` the same as one document."""
    await _dialog_with_a_dead_letter(redis, fast_settings, recording)
    assert (
        await run_sessions(_ns(sessions_command="list", member_id=M, limit=10), fast_settings) == 0
    )
    listed = capsys.readouterr().out
    assert M in listed
    assert "12" in listed
    show = _ns(sessions_command="show", member_id=M, chat_id="12", history=10)
    assert await run_sessions(show, fast_settings) == 0
    shown = capsys.readouterr().out
    assert "dialog m-admin/12" in shown
    assert "transitions" in shown
    assert "applied" in shown
    assert "dead" in shown
    show.json = True
    assert await run_sessions(show, fast_settings) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["version"] == 2  # two applied, one dead-lettered
    assert [t["outcome"] for t in document["history"]].count("applied") == 2
    with pytest.raises(CommandFailed, match="no dialog m-admin/404") as missing:
        await run_sessions(
            _ns(sessions_command="show", member_id=M, chat_id="404", history=10), fast_settings
        )
    assert missing.value.code == Exit.NOT_FOUND


async def test_sessions_of_the_machine_show_status_age_and_whole_ids(
    redis: aioredis.Redis,
    fast_settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dialog the production machine stored: `list` shows its status and session and the
    whole member id even in 80 columns; `show --json` has the state as an object."""
    member = "b24-" + "x" * 60  # longer than an 80-column table leaves a column
    state = DialogState(
        member_id=member,
        chat_id=77,
        session_id=5,
        line_id=1,
        status=DialogStatus.OPERATOR,
        started_at=time.time() - 300,
    )
    store = Store(redis, fast_settings)
    d = store.dialog(member, "77")
    await redis.hset(
        d.state,
        mapping={
            "data": state.to_json(),
            "seq": 3,
            "version": 3,
            "updated_ms": int(time.time() * 1000),
        },
    )
    monkeypatch.setenv("COLUMNS", "80")
    listing = _ns(sessions_command="list", member_id=member, limit=10)
    assert await run_sessions(listing, fast_settings) == 0
    listed = capsys.readouterr().out
    assert "operator" in listed
    assert "5m" in listed  # its age
    assert member in listed.replace("│", "").replace(" ", "").replace("\n", "")
    listing.json = True
    assert await run_sessions(listing, fast_settings) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["member_id"], row["status"], row["session_id"]) == (member, "operator", 5)
    show = _ns(sessions_command="show", member_id=member, chat_id="77", history=5, json=True)
    assert await run_sessions(show, fast_settings) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["state"]["status"] == "operator"  # an object, not JSON inside a string


async def test_dlq_list_show_and_purge(
    redis: aioredis.Redis,
    fast_settings: Settings,
    recording: RecordingHandler,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`dlq list` and `show` print the entry with its error; `purge --all` empties the DLQ."""
    await _dialog_with_a_dead_letter(redis, fast_settings, recording)
    dlq = DeadLetters(redis, fast_settings)
    [letter] = await dlq.entries()
    assert await run_dlq(_ns(dlq_command="list", limit=10), fast_settings) == 0
    assert letter.entry_id in capsys.readouterr().out
    assert await run_dlq(_ns(dlq_command="show", entry_id=letter.entry_id), fast_settings) == 0
    assert "poison event e1" in capsys.readouterr().out
    assert await run_dlq(_ns(dlq_command="purge", entry_ids=[], all=True), fast_settings) == 0
    assert await dlq.count() == 0

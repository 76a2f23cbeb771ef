"""The operator commands `dlq` and `sessions` read and change what the pipeline stored."""

from __future__ import annotations

import argparse

import pytest
import redis.asyncio as aioredis

from orchestrator.cli.admin import run_dlq, run_sessions
from orchestrator.cli.failures import CommandFailed, Exit
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
    """`sessions list` names the dialog; `sessions show` prints its state and transitions."""
    await _dialog_with_a_dead_letter(redis, fast_settings, recording)
    assert (
        await run_sessions(_ns(sessions_command="list", member_id=M, limit=10), fast_settings) == 0
    )
    listed = capsys.readouterr().out
    assert M in listed
    assert "12" in listed
    assert (
        await run_sessions(
            _ns(sessions_command="show", member_id=M, chat_id="12", history=10), fast_settings
        )
        == 0
    )
    shown = capsys.readouterr().out
    assert '"version": 2' in shown  # two applied, one dead-lettered
    assert "applied" in shown
    assert "dead" in shown
    with pytest.raises(CommandFailed, match="no dialog m-admin/404") as missing:
        await run_sessions(
            _ns(sessions_command="show", member_id=M, chat_id="404", history=10), fast_settings
        )
    assert missing.value.code == Exit.NOT_FOUND


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

"""The per-method operating-time budget: the client holds a method back instead of meeting 429."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from emulator.server import EmulatorConfig, run_emulator
from orchestrator.bitrix import metrics
from orchestrator.bitrix.client import BitrixClient
from orchestrator.settings import Settings
from tests.integration.client_support import method_counts, webhook_settings

SLOW = "user.get"


@pytest.fixture
async def slow_emulator() -> Any:
    """An emulator where each user.get costs 1 s of operating time out of a 5 s budget."""
    config = EmulatorConfig(operating_limit_s=5.0, method_exec_time={SLOW: 1.0})
    async with run_emulator(config) as emu:
        yield emu


@pytest.mark.parametrize("coalesce", [False, True])
async def test_client_holds_a_method_back_before_the_portal_blocks_it(
    slow_emulator: Any, settings: Settings, coalesce: bool
) -> None:
    """Ten concurrent slow calls: some pass, the rest wait for the budget; no 429 comes back."""
    creds = slow_emulator.credentials
    tuned = webhook_settings(settings, creds, b24_operating_limit_s=5.0)
    waits = metrics.THROTTLE_WAITS.labels(creds["member_id"], "operating")
    waits_before = waits._value.get()
    async with BitrixClient.from_settings(tuned, coalesce=coalesce) as client:
        tasks = [asyncio.create_task(client.call(SLOW, {})) for _ in range(10)]
        done, pending = await asyncio.wait(tasks, timeout=3.0)
        # Another method is not held by user.get's budget.
        await asyncio.wait_for(client.call("imopenlines.session.mode.pinAll"), 10)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    counts = await method_counts(slow_emulator.url, SLOW)
    assert counts["429"] == 0
    assert all(t.exception() is None for t in done)
    assert 1 <= len(done) <= 5  # at most 4.5 s of the 5 s budget is spent
    assert pending  # the rest are held until operating_reset_at, minutes away
    assert waits._value.get() > waits_before

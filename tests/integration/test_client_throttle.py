"""Unexpected throttles: the fleet backs off after a 503, and the calls (even writes) replay."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from emulator.server import EmulatorConfig, run_emulator
from orchestrator.bitrix import metrics
from orchestrator.bitrix.client import BitrixClient
from orchestrator.settings import Settings
from tests.integration.client_support import method_counts, webhook_settings


@pytest.fixture
async def small_bucket() -> Any:
    """A portal whose bucket is far smaller than the plan the client believes in."""
    async with run_emulator(EmulatorConfig(bucket_capacity=4, drain_per_s=4.0)) as emu:
        yield emu


async def test_503_penalizes_and_writes_are_replayed_once_each(
    small_bucket: Any, settings: Settings
) -> None:
    """Twenty concurrent lead creations over a too-small bucket: 503s, then every lead, once."""
    creds = small_bucket.credentials
    member = creds["member_id"]
    rejected = metrics.REJECTIONS.labels(member, "crm.lead.add", "503")
    retried = metrics.RETRIES.labels(member, "crm.lead.add", "rate_limited")
    before = (rejected._value.get(), retried._value.get())
    async with BitrixClient.from_settings(
        webhook_settings(settings, creds), coalesce=False
    ) as client:
        ids = await asyncio.gather(
            *[client.call("crm.lead.add", {"fields": {"TITLE": f"lead {i}"}}) for i in range(20)]
        )
        listed = await client.call("crm.lead.list", {})
    assert len({int(env.result) for env in ids}) == 20
    assert listed.total == 20  # no lead was created twice
    counts = await method_counts(small_bucket.url, "crm.lead.add")
    assert counts["503"] > 0
    assert counts["calls"] - counts["503"] == 20
    assert rejected._value.get() > before[0]
    assert retried._value.get() > before[1]


async def test_unexpected_429_holds_the_method_fleet_wide(settings: Settings) -> None:
    """After a 429 the method waits for its window instead of hammering the portal."""
    config = EmulatorConfig(operating_limit_s=1.0, method_exec_time={"user.get": 2.0})
    async with run_emulator(config) as emu:
        creds = emu.credentials
        # The client believes in a far larger budget, so only the portal's 429 can stop it.
        tuned = webhook_settings(settings, creds, b24_operating_limit_s=480.0)
        async with BitrixClient.from_settings(tuned, coalesce=False) as client:
            await client.call("user.get", {})
            blocked = asyncio.create_task(client.call("user.get", {}))
            await asyncio.sleep(1.5)
            assert not blocked.done()
            blocked.cancel()
            await asyncio.gather(blocked, return_exceptions=True)
        counts = await method_counts(emu.url, "user.get")
    assert counts["429"] == 1

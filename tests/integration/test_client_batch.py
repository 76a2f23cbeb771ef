"""Batching against the emulator: explicit batches and coalesced concurrent calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.bitrix.client import BitrixClient
from orchestrator.errors import MethodError, PortalError
from orchestrator.settings import Settings
from tests.integration.client_support import control, webhook_settings


async def test_explicit_batch_returns_results_errors_and_references(
    emulator: Any, settings: Settings
) -> None:
    """One batch: per-command results, a per-command error, total kept, a $result reference."""
    async with BitrixClient.from_settings(webhook_settings(settings, emulator.credentials)) as c:
        before = (await control(emulator.url, "GET", "counters"))["requests"]
        out = await c.batch(
            {
                "users": ("user.get", {}),
                "lead": ("crm.lead.add", {"fields": {"TITLE": "from batch"}}),
                "again": ("crm.lead.get", {"id": "$result[lead]"}),
                "bad": ("imopenlines.dialog.get", {"CHAT_ID": 999999}),
            }
        )
        after = (await control(emulator.url, "GET", "counters"))["requests"]
    assert after - before == 1
    assert isinstance(out["users"], list)
    assert out.envelope("users").total == len(out["users"])
    lead_id = int(out["lead"])
    assert int(out["again"]["ID"]) == lead_id
    assert "bad" in out.errors
    with pytest.raises(PortalError):
        out["bad"]
    assert not out.ok


async def test_halt_stops_the_batch_at_the_first_error(emulator: Any, settings: Settings) -> None:
    """With halt, commands after a failed one are reported as not executed."""
    async with BitrixClient.from_settings(webhook_settings(settings, emulator.credentials)) as c:
        out = await c.batch(
            {
                "bad": ("imopenlines.dialog.get", {"CHAT_ID": 999999}),
                "later": ("user.get", {}),
            },
            halt=True,
        )
    assert "bad" in out.errors
    with pytest.raises(MethodError):
        out["later"]


async def test_concurrent_calls_coalesce_into_batches_with_own_results(
    emulator: Any, settings: Settings
) -> None:
    """60 concurrent calls leave as a few requests; each caller gets its own result or error."""
    # A bucket of one request per second: while the sender waits for its slot, the queue fills.
    tight = webhook_settings(
        settings,
        emulator.credentials,
        b24_bucket_capacity=6,
        b24_burst_margin=5,
        b24_drain_per_s=1.0,
    )
    async with BitrixClient.from_settings(tight) as c:
        before = (await control(emulator.url, "GET", "counters"))["requests"]
        calls = [c.call("user.get", {"FILTER": {"ID": 1 + i % 3}}) for i in range(50)]
        calls += [c.call("imopenlines.dialog.get", {"CHAT_ID": 900000 + i}) for i in range(10)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        after = (await control(emulator.url, "GET", "counters"))["requests"]
    users, bad = results[:50], results[50:]
    for i, env in enumerate(users):
        assert not isinstance(env, BaseException), env
        assert [int(u["ID"]) for u in env.result] == [1 + i % 3]
        assert env.total == 1  # the list call's total survives the batch
    assert all(isinstance(e, PortalError) for e in bad)
    assert after - before <= 6  # 60 calls in a handful of requests, not 60


async def test_a_lone_call_goes_out_alone(emulator: Any, settings: Settings) -> None:
    """With no backlog a call is sent as itself, not wrapped in a batch."""
    async with BitrixClient.from_settings(webhook_settings(settings, emulator.credentials)) as c:
        await c.call("user.get", {})
    methods = (await control(emulator.url, "GET", "counters"))["methods"]
    assert methods["user.get"]["calls"] == 1
    assert methods.get("batch", {}).get("calls", 0) == 0


async def test_full_explicit_batch_of_one_method(emulator: Any, settings: Settings) -> None:
    """Fifty commands of one (not yet measured) method go out together as one request."""
    async with BitrixClient.from_settings(webhook_settings(settings, emulator.credentials)) as c:
        out = await c.batch({f"u{i}": ("user.get", {"FILTER": {"ID": 1}}) for i in range(50)})
    assert out.ok
    assert all(int(out[f"u{i}"][0]["ID"]) == 1 for i in range(50))
    counters = await control(emulator.url, "GET", "counters")
    assert counters["requests"] == 1
    assert counters["methods"]["user.get"]["calls"] == 50

"""Retries by idempotency against the emulator's faults: writes are never replayed blindly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.bitrix.client import BitrixClient
from orchestrator.errors import OutcomeUnknown, ServerError, TransportError
from orchestrator.settings import Settings
from tests.integration.client_support import control, method_counts, webhook_settings

WRITE = "imbot.message.add"


@pytest.mark.parametrize(
    "fault",
    [{"timeout_rate": {WRITE: 1.0}}, {"error_rate": {WRITE: 1.0}}, {"html_rate": {WRITE: 1.0}}],
)
@pytest.mark.parametrize("coalesce", [False, True])
async def test_failed_write_is_outcome_unknown_and_sent_once(
    emulator: Any, settings: Settings, fault: dict[str, Any], coalesce: bool
) -> None:
    """A timeout/500/HTML page on imbot.message.add gives OutcomeUnknown after exactly one call."""
    await control(emulator.url, "POST", "faults", fault)
    tuned = webhook_settings(
        settings, emulator.credentials, b24_request_timeout_s=1.0, b24_bot_client_id="somebot"
    )
    async with BitrixClient.from_settings(tuned, coalesce=coalesce) as client:
        params = {"DIALOG_ID": "1", "MESSAGE": "hello", "CLIENT_ID": "somebot"}
        with pytest.raises(OutcomeUnknown) as caught:
            await client.call(WRITE, params)
    assert caught.value.method == WRITE
    assert caught.value.params == params
    assert isinstance(caught.value.cause, TransportError | ServerError)
    assert (await method_counts(emulator.url, WRITE))["calls"] == 1


async def test_coalesced_write_in_a_failed_batch_is_outcome_unknown(
    emulator: Any, settings: Settings
) -> None:
    """A write riding in a batch whose request fails is OutcomeUnknown; the reads retry."""
    await control(emulator.url, "POST", "faults", {"html_rate": {"batch": 1.0}})
    async with BitrixClient.from_settings(
        webhook_settings(settings, emulator.credentials, b24_max_retries=2)
    ) as client:
        write = client.call(WRITE, {"DIALOG_ID": "1", "MESSAGE": "x", "CLIENT_ID": "b"})
        reads = [client.call("user.get", {}) for _ in range(5)]
        results = await asyncio.gather(write, *reads, return_exceptions=True)
    assert isinstance(results[0], OutcomeUnknown)
    assert (await method_counts(emulator.url, WRITE))["calls"] <= 1


async def test_reads_are_retried_after_transient_errors(emulator: Any, settings: Settings) -> None:
    """A read hit by 500s is retried with backoff until it succeeds."""
    await control(emulator.url, "POST", "faults", {"error_rate": {"user.get": 0.5}, "seed": 3})
    async with BitrixClient.from_settings(
        webhook_settings(settings, emulator.credentials, b24_max_retries=8), coalesce=False
    ) as client:
        results = [await client.call("user.get", {}) for _ in range(6)]
    assert all(isinstance(r.result, list) for r in results)
    counts = await method_counts(emulator.url, "user.get")
    assert counts["errors"] > 0
    assert counts["calls"] == 6 + counts["errors"]

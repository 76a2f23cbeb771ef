"""The write fence end to end: a drainer whose lease went while its effect was under way sends
no write, so a second drainer running the same effect cannot double it on the portal.

The effect here creates a lead through the production REST client on the emulated portal; the
test takes the dialog's lease away after the effect began and before its write leaves. The
portal's own journal must then show no lead; with the lease left alone, the same run makes one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from orchestrator.bitrix.client import BitrixClient
from orchestrator.pipeline.records import EffectRecord, StoredEvent
from orchestrator.pipeline.runner import Decision, DrainOutcome, FollowUp, Runner
from orchestrator.pipeline.store import Store
from orchestrator.settings import Settings
from tests.integration.client_support import oauth_client


class LateWriter:
    """One event, one effect: `before_write` runs inside the effect, then a crm.lead.add."""

    def __init__(
        self, client: BitrixClient, member_id: str, before_write: Callable[[], Awaitable[None]]
    ) -> None:
        self.client, self.member_id, self.before_write = client, member_id, before_write

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        return Decision(b"{}", [EffectRecord(f"{event.chat_id}:{event.seq}:lead", "lead", {})])

    async def execute(self, effect: EffectRecord) -> Sequence[FollowUp] | None:
        await self.before_write()  # e.g. a long wait for the limiter, past the lease
        await self.client.call(
            "crm.lead.add", {"fields": {"TITLE": "fenced?"}}, member_id=self.member_id
        )
        return None


@pytest.fixture
async def client(fast_settings: Settings, emulator: Any) -> AsyncIterator[BitrixClient]:
    bitrix = await oauth_client(fast_settings, emulator.credentials)
    yield bitrix
    await bitrix.close()


async def _drain_once(
    redis: aioredis.Redis,
    settings: Settings,
    client: BitrixClient,
    emulator: Any,
    *,
    steal: bool,
) -> DrainOutcome:
    store = Store(redis, settings)
    member = emulator.credentials["member_id"]
    await store.ingest(member, "7", "ev-7-1", "ONIMBOTMESSAGEADD", 1, {})
    d = store.dialog(member, "7")

    async def lease_taken_meanwhile() -> None:
        if steal:  # our lease expired; another drainer took the dialog
            await redis.delete(d.lease)
            assert await store.take_lease(d, "another-worker") is not None

    runner = Runner(store, LateWriter(client, member, lease_taken_meanwhile), settings, owner="w")
    return await runner.drain(member, "7")


def _leads(emulator: Any) -> int:
    return len(emulator.portals[0].journal.entries("lead_created"))


async def test_a_write_after_the_lease_went_is_not_sent(
    redis: aioredis.Redis, fast_settings: Settings, client: BitrixClient, emulator: Any
) -> None:
    outcome = await _drain_once(redis, fast_settings, client, emulator, steal=True)
    assert outcome is DrainOutcome.LOST
    assert _leads(emulator) == 0
    calls = emulator.portals[0].method_counters.get("crm.lead.add", {}).get("calls", 0)
    assert calls == 0


async def test_the_same_write_with_the_lease_kept_is_sent(
    redis: aioredis.Redis, fast_settings: Settings, client: BitrixClient, emulator: Any
) -> None:
    outcome = await _drain_once(redis, fast_settings, client, emulator, steal=False)
    assert outcome is DrainOutcome.DONE
    assert _leads(emulator) == 1

"""Helpers for the journal and lost-answer tests: an emulator with a local event receiver, and
small readers of `GET /_emulator/journal` and the REST surface."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from tests.event_receiver import event_receiver


@asynccontextmanager
async def emulator_with_receiver(**config: Any) -> AsyncIterator[RunningEmulator]:
    """An emulator (frozen clock, a roomy bucket) whose events go to a local 200-answering
    receiver, so the seeded open-line bot and the event bindings exist."""
    async with event_receiver() as receiver:
        settings = {
            "event_url": receiver.url,
            "frozen_clock": True,
            "bucket_capacity": 1000,
            **config,
        }
        async with run_emulator(EmulatorConfig(**settings)) as emu:
            yield emu


async def journal(http: aiohttp.ClientSession, emu: RunningEmulator, **query: Any) -> Any:
    """GET /_emulator/journal with `since`/`limit`; the decoded answer."""
    params = {k: str(v) for k, v in query.items()}
    async with http.get(f"{emu.url}/_emulator/journal", params=params) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def entries(
    http: aiohttp.ClientSession, emu: RunningEmulator, kind: str | None = None
) -> list[dict[str, Any]]:
    """Every journal entry (or those of one kind)."""
    body = await journal(http, emu)
    return [e for e in body["entries"] if kind is None or e["kind"] == kind]


async def control(
    http: aiohttp.ClientSession, emu: RunningEmulator, route: str, body: dict[str, Any]
) -> Any:
    """POST a control route that must succeed; its answer."""
    async with http.post(f"{emu.url}/_emulator/{route}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def rest(
    http: aiohttp.ClientSession,
    emu: RunningEmulator,
    method: str,
    body: dict[str, Any],
    *,
    oauth: bool = False,
) -> tuple[int, Any]:
    """A REST call through the seeded webhook, or as the app (`oauth`: the install token)."""
    if oauth:
        url = f"{emu.url}/rest/{method}"
        headers = {"Authorization": f"Bearer {emu.credentials['access_token']}"}
    else:
        url, headers = f"{emu.credentials['webhook_url']}{method}", {}
    async with http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)

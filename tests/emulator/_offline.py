"""Helpers for the offline-event, feature and line-config tests: an emulator whose events go to
a local receiver that records every POST, REST calls with the app's OAuth token (and an
optional `auth_connector`), and the control-API steps that open and close a dialog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from tests.emulator._platform import call
from tests.event_receiver import Receiver, event_receiver

USER_CODE = "livechat|1|77|88"
OPERATOR = 2  # a seeded operator of line 1


@asynccontextmanager
async def emulator_and_receiver(**config: Any) -> AsyncIterator[tuple[RunningEmulator, Receiver]]:
    """A seeded emulator (frozen clock, roomy bucket) posting its events to a receiver."""
    async with event_receiver() as receiver:
        settings = {
            "event_url": receiver.url,
            "frozen_clock": True,
            "bucket_capacity": 1000,
            "token_ttl_s": 1e9,  # the tests move the clock by days
            **config,
        }
        async with run_emulator(EmulatorConfig(**settings)) as emu:
            await emu.settle()  # ONAPPINSTALL
            yield emu, receiver


async def rest(
    http: aiohttp.ClientSession,
    emu: RunningEmulator,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    connector: str | None = None,
) -> tuple[int, Any]:
    """Call a REST method with the app's OAuth token (the admin's by default)."""
    body = dict(params or {})
    body["auth"] = token or emu.credentials["access_token"]
    if connector is not None:
        body["auth_connector"] = connector
    return await call(http, f"{emu.url}/rest/{method}", json=body)


async def ok(
    http: aiohttp.ClientSession,
    emu: RunningEmulator,
    method: str,
    params: dict[str, Any] | None = None,
    **kw: Any,
) -> Any:
    """A REST call that must succeed; its `result`."""
    status, body = await rest(http, emu, method, params, **kw)
    assert status == 200, body
    return body["result"]


async def control(
    http: aiohttp.ClientSession, emu: RunningEmulator, route: str, body: dict[str, Any]
) -> Any:
    async with http.post(f"{emu.url}/_emulator/{route}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def token_of(emu: RunningEmulator, user_id: int) -> str:
    """An access token of the app for another user (e.g. an operator, not an admin)."""
    return emu.portals[0].tokens.issue_pair(user_id).access_token


async def client_writes(
    http: aiohttp.ClientSession, emu: RunningEmulator, text: str = "Hi", user_code: str = USER_CODE
) -> dict[str, Any]:
    return await control(
        http, emu, "client-message", {"line_id": 1, "text": text, "user_code": user_code}
    )


async def close_dialog(http: aiohttp.ClientSession, emu: RunningEmulator, chat_id: int) -> None:
    """An operator takes and finishes the dialog; the client's vote closes it."""
    await control(http, emu, "operator-answer", {"chat_id": chat_id, "user_id": OPERATOR})
    await control(http, emu, "operator-finish", {"chat_id": chat_id, "user_id": OPERATOR})
    await control(http, emu, "client-vote", {"chat_id": chat_id, "vote": "like"})


def journal(emu: RunningEmulator, kind: str) -> list[dict[str, Any]]:
    return emu.portals[0].journal.entries(kind)

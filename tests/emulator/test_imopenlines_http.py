"""The portal domain behind the real platform: REST calls through `/rest/...`, the control API
under `/_emulator/...` and events POSTed form-encoded to a local receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator


class Receiver:
    """A local HTTP endpoint that keeps the form bodies of the events it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, str]] = []
        self.url = ""

    def events(self, name: str) -> list[dict[str, str]]:
        return [b for b in self.bodies if b.get("event") == name]


@pytest.fixture
async def running() -> AsyncIterator[tuple[RunningEmulator, Receiver]]:
    receiver = Receiver()

    async def handle(request: web.Request) -> web.Response:
        receiver.bodies.append({k: str(v) for k, v in (await request.post()).items()})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/events"
    try:
        async with run_emulator(
            EmulatorConfig(event_url=receiver.url, bucket_capacity=1000)
        ) as emu:
            yield emu, receiver
    finally:
        await runner.cleanup()


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def _control(
    http: aiohttp.ClientSession, emu: RunningEmulator, route: str, body: dict[str, Any]
) -> Any:
    status, answer = await _post(http, f"{emu.url}/_emulator/{route}", body)
    assert status == 200, answer
    return answer


async def test_full_dialog_over_http(running: tuple[RunningEmulator, Receiver]) -> None:
    """Client, bot hand-over by REST, operator, finish and vote end closed, history in the state."""
    emu, _ = running
    hook = emu.credentials["webhook_url"]
    async with aiohttp.ClientSession() as http:
        first = await _control(http, emu, "client-message", {"line_id": 1, "text": "Hello"})
        status, body = await _post(
            http, f"{hook}imopenlines.bot.session.operator.json", {"chat_id": first["chat_id"]}
        )
        assert (status, body["result"]) == (200, True)
        for route, extra in (
            ("operator-answer", {}),
            ("operator-message", {"text": "Hi"}),
            ("operator-finish", {}),
        ):
            await _control(http, emu, route, {"chat_id": first["chat_id"], "user_id": 2, **extra})
        await _control(http, emu, "client-vote", {"chat_id": first["chat_id"], "vote": "like"})
        async with http.get(f"{emu.url}/_emulator/state") as resp:
            state = await resp.json()
    session = next(s for s in state["sessions"] if s["id"] == first["session_id"])
    assert [h["status"] for h in session["history"]] == [0, 20, 5, 10, 40, 50, 60]


async def test_events_arrive_form_encoded(running: tuple[RunningEmulator, Receiver]) -> None:
    """The welcome bot's ONIMBOTMESSAGEADD arrives with PHP-bracket keys and the app token."""
    emu, receiver = running
    async with aiohttp.ClientSession() as http:
        first = await _control(http, emu, "client-message", {"line_id": 1, "text": "Need help"})
    await emu.settle()
    (body,) = receiver.events("ONIMBOTMESSAGEADD")
    bot_id = emu.portals[0].portal.lines[1].welcome_bot_id
    assert body[f"data[BOT][{bot_id}][BOT_CODE]"] == "support_bot"
    assert body[f"data[BOT][{bot_id}][access_token]"]
    assert body["data[PARAMS][MESSAGE]"] == "Need help"
    assert body["data[PARAMS][DIALOG_ID]"] == f"chat{first['chat_id']}"
    assert body["auth[application_token]"] == emu.credentials["application_token"]
    assert receiver.events("ONSESSIONSTART")[0]["data[DATA][line][name]"] == "Support"


async def test_bot_replies_with_the_apps_token(running: tuple[RunningEmulator, Receiver]) -> None:
    """The app posts as its bot (lower-case keys); the webhook owner meets the lead quirk."""
    emu, _ = running
    creds = emu.credentials
    async with aiohttp.ClientSession() as http:
        first = await _control(http, emu, "client-message", {"line_id": 1, "text": "Hello"})
        status, body = await _post(
            http,
            f"{emu.url}/rest/imbot.message.add",
            {
                "auth": creds["access_token"],
                "dialog_id": f"chat{first['chat_id']}",
                "message": "Hi!",
            },
        )
        assert status == 200
        assert isinstance(body["result"], int)
        status, body = await _post(
            http,
            f"{creds['webhook_url']}imopenlines.crm.lead.create",
            {"CHAT_ID": first["chat_id"]},
        )
        assert (status, body["error"]) == (400, "ERROR_USER_NOT_OPERATOR")
        status, body = await _post(
            http,
            f"{creds['webhook_url']}event.bind",
            {"event": "ONSESSIONSTART", "handler": "http://x.test/"},
        )
        assert (status, body["error"]) == (403, "WRONG_AUTH_TYPE")
        status, body = await _post(http, f"{creds['webhook_url']}user.get", {})
        assert status == 200
        assert body["total"] == len(body["result"]) == 5

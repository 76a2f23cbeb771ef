"""Event delivery as a receiver sees it (docs/bitrix24.md §8): one form-encoded POST per event,
PHP http_build_query keys, strings only, no retries; ONAPPINSTALL on start and on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web

from emulator.delivery import EventDelivery
from emulator.server import EmulatorConfig, run_emulator
from emulator.transport import http_build_query
from tests.emulator._platform import ECHO, call, control, platform_methods


@dataclass
class Receiver:
    """A tiny event handler on port 0 that records every POST it gets."""

    url: str = ""
    status: int = 200
    bodies: list[dict[str, str]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        raw = (await request.read()).decode()
        rec.content_types.append(request.content_type)
        rec.bodies.append(dict(parse_qsl(raw, keep_blank_values=True)))
        return web.Response(status=rec.status, text="ok")

    app = web.Application()
    app.router.add_post("/events", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/events"
    yield rec
    await runner.cleanup()


def test_http_build_query_matches_php() -> None:
    """true->1, false->0, None and empty arrays vanish, lists get indexes, floats print short."""
    query = http_build_query(
        {
            "a": True,
            "b": False,
            "c": None,
            "d": [],
            "e": [5, "x"],
            "f": 1.0,
            "g": 0.5,
            "h": {"i": {"j": "k l"}},
        }
    )
    assert query == ("a=1&b=0&e%5B0%5D=5&e%5B1%5D=x&f=1&g=0.5&h%5Bi%5D%5Bj%5D=k+l")


async def test_event_arrives_form_encoded_with_nested_keys(receiver: Receiver) -> None:
    """The receiver gets one urlencoded POST whose flat keys are PHP brackets, all strings."""
    delivery = EventDelivery()
    await delivery.start()
    try:
        payload = {
            "event": "ONIMBOTMESSAGEADD",
            "event_handler_id": 7,
            "ts": 1767225600,
            "data": {
                "PARAMS": {
                    "MESSAGE": "Hi & bye",
                    "CHAT_ID": 12,
                    "FLAG": True,
                    "NONE": None,
                    "EMPTY": [],
                },
                "BOT": {"501": {"BOT_ID": 501}},
            },
            "auth": {"application_token": "tok", "member_id": "m1"},
        }
        delivery.sink("m1").post(receiver.url, payload)
        await delivery.settle()
    finally:
        await delivery.close()
    assert receiver.content_types == ["application/x-www-form-urlencoded"]
    assert receiver.bodies == [
        {
            "event": "ONIMBOTMESSAGEADD",
            "event_handler_id": "7",
            "ts": "1767225600",
            "data[PARAMS][MESSAGE]": "Hi & bye",
            "data[PARAMS][CHAT_ID]": "12",
            "data[PARAMS][FLAG]": "1",
            "data[BOT][501][BOT_ID]": "501",
            "auth[application_token]": "tok",
            "auth[member_id]": "m1",
        }
    ]
    assert delivery.log("m1")[0]["status"] == 200


async def test_failed_delivery_is_not_retried(receiver: Receiver) -> None:
    """A 500 from the handler, or a refused connection, is recorded once and dropped."""
    receiver.status = 500
    delivery = EventDelivery()
    await delivery.start()
    try:
        sink = delivery.sink("m1")
        sink.post(receiver.url, {"event": "A", "data": {}})
        sink.post("http://127.0.0.1:9/nowhere", {"event": "B", "data": {}})
        sink.post(receiver.url, {"event": "C", "data": {}})
        await delivery.settle()
    finally:
        await delivery.close()
    assert [b["event"] for b in receiver.bodies] == ["A", "C"]
    log = delivery.log()
    assert [(e["event"], e["status"]) for e in log] == [("A", 500), ("B", None), ("C", 500)]
    assert log[1]["error"]


async def test_onappinstall_is_posted_on_start_with_working_tokens(receiver: Receiver) -> None:
    """With event_url set, ONAPPINSTALL carries VERSION/ACTIVE/INSTALLED/LANGUAGE_ID and an
    auth block whose access token calls REST and whose application_token is the portal's."""
    with platform_methods():
        config = EmulatorConfig(frozen_clock=True, event_url=receiver.url)
        async with run_emulator(config) as emu, aiohttp.ClientSession() as http:
            await emu.settle()
            installs = [b for b in receiver.bodies if b["event"] == "ONAPPINSTALL"]
            assert len(installs) == 1
            body = installs[0]
            for key in ("VERSION", "ACTIVE", "INSTALLED", "LANGUAGE_ID"):
                assert f"data[{key}]" in body
            assert body["data[ACTIVE]"] == "Y"
            assert body["data[INSTALLED]"] == "Y"
            creds = emu.credentials
            for key in (
                "access_token",
                "refresh_token",
                "expires",
                "expires_in",
                "scope",
                "domain",
                "server_endpoint",
                "client_endpoint",
                "member_id",
                "user_id",
                "status",
                "application_token",
            ):
                assert f"auth[{key}]" in body, key
            assert body["auth[application_token]"] == creds["application_token"]
            assert body["auth[member_id]"] == creds["member_id"]
            status, _ = await call(
                http,
                body["auth[client_endpoint]"] + ECHO,
                json={"auth": body["auth[access_token]"]},
            )
            assert status == 200


async def test_install_route_resends_onappinstall_with_a_fresh_pair(receiver: Receiver) -> None:
    """POST /_emulator/install {"url"} posts ONAPPINSTALL there with a new token pair."""
    with platform_methods():
        async with (
            run_emulator(EmulatorConfig(frozen_clock=True)) as emu,
            aiohttp.ClientSession() as http,
        ):
            old = emu.credentials["access_token"]
            status, answer = await control(http, emu.url, "install", {"url": receiver.url})
            assert status == 200
            assert answer["queued"] is True
            await emu.settle()
            assert [b["event"] for b in receiver.bodies] == ["ONAPPINSTALL"]
            token = receiver.bodies[0]["auth[access_token]"]
            assert token != old
            assert token == emu.credentials["access_token"]
            _, state = await control(http, emu.url, "state", verb="GET")
            assert state["deliveries"][-1]["event"] == "ONAPPINSTALL"
            assert state["deliveries"][-1]["status"] == 200
            status, _ = await control(http, emu.url, "install", {})
            assert status == 400

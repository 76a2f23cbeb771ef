"""`--public-url` and the fixed credentials: an emulator behind another address (a compose service
name, a published port) hands out URLs its clients can reach, and credentials an orchestrator
was configured with before the emulator started."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator.cli import config_from_args
from emulator.runtime import Emulator, EmulatorConfig
from emulator.server import run_emulator
from orchestrator.cli import build_parser
from orchestrator.events.formdata import decode_form

MEMBER_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
APP_TOKEN = "fixed-application-token"
CLIENT_ID = "local.fixed0client.0001"
CLIENT_SECRET = "fixed-client-secret"
WEBHOOK_CODE = "fixedwebhook42"


class Receiver:
    """The app's event handler: records every POST it gets."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.events.append(decode_form(await request.read(), request.content_type))
        self.arrived.set()
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/events", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield recv, f"http://127.0.0.1:{runner.addresses[0][1]}/events"
    finally:
        await runner.cleanup()


async def _printed(stdout: asyncio.StreamReader) -> dict[str, Any]:
    """The JSON block the command prints once it serves."""
    lines: list[str] = []
    while not lines or lines[-1] != "}\n":
        line = (await asyncio.wait_for(stdout.readline(), 30)).decode()
        assert line, "emulator exited before printing its credentials"
        if lines or line == "{\n":
            lines.append(line)
    printed: dict[str, Any] = json.loads("".join(lines))
    return printed


async def test_cli_hands_out_its_public_url_and_fixed_credentials(
    receiver: tuple[Receiver, str],
) -> None:
    """Bound to a random port, announced as another (a port mapping): ONAPPINSTALL, the printed
    credentials and the OAuth answers carry the public URL and the fixed credentials; an option
    wins over its EMULATOR_* variable."""
    recv, event_url = receiver
    # A port held (not served) by the test: the emulator cannot bind it, so its public URL can
    # only come from --public-url, never from the address it listens on.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        public = f"http://127.0.0.1:{reserved.getsockname()[1]}"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "EMULATOR_MEMBER_ID": MEMBER_ID,
            "EMULATOR_APPLICATION_TOKEN": APP_TOKEN,
            "EMULATOR_CLIENT_ID": CLIENT_ID,
            "EMULATOR_CLIENT_SECRET": "loses-to-the-option",
            "EMULATOR_WEBHOOK_CODE": WEBHOOK_CODE,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orchestrator.cli",
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--public-url",
            public + "/",
            "--client-secret",
            CLIENT_SECRET,
            "--event-url",
            event_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        try:
            assert proc.stdout is not None
            printed = await _printed(proc.stdout)
            await asyncio.wait_for(recv.arrived.wait(), 30)
            async with aiohttp.ClientSession() as http:
                refresh = {
                    "grant_type": "refresh_token",
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "refresh_token": recv.events[0]["auth"]["refresh_token"],
                }
                token_url = f"{printed['listen']}/oauth/token/"
                async with http.post(token_url, data=refresh) as response:
                    refreshed = (response.status, await response.json())
                stale = {**refresh, "client_secret": "loses-to-the-option"}
                async with http.post(token_url, data=stale) as response:
                    refused = (response.status, await response.json())
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    assert printed["url"] == public
    assert printed["listen"] != public
    assert printed["webhook_url"] == f"{public}/rest/1/{WEBHOOK_CODE}/"
    assert printed["oauth_token_url"] == f"{public}/oauth/token/"
    assert printed["client_endpoint"] == f"{public}/rest/"
    assert (printed["member_id"], printed["application_token"]) == (MEMBER_ID, APP_TOKEN)
    assert (printed["client_id"], printed["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)

    [install] = recv.events
    assert install["event"] == "ONAPPINSTALL"
    auth = install["auth"]
    assert auth["client_endpoint"] == f"{public}/rest/"
    assert auth["server_endpoint"] == f"{public}/rest/"
    assert auth["domain"] == public.removeprefix("http://")
    assert auth["member_id"] == MEMBER_ID
    assert auth["application_token"] == APP_TOKEN

    status, answer = refreshed
    assert status == 200, answer
    assert answer["member_id"] == MEMBER_ID
    assert answer["client_endpoint"] == answer["server_endpoint"] == f"{public}/rest/"
    assert refused[0] == 401
    assert refused[1]["error"] == "invalid_client"


async def test_without_public_url_the_urls_name_the_bound_address() -> None:
    """The default stays what it was: http://HOST:PORT, and the credentials are random."""
    async with run_emulator(EmulatorConfig()) as first, run_emulator(EmulatorConfig()) as second:
        assert first.url == first.listen_url
        creds = first.credentials
        assert creds["client_endpoint"] == f"{first.listen_url}/rest/"
        assert creds["webhook_url"].startswith(f"{first.listen_url}/rest/1/")
        other = second.credentials
        for key in ("member_id", "application_token", "client_id", "client_secret"):
            assert creds[key] != other[key], key
        assert creds["webhook_url"].rsplit("/", 2)[-2] != other["webhook_url"].rsplit("/", 2)[-2]


async def test_public_url_reaches_the_portals_own_events(receiver: tuple[Receiver, str]) -> None:
    """Events the portal raises later (a client writes to the bot) carry the public endpoint."""
    recv, event_url = receiver
    config = EmulatorConfig(public_url="http://emulator:8090", event_url=event_url)
    async with run_emulator(config) as emu, aiohttp.ClientSession() as http:
        await emu.settle()
        body = {"line_id": 1, "text": "Hi"}
        async with http.post(f"{emu.listen_url}/_emulator/client-message", json=body) as response:
            assert response.status == 200
        await emu.settle()
    names = [event["event"] for event in recv.events]
    assert names[0] == "ONAPPINSTALL"
    assert "ONIMBOTMESSAGEADD" in names
    for event in recv.events:
        assert event["auth"]["client_endpoint"] == "http://emulator:8090/rest/", event["event"]
        assert event["auth"]["domain"] == "emulator:8090", event["event"]


def test_fixed_credentials_name_one_portal() -> None:
    """A fixed identity on several portals would make them one; a fixed app needs shared_app."""
    with pytest.raises(ValueError, match="one portal"):
        Emulator(EmulatorConfig(portals=2, member_id=MEMBER_ID))
    with pytest.raises(ValueError, match="shared_app"):
        Emulator(EmulatorConfig(portals=2, client_id=CLIENT_ID))
    with pytest.raises(ValueError, match="public_url"):
        Emulator(EmulatorConfig(public_url="emulator:8090"))


async def test_a_fixed_shared_app_serves_every_portal() -> None:
    config = EmulatorConfig(portals=2, shared_app=True, client_id=CLIENT_ID, client_secret="s")
    async with run_emulator(config) as emu:
        apps = {(r.tokens.client_id, r.tokens.client_secret) for r in emu.portals}
        assert apps == {(CLIENT_ID, "s")}
        assert len({r.identity.member_id for r in emu.portals}) == 2


def test_options_then_variables_then_random() -> None:
    """An option wins over its variable; an empty variable (compose's `${X:-}`) counts as unset."""
    args = build_parser().parse_args(["emulator", "--member-id", "from-option"])
    config = config_from_args(
        args,
        {
            "EMULATOR_MEMBER_ID": "from-env",
            "EMULATOR_CLIENT_ID": "env-client",
            "EMULATOR_CLIENT_SECRET": "",
            "EMULATOR_PUBLIC_URL": "http://emulator:8090/",
        },
    )
    assert config.member_id == "from-option"
    assert config.client_id == "env-client"
    assert config.client_secret is None
    assert config.application_token is None
    assert config.public_url == "http://emulator:8090"


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["--public-url", "http://emulator:8090/rest/"], {}),
        (["--public-url", "emulator:8090"], {}),
        (["--webhook-code", "a/b"], {}),
        ([], {"EMULATOR_PUBLIC_URL": "ftp://emulator"}),
        ([], {"EMULATOR_WEBHOOK_CODE": "../x"}),
    ],
)
def test_bad_urls_and_codes_are_refused(argv: list[str], environ: dict[str, str]) -> None:
    """A base URL with a path (the routes hang off the root) or a code that is not one path
    segment stops the command before it serves."""
    with pytest.raises(SystemExit):
        _configure(["emulator", *argv], environ)


def _configure(argv: list[str], environ: dict[str, str]) -> EmulatorConfig:
    return config_from_args(build_parser().parse_args(argv), environ)

"""The `/_emulator/` control API: faults, counters, credentials, state and time; and the
standalone `orchestrator emulator` command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import aiohttp
import pytest

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from tests.emulator._platform import ECHO, LISTING, call, control, hook, platform_methods

CREDENTIAL_KEYS = {
    "webhook_url",
    "client_id",
    "client_secret",
    "application_token",
    "member_id",
    "domain",
    "oauth_token_url",
    "client_endpoint",
    "access_token",
    "refresh_token",
}


async def test_credentials_route_matches_the_harness(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """GET credentials returns every key a client needs, equal to RunningEmulator.credentials."""
    status, body = await control(http, emu.url, "credentials", verb="GET")
    assert status == 200
    assert set(body) == CREDENTIAL_KEYS
    assert body == emu.credentials
    assert body["webhook_url"].startswith(f"{emu.url}/rest/")


async def test_error_rate_fault_gives_500_for_that_method_only(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """error_rate 1.0 on a method: 500 INTERNAL_SERVER_ERROR there, others fine; DELETE clears."""
    status, _ = await control(http, emu.url, "faults", {"error_rate": {ECHO: 1.0}})
    assert status == 200
    status, body = await call(http, hook(emu, ECHO), json={})
    assert (status, body["error"]) == (500, "INTERNAL_SERVER_ERROR")
    assert (await call(http, hook(emu, LISTING), json={}))[0] == 200
    await control(http, emu.url, "faults", verb="DELETE")
    assert (await call(http, hook(emu, ECHO), json={}))[0] == 200


async def test_html_fault_returns_an_html_error_page(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """html_rate 1.0 for every method ("*"): a 502/503 text/html page instead of JSON."""
    await control(http, emu.url, "faults", {"html_rate": {"*": 1.0}})
    async with http.post(hook(emu, ECHO), json={}) as resp:
        assert resp.status in (502, 503)
        assert resp.content_type == "text/html"
        assert "<html>" in await resp.text()


async def test_seeded_faults_repeat_exactly(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """The same seed gives the same sequence of failures."""

    async def run() -> list[int]:
        await control(http, emu.url, "faults", {"error_rate": {ECHO: 0.5}, "seed": 7})
        return [(await call(http, hook(emu, ECHO), json={}))[0] for _ in range(16)]

    first, second = await run(), await run()
    assert first == second
    assert set(first) == {200, 500}


async def test_timeout_fault_holds_the_request_past_the_client_timeout(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """timeout_rate 1.0: the server does not answer; the client times out; the held handler
    is released when the client hangs up, and the emulator keeps serving."""
    await control(http, emu.url, "faults", {"timeout_rate": {ECHO: 1.0}})
    baseline = len(asyncio.all_tasks())
    with pytest.raises(asyncio.TimeoutError):
        await http.post(hook(emu, ECHO), json={}, timeout=aiohttp.ClientTimeout(total=0.3))
    # The held handler is cancelled once the client hangs up (bounded wait, not a timing check).
    for _ in range(100):
        if len(asyncio.all_tasks()) <= baseline:
            break
        await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) <= baseline
    assert (await call(http, hook(emu, LISTING), json={}))[0] == 200
    assert emu.portals[0].counters()["methods"][ECHO]["errors"] == 1


async def test_latency_fault_still_answers(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """latency_ms delays but does not change the answer."""
    await control(http, emu.url, "faults", {"latency_ms": {ECHO: 20}})
    status, body = await call(http, hook(emu, ECHO), json={"a": 1})
    assert status == 200
    assert body["result"]["params"] == {"a": 1}


@pytest.mark.parametrize(
    "bad",
    [
        {"error_rate": {ECHO: 2}},
        {"error_rate": [1]},
        {"latency_ms": {ECHO: -1}},
        {"bogus": {}},
        {"seed": "x"},
    ],
)
async def test_invalid_fault_settings_are_rejected(
    emu: RunningEmulator, http: aiohttp.ClientSession, bad: dict[str, object]
) -> None:
    """Out-of-range or unknown fault settings answer 400 and change nothing."""
    status, body = await control(http, emu.url, "faults", bad)
    assert (status, body["error"]) == (400, "BAD_REQUEST")


async def test_counters_per_method_and_per_portal(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """Counters record calls, errors per method and requests per portal."""
    await call(http, hook(emu, ECHO), json={})
    await call(http, hook(emu, "no.such.method"), json={})
    await control(http, emu.url, "faults", {"error_rate": {LISTING: 1.0}})
    await call(http, hook(emu, LISTING), json={})
    _, counters = await control(http, emu.url, "counters", verb="GET")
    assert counters["requests"] == 3
    assert counters["refreshes"] == 0
    assert counters["methods"][ECHO] == {"calls": 1, "nested": 0, "503": 0, "429": 0, "errors": 0}
    assert counters["methods"]["no.such.method"]["errors"] == 1
    assert counters["methods"][LISTING]["errors"] == 1


async def test_advance_time_moves_the_portal_clock(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """advance-time moves the portal clock, which the REST time block reflects."""
    _, before = await call(http, hook(emu, ECHO), json={})
    status, moved = await control(http, emu.url, "advance-time", {"seconds": 3600})
    assert status == 200
    _, after = await call(http, hook(emu, ECHO), json={})
    assert after["time"]["start"] - before["time"]["start"] == pytest.approx(3600, abs=1)
    assert moved["now"] == pytest.approx(after["time"]["start"], abs=1)
    assert (await control(http, emu.url, "advance-time", {"seconds": -1}))[0] == 400


async def test_unknown_portal_is_404(emu: RunningEmulator, http: aiohttp.ClientSession) -> None:
    """A member_id no portal has is answered 404 PORTAL_NOT_FOUND."""
    status, body = await control(http, emu.url, "counters?member_id=nope", verb="GET")
    assert (status, body["error"]) == (404, "PORTAL_NOT_FOUND")


async def test_several_portals_are_told_apart_by_credentials(http: aiohttp.ClientSession) -> None:
    """With portals=2 each portal has its own credentials, state and counters."""
    with platform_methods():
        async with run_emulator(EmulatorConfig(frozen_clock=True, portals=2)) as emu:
            second = emu.portals[1]
            creds = second.credentials(emu.url)
            assert creds["member_id"] != emu.credentials["member_id"]
            await call(http, creds["webhook_url"] + ECHO, json={})
            route = f"counters?member_id={creds['member_id']}"
            _, counters = await control(http, emu.url, route, verb="GET")
            assert counters["requests"] == 1
            _, first = await control(http, emu.url, "counters", verb="GET")
            assert first["requests"] == 0


async def test_state_includes_portal_snapshot_counters_and_deliveries(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """GET state is the portal's snapshot plus counters, deliveries and faults."""
    status, state = await control(http, emu.url, "state", verb="GET")
    assert status == 200
    assert {"counters", "deliveries", "faults", "now"} <= set(state)
    assert set(emu.portals[0].portal.snapshot()) <= set(state)


async def test_client_message_route_reaches_the_portal(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """POST client-message plays a client; missing fields are a 400."""
    status, body = await control(
        http,
        emu.url,
        "client-message",
        {"line_id": 1, "text": "hello", "user_code": "livechat|1|77|88"},
    )
    assert status == 200
    assert {"chat_id", "session_id", "message_id", "user_code", "user_id"} <= set(body)
    status, body = await control(http, emu.url, "client-message", {"text": "no line"})
    assert (status, body["error"]) == (400, "BAD_REQUEST")


async def test_cli_serves_until_sigterm() -> None:
    """`orchestrator emulator --port 0` prints its credentials, serves, and exits 0 on SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orchestrator.cli",
        "emulator",
        "--port",
        "0",
        "--token-ttl",
        "120",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or lines[-1] != "}\n":
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "emulator exited before printing its credentials"
            lines.append(line)
        printed = json.loads("".join(lines))
        assert set(printed) >= CREDENTIAL_KEYS
        async with aiohttp.ClientSession() as http:
            status, creds = await control(http, printed["url"], "credentials", verb="GET")
        assert status == 200
        assert creds["member_id"] == printed["member_id"]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_people_name_their_chat_by_user_code_as_well_as_by_chat_id(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """operator-answer, operator-finish and client-vote find the chat by the client's user_code
    (what a shell walk-through knows); an unknown one is a 400 that says so."""
    code = "livechat|1|77|88"
    status, opened = await control(
        http, emu.url, "client-message", {"line_id": 1, "text": "Hi", "user_code": code}
    )
    assert status == 200
    status, answered = await control(
        http, emu.url, "operator-answer", {"user_code": code, "user_id": 2}
    )
    assert (status, answered["chat_id"]) == (200, opened["chat_id"])
    status, _ = await control(http, emu.url, "operator-finish", {"user_code": code, "user_id": 2})
    assert status == 200
    status, voted = await control(http, emu.url, "client-vote", {"user_code": code, "vote": "like"})
    assert (status, voted["chat_id"]) == (200, opened["chat_id"])
    status, body = await control(
        http, emu.url, "client-vote", {"user_code": "x|1|2|3", "vote": "like"}
    )
    assert (status, body["error"]) == (400, "BAD_REQUEST")
    assert "x|1|2|3" in body["error_description"]

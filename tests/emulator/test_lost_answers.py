"""Faults after the write (`lost_answer_rate`): the method runs and commits, then the answer is
lost — held then 504, a dropped connection, or a balancer's 502/503/504 page. The write is on
the portal exactly once, the journal shows it and the fault, the counters count it; the same for
a batch. And the before-the-call faults are journaled without any write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from tests.emulator._journal import control, entries
from tests.emulator._platform import hook

ADD = "crm.lead.add"
Outcome = tuple[int, str, str] | aiohttp.ClientConnectionError


@pytest.fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    """A frozen clock (the bucket never drains) and a hold no test outlives: a held request is
    released only by the emulator's closing signal."""
    async with run_emulator(EmulatorConfig(frozen_clock=True, fault_timeout_s=3600)) as running:
        yield running


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Outcome:
    """(status, content type, text) of an answer, or the connection error instead of one."""
    try:
        async with http.post(url, json=body) as resp:
            return resp.status, resp.content_type, await resp.text()
    except aiohttp.ClientConnectionError as exc:
        return exc


def _add(origin: str) -> dict[str, Any]:
    return {"fields": {"TITLE": f"Lead {origin}", "ORIGIN_ID": origin}}


async def _leads(http: aiohttp.ClientSession, emu: RunningEmulator) -> list[dict[str, Any]]:
    """Every lead on the portal (crm.lead.list), answered normally."""
    async with http.post(hook(emu, "crm.lead.list"), json={"select": ["*"]}) as resp:
        assert resp.status == 200
        return list((await resp.json())["result"])


async def _counters(http: aiohttp.ClientSession, emu: RunningEmulator) -> Any:
    async with http.get(f"{emu.url}/_emulator/counters") as resp:
        return await resp.json()


async def _eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Liveness only: poll `check` until it holds, failing after a generous bound."""
    for _ in range(600):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {what}")


def _assert_page(outcome: Outcome, status: int) -> None:
    assert not isinstance(outcome, BaseException), outcome
    assert outcome[:2] == (status, "text/html")
    assert str(status) in outcome[2]
    assert "nginx" in outcome[2]


async def _assert_applied_once(
    http: aiohttp.ClientSession, emu: RunningEmulator, origin: str, variant: str
) -> None:
    """The lead is on the portal and in the journal once, and the fault follows it."""
    assert [lead["ORIGIN_ID"] for lead in await _leads(http, emu)].count(origin) == 1
    log = await entries(http, emu)
    created = [e for e in log if e["kind"] == "lead_created" and e["fields"]["ORIGIN_ID"] == origin]
    faults = [e for e in log if e["kind"] == "fault"]
    assert len(created) == 1
    assert created[0]["via"] == ADD
    assert [(f["method"], f["fault"], f["variant"], f["applied"]) for f in faults] == [
        (ADD, "lost_after_write", variant, True)
    ]
    assert faults[0]["seq"] > created[0]["seq"]
    assert (await _counters(http, emu))["faults_after_write"] == 1


@pytest.mark.parametrize("variant", ["reset", "502", "503", "504"])
async def test_a_lost_answer_still_applies_the_write_once(
    emu: RunningEmulator, http: aiohttp.ClientSession, variant: str
) -> None:
    """The client sees a dropped connection or the balancer's page; the lead exists once, the
    bucket and the operating budget were charged."""
    plan = {"lost_answer_rate": {ADD: 1.0}, "lost_answer_variants": [variant]}
    await control(http, emu, "faults", {**plan, "exec_time_s": {ADD: 5}})
    outcome = await _post(http, hook(emu, ADD), _add("one"))
    runtime = emu.portals[0]
    assert runtime.bucket.level == 1  # the one REST request so far
    assert runtime.budget.used(("webhook", runtime.webhook.password_id, ADD)) >= 5
    if variant == "reset":
        assert isinstance(outcome, aiohttp.ClientConnectionError), outcome
    else:
        _assert_page(outcome, int(variant))
    await control(http, emu, "faults", {})
    await _assert_applied_once(http, emu, "one", variant)


async def test_a_timed_out_answer_is_held_after_the_write_then_504(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """While the request hangs the lead is already on the portal; released, it answers 504."""
    plan = {"lost_answer_rate": {ADD: 1.0}, "lost_answer_variants": ["timeout"]}
    await control(http, emu, "faults", plan)
    held = asyncio.create_task(_post(http, hook(emu, ADD), _add("held")))

    async def fault_seen() -> bool:
        return bool(await entries(http, emu, "fault"))

    await _eventually(fault_seen, "the lost-answer fault")
    await control(http, emu, "faults", {})
    await _assert_applied_once(http, emu, "held", "timeout")
    assert not held.done()  # still held: the hold outlasts any test
    emu.emulator.closing.set()  # what stopping the emulator does: release the hold
    _assert_page(await asyncio.wait_for(held, 60), 504)


async def test_a_batch_runs_every_command_and_then_loses_its_answer(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A command's draw loses the whole batch's answer after all commands ran (references too)."""
    plan = {"lost_answer_rate": {ADD: 1.0}, "lost_answer_variants": ["502"]}
    await control(http, emu, "faults", plan)
    cmd = {
        "a": f"{ADD}?fields[TITLE]=A&fields[ORIGIN_ID]=b1",
        "b": f"{ADD}?fields[TITLE]=$result[a]&fields[ORIGIN_ID]=b2",
    }
    _assert_page(await _post(http, hook(emu, "batch"), {"cmd": cmd}), 502)
    await control(http, emu, "faults", {})
    leads = {lead["ORIGIN_ID"]: lead for lead in await _leads(http, emu)}
    assert set(leads) == {"b1", "b2"}
    assert leads["b2"]["TITLE"] == str(leads["b1"]["ID"])
    log = await entries(http, emu)
    assert [e["fields"]["ORIGIN_ID"] for e in log if e["kind"] == "lead_created"] == ["b1", "b2"]
    faults = [e for e in log if e["kind"] == "fault"]
    assert len(faults) == 1
    assert faults[0] | {"seq": 0, "at": 0} == {
        "seq": 0,
        "at": 0,
        "kind": "fault",
        "method": "batch",
        "fault": "lost_after_write",
        "variant": "502",
        "applied": True,
        "methods": [ADD, ADD],
    }
    assert (await _counters(http, emu))["faults_after_write"] == 1


async def test_a_batch_drawing_for_itself_keeps_halt_and_drops_the_connection(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """`batch` draws too; halt still stops at the first error; the connection is dropped."""
    plan = {"lost_answer_rate": {"batch": 1.0}, "lost_answer_variants": ["reset"]}
    await control(http, emu, "faults", plan)
    cmd = {
        "a": f"{ADD}?fields[ORIGIN_ID]=h1",
        "b": "crm.lead.get?id=0",
        "c": f"{ADD}?fields[ORIGIN_ID]=h2",
    }
    outcome = await _post(http, hook(emu, "batch"), {"cmd": cmd, "halt": 1})
    assert isinstance(outcome, aiohttp.ClientConnectionError), outcome
    await control(http, emu, "faults", {})
    assert [lead["ORIGIN_ID"] for lead in await _leads(http, emu)] == ["h1"]
    faults = await entries(http, emu, "fault")
    assert [(f["method"], f["variant"], f["methods"]) for f in faults] == [
        ("batch", "reset", ["batch"])
    ]


async def test_lost_answers_replay_with_the_seed(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """The same seed loses the same answers the same way; every call was applied regardless."""

    async def run(tag: str) -> list[int]:
        plan = {"lost_answer_rate": {ADD: 0.5}, "lost_answer_variants": [502, "503"], "seed": 3}
        await control(http, emu, "faults", plan)
        seen = []
        for i in range(12):
            outcome = await _post(http, hook(emu, ADD), _add(f"{tag}{i}"))
            assert not isinstance(outcome, BaseException)
            seen.append(outcome[0])
        return seen

    first, second = await run("x"), await run("y")
    await control(http, emu, "faults", {})
    assert first == second
    assert 200 in first
    assert set(first) - {200}
    assert set(first) <= {200, 502, 503}
    assert len(await _leads(http, emu)) == 24
    lost = sum(status != 200 for status in first + second)
    assert (await _counters(http, emu))["faults_after_write"] == lost


async def test_faults_before_the_call_are_journaled_and_write_nothing(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """error_rate and html_rate: the method does not run; a `fault` entry each, no lead."""
    for plan in ({"error_rate": {ADD: 1.0}}, {"html_rate": {ADD: 1.0}}):
        await control(http, emu, "faults", plan)
        await _post(http, hook(emu, ADD), _add("never"))
    await control(http, emu, "faults", {})
    assert await _leads(http, emu) == []
    faults = await entries(http, emu, "fault")
    assert [(f["method"], f["fault"]) for f in faults] == [(ADD, "error"), (ADD, "html")]
    assert faults[0]["status"] == 500
    assert faults[1]["status"] in (502, 503)
    assert (await _counters(http, emu))["faults_after_write"] == 0


async def test_bad_lost_answer_settings_are_refused(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """Rates above 1 and unknown variants: 400; the plan describes the variants it draws from."""
    for plan in (
        {"lost_answer_rate": {ADD: 2}},
        {"lost_answer_variants": ["teapot"]},
        {"lost_answer_variants": []},
    ):
        async with http.post(f"{emu.url}/_emulator/faults", json=plan) as resp:
            assert resp.status == 400, plan
    described = await control(http, emu, "faults", {"lost_answer_rate": {"*": 0.1}})
    assert described["faults"]["lost_answer_rate"] == {"*": 0.1}
    assert described["faults"]["lost_answer_variants"] == ["timeout", "reset", "502", "504", "503"]

"""Rate limits (docs/bitrix24.md §2): the per-portal leaky bucket (503 QUERY_LIMIT_EXCEEDED) and
the per-(webhook or app, method) operating-time budget (429 OPERATION_TIME_LIMIT).

Portal clocks are frozen in these tests, so draining and window expiry happen only through
`advance-time`: the counts are exact and nothing depends on how fast the machine is."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator.limits import LeakyBucket, OperatingBudget
from emulator.runtime import FrozenClock
from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from tests.emulator import _platform
from tests.emulator._platform import COUNTED, ECHO, LISTING, call, control, hook, platform_methods


@pytest.fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    with platform_methods():
        config = EmulatorConfig(frozen_clock=True, method_exec_time={ECHO: 100.0})
        async with run_emulator(config) as running:
            yield running


# --- pure units -----------------------------------------------------------------------------


def test_leaky_bucket_refuses_without_filling_and_drains_with_time() -> None:
    """Capacity 3 at 2/s: 3 pass, the 4th is refused (and not counted); 1 s later 2 more pass."""
    clock = FrozenClock()
    bucket = LeakyBucket(3, 2.0, clock)
    assert [bucket.try_acquire() for _ in range(5)] == [True, True, True, False, False]
    assert bucket.level == 3
    clock.advance(1.0)
    assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]


def test_operating_budget_blocks_only_when_the_sum_is_greater_than_the_limit() -> None:
    """Sum equal to the limit still passes; above it blocks; short calls are not counted."""
    clock = FrozenClock()
    budget = OperatingBudget(10.0, clock)
    key = ("webhook", "1", "m")
    budget.record(key, clock.now(), 0.1)  # <= 0.1 s is not fixed
    assert budget.used(key) == 0
    budget.record(key, clock.now(), 10.0)
    assert not budget.blocked(key)
    budget.record(key, clock.now(), 0.5)
    assert budget.blocked(key)
    assert not budget.blocked(("webhook", "1", "other"))


def test_operating_budget_expires_ten_minutes_after_the_first_call() -> None:
    """A bucket counts for at most ten minutes (10 x 60 s buckets, each expiring 600 s after
    its first call); reset_at says when."""
    clock = FrozenClock()
    budget = OperatingBudget(1.0, clock)
    key = ("oauth", "app", "m")
    started = clock.now()
    budget.record(key, started, 5.0)
    assert budget.reset_at(key, started) == int(started + 600)
    clock.advance(540)
    assert budget.blocked(key)
    clock.advance(61)
    assert not budget.blocked(key)
    assert budget.used(key) == 0


# --- leaky bucket over HTTP -----------------------------------------------------------------


async def test_burst_of_60_gets_50_answers_and_10_rejections_then_drains(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """60 calls at once: exactly 50 run, 10 get 503 QUERY_LIMIT_EXCEEDED and are not run;
    after 5 s of quiet (2/s) exactly 10 more pass."""
    statuses, rejected = [], []
    for _ in range(60):
        status, body = await call(http, hook(emu, COUNTED), json={})
        statuses.append(status)
        if status == 503:
            rejected.append(body)
    assert statuses.count(200) == 50
    assert statuses.count(503) == 10
    assert rejected[0] == {
        "error": "QUERY_LIMIT_EXCEEDED",
        "error_description": "Too many requests",
    }
    assert _platform.calls[COUNTED] == 50  # a rejected request is never executed

    await control(http, emu.url, "advance-time", {"seconds": 5})
    after = [(await call(http, hook(emu, COUNTED), json={}))[0] for _ in range(11)]
    assert after == [200] * 10 + [503]
    counters = emu.portals[0].counters()["methods"][COUNTED]
    assert counters["503"] == 11
    assert counters["calls"] == 71


async def test_bucket_is_per_portal_and_shared_by_webhook_and_oauth(
    http: aiohttp.ClientSession,
) -> None:
    """Two portals have two buckets; within a portal, token and webhook calls share one."""
    with platform_methods():
        config = EmulatorConfig(frozen_clock=True, portals=2, bucket_capacity=3)
        async with run_emulator(config) as emu:
            first, second = (p.credentials(emu.url) for p in emu.portals)
            token_url = f"{first['client_endpoint']}{ECHO}"
            got = [
                (await call(http, token_url, json={"auth": first["access_token"]}))[0]
                for _ in range(2)
            ]
            got.append((await call(http, first["webhook_url"] + ECHO, json={}))[0])
            got.append((await call(http, first["webhook_url"] + ECHO, json={}))[0])
            assert got == [200, 200, 200, 503]
            status, _ = await call(http, second["webhook_url"] + ECHO, json={})
            assert status == 200


async def test_enterprise_plan_bucket_holds_250(http: aiohttp.ClientSession) -> None:
    """On the enterprise plan the bucket takes 250 requests before refusing."""
    with platform_methods():
        async with run_emulator(EmulatorConfig(plan="enterprise", frozen_clock=True)) as emu:
            bucket = emu.portals[0].bucket
            assert (bucket.capacity, bucket.drain_per_s) == (250, 5.0)
            url = emu.credentials["webhook_url"] + COUNTED
            async with http.post(url, json={}) as first:
                assert first.status == 200
            assert bucket.level == 1


# --- operating budget over HTTP -------------------------------------------------------------


async def test_operating_budget_blocks_with_429_and_recovers_after_the_window(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """100 s simulated per call, limit 480: calls 1-5 run (the 5th pushes the sum to 500), the
    6th is 429 OPERATION_TIME_LIMIT; other methods are unaffected; 10 min later it passes."""
    operating = []
    for _ in range(5):
        status, body = await call(http, hook(emu, ECHO), json={})
        assert status == 200
        operating.append(body["time"]["operating"])
    # real handler time (microseconds) is charged on top of the simulated 100 s
    assert operating == [pytest.approx(n, abs=0.5) for n in (100, 200, 300, 400, 500)]
    status, body = await call(http, hook(emu, ECHO), json={})
    assert status == 429
    assert body == {
        "error": "OPERATION_TIME_LIMIT",
        "error_description": "Method is blocked due to operation time limit.",
    }
    status, _ = await call(http, hook(emu, LISTING), json={})
    assert status == 200
    assert emu.portals[0].counters()["methods"][ECHO]["429"] == 1

    await control(http, emu.url, "advance-time", {"seconds": 601})
    status, _ = await call(http, hook(emu, ECHO), json={})
    assert status == 200


async def test_operating_budget_is_kept_per_webhook_and_per_app(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """Exhausting a method through one webhook leaves the OAuth app and other webhooks free."""
    for _ in range(5):
        await call(http, hook(emu, ECHO), json={})
    assert (await call(http, hook(emu, ECHO), json={}))[0] == 429
    _, made = await control(http, emu.url, "webhooks", {})
    assert (await call(http, made["webhook_url"] + ECHO, json={}))[0] == 200
    token = emu.credentials["access_token"]
    url = emu.credentials["client_endpoint"] + ECHO
    assert (await call(http, url, json={"auth": token}))[0] == 200


async def test_time_block_reports_operating_reset_at(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """operating_reset_at is when the oldest counted bucket expires: 600 s after its call."""
    _, body = await call(http, hook(emu, ECHO), json={})
    assert body["time"]["operating_reset_at"] == int(body["time"]["start"] + 600)


async def test_fault_exec_time_charges_the_budget(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """Simulated execution time set through the faults API reaches the 429 just the same."""
    status, _ = await control(http, emu.url, "faults", {"exec_time_s": {LISTING: 500}})
    assert status == 200
    assert (await call(http, hook(emu, LISTING), json={}))[0] == 200
    assert (await call(http, hook(emu, LISTING), json={}))[0] == 429


async def test_batch_sub_calls_are_charged_to_their_own_methods(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """batch is exempt; each command is charged to, and blocked by, its own method's budget."""
    cmd = {f"c{i}": f"{ECHO}?i={i}" for i in range(6)} | {"other": f"{LISTING}"}
    status, body = await call(http, hook(emu, "batch"), json={"cmd": cmd})
    assert status == 200
    result = body["result"]
    assert sorted(result["result"]) == ["c0", "c1", "c2", "c3", "c4", "other"]
    assert result["result_error"]["c5"]["error"] == "OPERATION_TIME_LIMIT"
    assert result["result_time"]["c4"]["operating"] == pytest.approx(500, abs=0.5)
    assert "operating" not in body["time"]
    assert (await call(http, hook(emu, ECHO), json={}))[0] == 429

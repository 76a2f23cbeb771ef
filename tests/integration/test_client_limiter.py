"""The Redis limiter: a GCRA bucket per portal shared by processes, penalties, operating time."""

from __future__ import annotations

import asyncio
import multiprocessing

import redis.asyncio as aioredis

from orchestrator.bitrix.limiter import BucketConfig, Limiter
from orchestrator.settings import Settings

SMALL = BucketConfig(capacity=12, drain_per_s=20.0, margin=2)  # burst 10, one slot per 50 ms


def _limiter(
    redis: aioredis.Redis,
    prefix: str,
    bucket: BucketConfig = SMALL,
    operating_limit_s: float = 480.0,
) -> Limiter:
    return Limiter(redis, prefix=prefix, bucket=bucket, operating_limit_s=operating_limit_s)


async def _reserve_slots(url: str, prefix: str, count: int) -> list[float]:
    client = aioredis.Redis.from_url(url)
    try:
        limiter = _limiter(client, prefix)
        slots = [await limiter.reserve("portal-a") for _ in range(count)]
    finally:
        await client.aclose()
    assert all(s.granted for s in slots)
    return [s.at for s in slots]


def _process_main(url: str, prefix: str, count: int) -> list[float]:
    return asyncio.run(_reserve_slots(url, prefix, count))


def _max_in_bucket(times: list[float], bucket: BucketConfig) -> float:
    """Replay slot times through the portal's leaky bucket; the highest level it reached."""
    level, last, peak = 0.0, times[0], 0.0
    for t in times:
        level = max(0.0, level - (t - last) * bucket.drain_per_s) + 1
        last = t
        peak = max(peak, level)
    return peak


def test_processes_sharing_a_portal_never_overfill_its_bucket(
    redis_url: str, key_prefix: str
) -> None:
    """Four OS processes reserving slots at once get a schedule the portal's bucket accepts."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_process_main, [(redis_url, key_prefix, 40)] * 4)
    times = sorted(t for r in results for t in r)
    assert len(times) == 160
    # The bucket is 12; with the margin of 2 we stay at the burst of 10 (float slack only).
    assert _max_in_bucket(times, SMALL) <= SMALL.burst + 1e-3
    # And we do use the budget: the slots are spaced at the drain rate, not slower.
    span = times[-1] - times[0]
    assert span <= (160 - SMALL.burst) / SMALL.drain_per_s + 0.01


async def test_acquire_sleeps_until_its_slot(redis: aioredis.Redis, key_prefix: str) -> None:
    """Past the burst, acquire() waits the interval per request instead of failing."""
    limiter = _limiter(redis, key_prefix)
    waits = [await limiter.acquire("p") for _ in range(SMALL.burst + 3)]
    assert all(w == 0 for w in waits[: SMALL.burst - 1])
    assert sum(waits) > 0


async def test_portals_have_separate_buckets(redis: aioredis.Redis, key_prefix: str) -> None:
    """Spending one portal's burst leaves another portal's untouched."""
    limiter = _limiter(redis, key_prefix)
    for _ in range(SMALL.burst + 5):
        await limiter.reserve("busy")
    assert (await limiter.reserve("idle")).wait_s == 0
    assert await redis.exists(f"{key_prefix}:{{busy}}:rate")


async def test_penalize_makes_the_whole_fleet_wait(redis: aioredis.Redis, key_prefix: str) -> None:
    """After a 503 the next slot of any process lies beyond the drain of the margin."""
    limiter = _limiter(redis, key_prefix)
    assert (await limiter.reserve("p")).wait_s == 0
    pause = await limiter.penalize("p")
    slot = await _limiter(redis, key_prefix).reserve("p")  # "another process"
    interval = 1 / SMALL.drain_per_s
    assert pause >= interval * (1 + SMALL.margin) - 1e-3
    assert slot.wait_s >= pause - 0.01


async def test_long_waits_are_not_reserved(redis: aioredis.Redis, key_prefix: str) -> None:
    """A slot further away than the reservation horizon is not taken; the caller asks again."""
    slow = BucketConfig(capacity=1, drain_per_s=0.01, margin=0)  # one slot per 100 s
    limiter = _limiter(redis, key_prefix, slow)
    assert (await limiter.reserve("p")).granted
    second = await limiter.reserve("p")
    assert not second.granted
    assert second.wait_s > 30


def test_bucket_config_from_plan_and_overrides() -> None:
    """Standard 50 @ 2/s, enterprise 250 @ 5/s, and the settings overrides win."""
    assert BucketConfig.from_settings(Settings()) == BucketConfig(50, 2.0, 5)
    assert BucketConfig.from_settings(Settings(b24_plan="enterprise")).capacity == 250
    custom = BucketConfig.from_settings(
        Settings(b24_bucket_capacity=10, b24_drain_per_s=1.0, b24_burst_margin=3)
    )
    assert (custom.burst, custom.interval_us) == (7, 1_000_000)


async def _redis_now(redis: aioredis.Redis) -> float:
    seconds, micros = await redis.time()
    return float(seconds) + float(micros) / 1e6


async def test_operating_budget_holds_a_method_back(redis: aioredis.Redis, key_prefix: str) -> None:
    """Near the method's limit, acquire waits for operating_reset_at; other methods go on."""
    limiter = _limiter(redis, key_prefix, operating_limit_s=5.0)
    await limiter.acquire_operating("p", "imbot.message.add")
    now = await _redis_now(redis)
    await limiter.report_operating(
        "p",
        "imbot.message.add",
        {"operating": 4.6, "operating_reset_at": now + 0.3, "processing": 0.5},
    )
    assert await limiter.acquire_operating("p", "user.get") == 0
    waited = await limiter.acquire_operating("p", "imbot.message.add")
    assert waited > 0


async def test_operating_budget_lets_one_probe_through_after_reset(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    """After the reset time with an unknown sum, one call probes while the others wait for it."""
    limiter = _limiter(redis, key_prefix, operating_limit_s=5.0)
    now = await _redis_now(redis)
    await limiter.report_operating(
        "p", "m", {"operating": 4.9, "operating_reset_at": now - 1, "processing": 0.5}
    )
    first = asyncio.create_task(limiter.acquire_operating("p", "m"))
    await asyncio.sleep(0)
    second = asyncio.create_task(limiter.acquire_operating("p", "m"))
    assert await first == 0
    await asyncio.sleep(0.15)
    assert not second.done()  # still held: the probe has not reported yet
    await limiter.report_operating(
        "p", "m", {"operating": 1.0, "operating_reset_at": now + 60, "processing": 0.5}
    )
    assert await asyncio.wait_for(second, 5) > 0


async def test_penalize_operating_holds_the_method(redis: aioredis.Redis, key_prefix: str) -> None:
    """An unexpected 429 marks the method's budget as spent for a while, fleet-wide."""
    limiter = _limiter(redis, key_prefix, operating_limit_s=5.0)
    hold = await limiter.penalize_operating("p", "m")
    assert hold >= 59
    granted, _ = await limiter._operating(keys=[limiter._op_key("p", "m")], args=["acquire", 4.5])
    assert int(granted) == 0


async def test_a_slot_leaked_by_a_killed_caller_stops_counting(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    """A caller killed between acquire and report must not hold a cold method back for long."""
    limiter = _limiter(redis, key_prefix)
    key = f"{key_prefix}:{{m1}}:op:crm.lead.add"
    await limiter._operating(keys=[key], args=["acquire", 100.0])  # then the caller dies
    granted, _ = await limiter._operating(keys=[key], args=["acquire", 100.0])
    assert int(granted) == 0  # cost unknown and one call in flight: the next one waits
    # The portal ends every request within 60 s: move the in-flight deadline into the past,
    # as the clock would after the dead call's time had run out.
    await redis.hset(key, "inflight_until", 0)
    granted, _ = await limiter._operating(keys=[key], args=["acquire", 100.0])
    assert int(granted) == 1


async def test_a_probe_leaked_by_a_killed_caller_holds_its_method_only_for_the_call_timeout(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    """With a call timeout known, the cold-start probe's slot lapses after that timeout plus a
    margin (not the portal's 75 s): a worker killed during a method's first call stalls the
    method fleet-wide only as long as its own call could have run."""
    bucket = BucketConfig.from_settings(Settings())
    limiter = Limiter(
        redis, prefix=key_prefix, bucket=bucket, operating_limit_s=480.0, call_timeout_s=5.0
    )
    key = f"{key_prefix}:{{m1}}:op:imopenlines.session.history.get"
    assert await limiter.acquire_operating("m1", "imopenlines.session.history.get") == 0
    # ... and the caller dies without reporting
    until = float(await redis.hget(key, "inflight_until"))
    now = await _redis_now(redis)
    assert until - now <= 10.5  # 5 s call timeout + 5 s margin
    granted, _ = await limiter._operating(keys=[key], args=["acquire", 100.0])
    assert int(granted) == 0  # still held while the probe could be running


async def test_a_slot_of_a_known_cost_method_keeps_the_portals_call_bound(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    """Once the method's cost is known, a call in flight counts until the portal's 75 s bound,
    whatever our call timeout (the portal may still be running and charging it)."""
    bucket = BucketConfig.from_settings(Settings())
    limiter = Limiter(
        redis, prefix=key_prefix, bucket=bucket, operating_limit_s=480.0, call_timeout_s=5.0
    )
    await limiter.report_operating("m1", "user.get", {"processing": 0.0})
    await limiter.acquire_operating("m1", "user.get")
    until = float(await redis.hget(f"{key_prefix}:{{m1}}:op:user.get", "inflight_until"))
    assert until - await _redis_now(redis) > 60

"""PipelinedScript: concurrent calls share pipelined round trips, yet each caller gets exactly
its own reply or its own error, as from a direct EVALSHA."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from orchestrator.redis.pipelined import PipelinedScript

# echoes its argument into a list; refuses "bad" with a script error
_ECHO = """
if ARGV[1] == 'bad' then return redis.error_reply('refused ' .. ARGV[1]) end
redis.call('RPUSH', KEYS[1], ARGV[1])
return ARGV[1]
"""


class _Counting(PipelinedScript):
    """Records the size of each batch it sends."""

    def __init__(self, client: aioredis.Redis) -> None:
        super().__init__(client, _ECHO)
        self.batches: list[int] = []

    async def _execute(self, batch: list[Any]) -> list[Any]:
        self.batches.append(len(batch))
        return await super()._execute(batch)


async def test_concurrent_calls_go_out_together_and_each_gets_its_reply(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    """Fifty calls made in one loop turn are one batch; replies match callers; all applied."""
    await redis.script_load(_ECHO)  # else the first batch is sent twice (NOSCRIPT, then again)
    script = _Counting(redis)
    key = f"{key_prefix}:echo"
    replies = await asyncio.gather(*(script([key], [str(i)]) for i in range(50)))
    assert replies == [str(i).encode() for i in range(50)]
    assert script.batches == [50]
    assert await redis.lrange(key, 0, -1) == [str(i).encode() for i in range(50)]


async def test_a_lone_call_goes_out_alone_and_batches_are_capped(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    """One call is sent by itself; a burst beyond max_batch is split into several batches."""
    await redis.script_load(_ECHO)
    script = _Counting(redis)
    script.max_batch = 8
    key = f"{key_prefix}:echo"
    assert await script([key], ["alone"]) == b"alone"
    await asyncio.gather(*(script([key], [str(i)]) for i in range(20)))
    assert script.batches == [1, 8, 8, 4]


async def test_a_failing_call_fails_alone(redis: aioredis.Redis, key_prefix: str) -> None:
    """A script error reaches only its own caller; its neighbours in the batch succeed."""
    script = PipelinedScript(redis, _ECHO)
    key = f"{key_prefix}:echo"
    results = await asyncio.gather(
        script([key], ["a"]), script([key], ["bad"]), script([key], ["b"]), return_exceptions=True
    )
    assert results[0] == b"a"
    assert results[2] == b"b"
    assert isinstance(results[1], ResponseError)
    assert "refused bad" in str(results[1])


async def test_an_emptied_script_cache_is_refilled(redis: aioredis.Redis, key_prefix: str) -> None:
    """After SCRIPT FLUSH (a Redis restart), the batch is loaded, sent again and answered."""
    script = _Counting(redis)
    key = f"{key_prefix}:echo"
    await redis.script_flush()
    assert await asyncio.gather(script([key], ["x"]), script([key], ["y"])) == [b"x", b"y"]
    assert script.batches == [2, 2]
    assert await redis.lrange(key, 0, -1) == [b"x", b"y"]  # each applied once


async def test_an_unreachable_redis_fails_every_caller_with_a_connection_error() -> None:
    """No server: each caller gets the connection error (the ingress then spools)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    client = aioredis.Redis(port=port, socket_connect_timeout=1.0)
    try:
        script = PipelinedScript(client, _ECHO)
        results = await asyncio.gather(
            *(script(["k"], [str(i)]) for i in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, RedisConnectionError) for r in results), results
    finally:
        await client.aclose()


async def test_a_caller_that_gives_up_does_not_disturb_the_others(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    """A cancelled caller's call may still run; the others get their replies."""
    script = PipelinedScript(redis, _ECHO)
    key = f"{key_prefix}:echo"
    quitter = asyncio.create_task(script([key], ["gone"]))
    stayer = asyncio.create_task(script([key], ["here"]))
    await asyncio.sleep(0)  # both queued
    quitter.cancel()
    assert await stayer == b"here"
    with pytest.raises(asyncio.CancelledError):
        await quitter

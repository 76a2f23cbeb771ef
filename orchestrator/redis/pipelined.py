"""One Lua script called from many concurrent tasks, sent to Redis in pipelined batches.

The ingress runs the ingest script once per event. Sent one by one, each call pays redis-py's
per-command cost (pool checkout, a readiness probe of the socket, a timeout scope) and a write
and a read syscall on both ends; under load that is most of the ingress's Redis time. Here the
calls that arrive while a batch is in flight wait for it and go out together as the next one:
one write, the replies read in order. A lone call goes out at once (no timer, no added delay).

Each call is still its own EVALSHA, atomic on its own; nothing about a call depends on its
neighbours. A caller gets its own reply or its own exception, exactly as from a direct call.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

__all__ = ["PipelinedScript"]

_Call = tuple[list[Any], list[Any], "asyncio.Future[Any]"]


class PipelinedScript:
    """`await script(keys, args)`: the reply of one EVALSHA, batched with concurrent calls."""

    def __init__(self, client: aioredis.Redis, source: str, *, max_batch: int = 128) -> None:
        self._client = client
        self._script = client.register_script(source)  # its sha, and its loading after NOSCRIPT
        self.max_batch = max_batch
        self._waiting: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        """Queue one call and wait for its reply."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, future))
        if self._sender is None:
            # started now, it runs after the tasks already woken in this loop turn: their
            # calls join this first batch
            self._sender = asyncio.create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                await self._send(batch)
        finally:
            self._sender = None

    async def _send(self, batch: list[_Call]) -> None:
        try:
            replies = await self._execute(batch)
            missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if missing:  # Redis restarted (its script cache is empty): load, send those again
                await self._client.script_load(self._script.script)
                again = await self._execute([batch[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except asyncio.CancelledError:
            for _, _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the connection failed: every caller gets the error
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller went away
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        sha = self._script.sha
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args, _ in batch:
                pipe.evalsha(sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

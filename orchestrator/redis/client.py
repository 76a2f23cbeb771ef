"""Our Redis clients: redis-py asyncio, packing commands with hiredis when it is installed.

redis-py's synchronous client packs commands with hiredis; its asyncio client still packs in
pure Python, which costs the ingress ~40 µs per event for the ingest script's 14 arguments
(`orchestrator bench ingress` measures the difference). Same wire bytes either way.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

__all__ = ["HiredisPackConnection", "aw", "open_client"]

T = TypeVar("T")


async def aw(value: Awaitable[T] | T) -> T:
    """Await a redis-py asyncio reply (its stubs type commands as `Awaitable[T] | T`)."""
    return await cast(Awaitable[T], value)


class HiredisPackConnection(Connection):
    """An asyncio connection whose commands are packed by hiredis."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        """The RESP bytes of one command."""
        packed: list[bytes] = self._serializer.pack(*args)
        return packed


def open_client(url: str, **options: Any) -> aioredis.Redis:
    """A client for `url` (bytes replies), with hiredis packing when available."""
    if HIREDIS_AVAILABLE and url.startswith("redis://"):  # rediss:// and unix:// keep theirs
        options.setdefault("connection_class", HiredisPackConnection)
    client: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=False, **options)
    return client

"""The v2 bots we registered, one Redis hash per portal and bot code (`Keys.bot`).

Over an inbound webhook a v2 bot is owned by `"custom"` + its token, and the token must ride on
every call (docs/bitrix24-bots-v2.md "Owner and token"): lose it and the bot cannot be used or
re-claimed — a new token is a new owner, and its `Bot.register` of the same code is
`BOT_CODE_ALREADY_TAKEN`. So the token is generated here and written with HSETNX BEFORE the portal
hears of it: two racing runs agree on the first one written, and a run that dies after register
finds it again. It is never replaced here (rotation is `BotV2Api.rotate_token`, then `set_token`).

At rest the token is kept exactly as the portal's OAuth tokens are (docs/security.md): in clear
in Redis under our prefix, because the REST client must send it; there is no encryption layer in
the project to reuse. Nothing else holds it: the command's report, logs (`bottoken`/`bot_token`
are redacted keys) and errors never carry it. An OAuth app's bots need no token (the app's
client id owns them); their hash holds only the bot's id and mode.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from orchestrator.bitrix.bot_v2 import TOKEN_MAX_LENGTH
from orchestrator.errors import ConfigurationError
from orchestrator.pipeline.keys import Keys
from orchestrator.redis.client import aw

__all__ = ["BotDirectory", "BotRecord", "BotStore", "new_token"]

# 30 random bytes are 40 URL-safe characters: the longest token the portal accepts.
_TOKEN_BYTES = TOKEN_MAX_LENGTH * 3 // 4


def new_token() -> str:
    """A fresh bot token: 40 characters of URL-safe randomness (240 bits)."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


@dataclass(frozen=True)
class BotRecord:
    """What we keep of one v2 bot (`bot_id` 0 until the portal has answered)."""

    code: str
    bot_token: str | None = None
    bot_id: int = 0
    event_mode: str = ""
    webhook_url: str = ""


class BotStore:
    """Reads and writes the `bot` hashes of one key prefix."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str) -> None:
        self._redis = redis
        self._keys = Keys(prefix)

    def key(self, member_id: str, code: str) -> str:
        """The bot's hash."""
        return self._keys.bot(member_id, code)

    async def load(self, member_id: str, code: str) -> BotRecord | None:
        """The stored record, or None when we never wrote one."""
        stored: dict[bytes, bytes] = await aw(self._redis.hgetall(self.key(member_id, code)))
        return _record(code, stored)

    async def ensure_token(self, member_id: str, code: str) -> tuple[str, bool]:
        """The bot's token and whether this call created it: the stored one, else a new one
        written first (HSETNX: a racing run's token wins and is returned to both)."""
        key = self.key(member_id, code)
        created = await aw(self._redis.hsetnx(key, "bot_token", new_token()))
        if created:
            await aw(self._redis.hsetnx(key, "created_at", str(int(time.time()))))
        stored = cast(bytes | None, await aw(self._redis.hget(key, "bot_token")))
        if not stored:
            # e.g. evicted by a maxmemory policy: registering with it would lose the bot
            raise ConfigurationError(f"the bot token of {code} did not stay in Redis")
        return stored.decode(), bool(created)

    async def set_token(self, member_id: str, code: str, token: str) -> None:
        """Store a rotated token (after `BotV2Api.rotate_token` succeeded)."""
        await aw(self._redis.hset(self.key(member_id, code), "bot_token", token))

    async def record_bot(
        self, member_id: str, code: str, *, bot_id: int, event_mode: str, webhook_url: str
    ) -> None:
        """What the portal answered for the bot: its id, mode and (webhook mode) URL."""
        fields = {"bot_id": str(bot_id), "event_mode": event_mode, "webhook_url": webhook_url}
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.key(member_id, code), mapping=fields)
            pipe.sadd(self._keys.bots, f"{member_id}|{code}")
            await pipe.execute()

    async def all(self) -> list[tuple[str, BotRecord]]:
        """Every bot we registered, with its portal's member id (the fetcher's worklist)."""
        return await self._registered()

    async def of_portal(self, member_id: str) -> list[BotRecord]:
        """The bots we registered on one portal (only theirs are read)."""
        return [record for _, record in await self._registered(member_id)]

    async def _registered(self, member_id: str | None = None) -> list[tuple[str, BotRecord]]:
        """The registered bots (of one portal), read in one round trip."""
        members: set[bytes] = await aw(self._redis.smembers(self._keys.bots))
        pairs = [m.decode().partition("|")[::2] for m in sorted(members)]
        pairs = [(m, code) for m, code in pairs if member_id is None or m == member_id]
        if not pairs:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for m, code in pairs:
                pipe.hgetall(self.key(m, code))
            hashes: list[dict[bytes, bytes]] = await pipe.execute()
        found = [(m, _record(code, h)) for (m, code), h in zip(pairs, hashes, strict=True)]
        return [(m, r) for m, r in found if r is not None and r.bot_id]


def _record(code: str, stored: dict[bytes, bytes]) -> BotRecord | None:
    """A bot hash as a record (None when empty)."""
    raw = {k.decode(): v.decode() for k, v in stored.items()}
    if not raw:
        return None
    return BotRecord(
        code=code,
        bot_token=raw.get("bot_token") or None,
        bot_id=int(raw.get("bot_id") or 0),
        event_mode=raw.get("event_mode", ""),
        webhook_url=raw.get("webhook_url", ""),
    )


class BotDirectory:
    """Which bot speaks for a portal: the v2 bot we registered there, or None (the v1 bot of the
    settings or the app). Read by every effect, so kept for `ttl_s`: a bot registered while
    workers run is used by them within that long."""

    def __init__(self, store: BotStore, *, ttl_s: float = 10.0) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, BotRecord | None]] = {}

    async def v2_bot(self, member_id: str) -> BotRecord | None:
        """The portal's v2 bot (the lowest id if we registered several), or None."""
        now = time.monotonic()
        cached = self._cache.get(member_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        records = sorted(await self._store.of_portal(member_id), key=lambda r: r.bot_id)
        found = records[0] if records else None
        self._cache[member_id] = (now + self._ttl_s, found)
        return found

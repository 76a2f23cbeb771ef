"""One poller per job across the cluster: a fenced lease in Redis, and the cursor it guards.

The portal keeps one queue per bot (`imbot.v2.Event.get`) and one per app (`event.offline.get`),
with no consumer groups: two pollers of one queue read the same rows, and either one's `offset`
deletes them for both (docs/bitrix24-bots-v2.md "Fetch mode"). So every worker process runs a
poller for every queue, and only the holder of that queue's lease polls:

    lease = PollLease(redis, keys, member_id, "bot-456", holder="host:pid", ttl_ms=10_000)
    if await lease.acquire():          # or renew() while we hold it
        cursor = await lease.cursor()  # e.g. {"offset": "88154"}
        ...
        await lease.save({"offset": "88160"})   # False: the lease is no longer ours

A token from `INCR <key>:fence` names each holding, so a poller that stalled past its lease
(GC pause, a frozen VM) and wakes up cannot write the cursor over its successor's: `save` and
`renew` compare the token inside one Lua call. A standby takes over at most one lease period
after the holder died (its lease expires by itself), and a clean stop hands over at once
(`release`).

Safety of the portal's queue does not rest on the lease: a poller confirms only what it has
itself stored (fetcher.py), so even two pollers at once lose nothing; the lease keeps the
request budget to one poll per queue and the order of handling to the portal's.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis

from orchestrator.pipeline.keys import Keys
from orchestrator.redis.client import aw

__all__ = ["PollLease"]

# KEYS: lease, fence. ARGV: token ("" to take a new one), ttl ms, holder.
# Returns the token held, or false. A new token only when nobody holds the lease.
_LEASE = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' then
  if current and string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return ARGV[1]
  end
  return false
end
if current then return false end
local token = tostring(redis.call('INCR', KEYS[2]))
redis.call('SET', KEYS[1], token .. '|' .. ARGV[3], 'PX', ARGV[2])
return token
"""

# KEYS: lease, cursor. ARGV: token, then field/value pairs. 1 when written, 0 when not ours.
_SAVE = """
local current = redis.call('GET', KEYS[1])
if not current or string.sub(current, 1, #ARGV[1] + 1) ~= ARGV[1] .. '|' then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS: lease. ARGV: token. Deletes the lease only if it is still ours.
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class PollLease:
    """The lease on one poller of one portal, and the cursor only its holder writes."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        member_id: str,
        name: str,
        *,
        holder: str,
        ttl_ms: int,
    ) -> None:
        base = keys.poller(member_id, name)
        self.name = name
        self.member_id = member_id
        self._redis = redis
        self._cursor_key = base
        self._lease_key = f"{base}:lease"
        self._fence_key = f"{base}:fence"
        self._holder = holder
        self.ttl_ms = ttl_ms
        self._lease = redis.register_script(_LEASE)
        self._save = redis.register_script(_SAVE)
        self._release = redis.register_script(_RELEASE)
        self.token: str | None = None

    @property
    def held(self) -> bool:
        """Whether this process believes it holds the lease (renew() tells for sure)."""
        return self.token is not None

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it, or keep it if we do."""
        if self.token is not None:
            return await self.renew()
        got = await self._lease([self._lease_key, self._fence_key], ["", self.ttl_ms, self._holder])
        self.token = got.decode() if got else None
        return self.token is not None

    async def renew(self) -> bool:
        """Extend our lease; False (and forgotten) when it is not ours any more."""
        if self.token is None:
            return False
        got = await self._lease(
            [self._lease_key, self._fence_key], [self.token, self.ttl_ms, self._holder]
        )
        if not got:
            self.token = None
        return self.token is not None

    async def release(self) -> None:
        """Hand the lease over at once (a clean stop)."""
        if self.token is not None:
            token, self.token = self.token, None
            await self._release([self._lease_key], [token])

    async def holder(self) -> str | None:
        """Who holds the lease now ("<token>|<holder>"), for status and tests."""
        value = await aw(self._redis.get(self._lease_key))
        return value.decode() if value else None

    async def cursor(self) -> dict[str, str]:
        """The cursor as last saved (by any holder)."""
        raw: dict[bytes, bytes] = await aw(self._redis.hgetall(self._cursor_key))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def save(self, fields: Mapping[str, str | int]) -> bool:
        """Write cursor fields if the lease is still ours; False (and forgotten) otherwise."""
        if self.token is None:
            return False
        args: list[str | int] = [self.token]
        for field, value in fields.items():
            args += [field, str(value)]
        if int(await self._save([self._lease_key, self._cursor_key], args)):
            return True
        self.token = None
        return False

"""The portal registry: member_id -> domain, endpoints and the sha256 of its application token.

Tokens are stored hashed: a leaked Redis dump does not let anyone forge events, and comparing
two fixed-length digests with `hmac.compare_digest` takes the same time whatever the input.

`offline_events` ("1") marks a portal where `register-bot --api v2` bound the Open Lines events
offline (orchestrator/cli/register_bot_v2.py): the portals the offline consumer drains
(orchestrator/ingress/pull/offline.py). A re-install keeps it (its HSET leaves other fields);
an uninstall drops the whole record. Beside it `notice_min_timeout` keeps the `minTimeout` that
register-bot bound onOfflineEvent with (absent on records flagged before it was kept: the
portal's default, 1 s), so the consumer knows whether the portal may drop notices.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.queue import now_ms
from orchestrator.redis.client import aw
from orchestrator.settings import PortalConfig

__all__ = ["ConfiguredPortal", "Portal", "Portals", "token_hash"]


def token_hash(token: str) -> str:
    """The stored form of an application token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Portal:
    """One registered portal (no secret in clear)."""

    member_id: str
    domain: str
    token_sha256: str
    client_endpoint: str = ""
    server_endpoint: str = ""
    source: str = ""
    installed_ms: int = 0
    offline_events: bool = False
    notice_min_timeout: int = 1  # seconds; the portal's default where register-bot kept none

    def verify(self, application_token: str) -> bool:
        """Whether an event's token is the one stored for this portal (constant time)."""
        return hmac.compare_digest(self.token_sha256, token_hash(application_token))


@dataclass(frozen=True, slots=True)
class ConfiguredPortal:
    """The webhook portal the settings name (B24_MEMBER_ID + B24_APPLICATION_TOKEN)."""

    member_id: str
    domain: str
    application_token: str = field(repr=False)

    @classmethod
    def from_settings(cls, settings: PortalConfig) -> ConfiguredPortal | None:
        """The configured portal, or None when the settings name none."""
        if not (settings.b24_member_id and settings.b24_application_token):
            return None
        url = settings.b24_webhook_url or ""
        domain = url.split("/")[2] if url.count("/") >= 2 else ""
        return cls(settings.b24_member_id, domain, settings.b24_application_token)


# KEYS: the portal hash; ARGV: the notice minTimeout. Sets the flag only on a record that exists
# (never a partial record).
_FLAG_IF_REGISTERED = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'offline_events', '1', 'notice_min_timeout', ARGV[1])
  return 1
end
return 0
"""


class Portals:
    """Registry operations on one Redis."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def get(self, member_id: str) -> Portal | None:
        """The portal, or None when it is not registered."""
        raw: dict[bytes, bytes] = await aw(self._redis.hgetall(self._keys.portal(member_id)))
        if not raw:
            return None
        f = {k.decode(): v.decode() for k, v in raw.items()}
        return Portal(
            member_id=member_id,
            domain=f.get("domain", ""),
            token_sha256=f.get("token_sha256", ""),
            client_endpoint=f.get("client_endpoint", ""),
            server_endpoint=f.get("server_endpoint", ""),
            source=f.get("source", ""),
            installed_ms=int(f.get("installed_ms", "0")),
            offline_events=f.get("offline_events") == "1",
            notice_min_timeout=int(f.get("notice_min_timeout", "1")),
        )

    async def register(
        self,
        member_id: str,
        domain: str,
        application_token: str,
        *,
        client_endpoint: str = "",
        server_endpoint: str = "",
        source: str = "install",
    ) -> Portal:
        """Create or replace a portal's record."""
        portal = Portal(
            member_id,
            domain,
            token_hash(application_token),
            client_endpoint,
            server_endpoint,
            source,
            now_ms(),
        )
        mapping = {
            "domain": portal.domain,
            "token_sha256": portal.token_sha256,
            "client_endpoint": portal.client_endpoint,
            "server_endpoint": portal.server_endpoint,
            "source": portal.source,
            "installed_ms": str(portal.installed_ms),
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.portal(member_id), mapping=mapping)
            pipe.sadd(self._keys.portals, member_id)
            await pipe.execute()
        return portal

    async def ensure(self, configured: ConfiguredPortal) -> Portal:
        """The configured portal's record, written again when it is missing or re-keyed (at
        start, and whenever Redis has lost it)."""
        portal = await self.get(configured.member_id)
        if portal is not None and portal.verify(configured.application_token):
            return portal
        return await self.register(
            configured.member_id,
            configured.domain,
            configured.application_token,
            source="settings",
        )

    async def remove(self, member_id: str) -> bool:
        """Forget a portal and its REST credentials; True when it was registered."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.portal(member_id))
            pipe.delete(self._keys.creds(member_id))
            pipe.srem(self._keys.portals, member_id)
            deleted, _, _ = await pipe.execute()
        return bool(deleted)

    async def mark_offline_events(self, member_id: str, notice_min_timeout: int = 1) -> bool:
        """Flag a registered portal whose Open Lines events we bound offline, with the
        `minTimeout` its onOfflineEvent binding has; False (and nothing written) when the portal
        is not registered."""
        key = self._keys.portal(member_id)
        flagged = await aw(self._redis.eval(_FLAG_IF_REGISTERED, 1, key, str(notice_min_timeout)))
        return bool(flagged)

    async def offline_event_portals(self) -> list[str]:
        """Member ids of the registered portals flagged by `mark_offline_events`, sorted."""
        return [p.member_id for p in await self.all() if p.offline_events]

    async def all(self) -> list[Portal]:
        """Every registered portal, by member id."""
        members = sorted(m.decode() for m in await aw(self._redis.smembers(self._keys.portals)))
        found = [await self.get(m) for m in members]
        return [p for p in found if p is not None]

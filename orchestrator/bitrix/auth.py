"""Portal credentials in Redis: inbound webhooks and OAuth apps, with one cluster-wide refresh.

A portal's credentials are the hash `{prefix}:{<member_id>}:creds` (fields below), the only
place an access or refresh token is kept; who the portal is and the hash of its event token
live apart, in the registry (orchestrator/ingress/portals.py). OAuth credentials are written only
from an answer of the OAuth server (orchestrator/ingress/install.py verifies an install that way),
and a refresh never moves a portal's endpoint to another host: the REST client calls no host but the
verified portal's.
OAuth records carry a `version`; the one process holding the refresh lock exchanges the refresh
token and writes the new pair with a compare-and-set on that version, while every other caller
(in any process) waits for the version to move and re-reads. Refresh tokens rotate, so a second
refresh would spend a token that is no longer valid: exactly one exchange per expiry is the point.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import structlog

from orchestrator.bitrix import metrics
from orchestrator.bitrix.transport import Transport
from orchestrator.errors import ConfigurationError, OAuthError
from orchestrator.pipeline.keys import Keys

log = structlog.get_logger(__name__)

WEBHOOK = "webhook"
OAUTH = "oauth"
_LOCK_TTL_MS = 30_000
_WAIT_STEP_S = 0.05
_REFRESH_DEADLINE_S = 30.0

# Write the rotated pair only if nobody else did since we read `version` (ARGV[1]).
_CAS_SCRIPT = """
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
"""
_UNLOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class PortalCredentials:
    """How to reach one portal: its REST base URL and, for OAuth, the current token pair."""

    member_id: str
    kind: str
    endpoint: str
    access_token: str = ""
    refresh_token: str = ""
    expires: int = 0
    version: int = 0
    domain: str = ""

    def url(self, method: str) -> str:
        """The URL of `method` on this portal."""
        return f"{self.endpoint.rstrip('/')}/{method}.json"


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def endpoint_host(url: str) -> str:
    """The host[:port] a REST endpoint URL names, lower-case ('' when it names none)."""
    try:
        return (urlsplit(url).netloc or "").lower()
    except ValueError:
        return ""


async def refresh_grant(
    transport: Transport, url: str, client_id: str, client_secret: str, refresh_token: str
) -> dict[str, Any]:
    """Spend a refresh token at the OAuth server: its answer (a new pair, and who the portal is:
    `member_id`, `client_endpoint`, `server_endpoint`), or OAuthError with the server's code.
    A network failure leaves as TransportError."""
    raw = await transport.get_json(
        url,
        {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        },
    )
    try:
        body = json.loads(raw.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OAuthError("INVALID_RESPONSE", f"token endpoint: HTTP {raw.status}") from exc
    if not isinstance(body, dict) or "error" in body or "access_token" not in body:
        body = body if isinstance(body, dict) else {}
        raise OAuthError(
            str(body.get("error", "INVALID_RESPONSE")), str(body.get("error_description", ""))
        )
    return body


class AuthStore:
    """Reads, registers and refreshes portal credentials kept in Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str,
        transport: Transport | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        oauth_url: str = "https://oauth.bitrix.info/oauth/token/",
        webhooks: Mapping[str, str] | None = None,
    ) -> None:
        self._redis = redis
        # member_id -> URL of the webhook portals the settings name: written again whenever
        # their record is missing (a Redis that lost its data loses no configured portal)
        self._webhooks = dict(webhooks or {})
        self._prefix = prefix
        self._keys = Keys(prefix)
        self._transport = transport
        self._client_id = client_id
        self._client_secret = client_secret
        self._oauth_url = oauth_url
        self._cache: dict[str, PortalCredentials] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._cas = redis.register_script(_CAS_SCRIPT)
        self._unlock = redis.register_script(_UNLOCK_SCRIPT)

    def key(self, member_id: str) -> str:
        """The portal record's key."""
        return self._keys.creds(member_id)

    async def load(self, member_id: str) -> PortalCredentials:
        """Read the record from Redis (bypassing the process cache)."""
        # redis-py types its commands as sync-or-async; on the asyncio client they are awaitables.
        pending = cast(Awaitable[dict[bytes, bytes]], self._redis.hgetall(self.key(member_id)))
        raw = _decode(await pending)
        if not raw and member_id in self._webhooks:
            return await self.register_webhook(member_id, self._webhooks[member_id])
        if not raw:
            raise ConfigurationError(f"portal {member_id} is not registered")
        creds = PortalCredentials(
            member_id=member_id,
            kind=raw["kind"],
            endpoint=raw["endpoint"],
            access_token=raw.get("access_token", ""),
            refresh_token=raw.get("refresh_token", ""),
            expires=int(float(raw.get("expires", "0") or 0)),
            version=int(raw.get("version", "0")),
            domain=raw.get("domain", ""),
        )
        self._cache[member_id] = creds
        return creds

    async def get(self, member_id: str) -> PortalCredentials:
        """The credentials to use now (cached in process until a refresh moves them)."""
        cached = self._cache.get(member_id)
        return cached if cached is not None else await self.load(member_id)

    async def _write(self, member_id: str, fields: dict[str, str]) -> PortalCredentials:
        key = self.key(member_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.hincrby(key, "version", 1)
            await pipe.execute()
        return await self.load(member_id)

    async def register_webhook(self, member_id: str, webhook_url: str) -> PortalCredentials:
        """Store an inbound-webhook portal (no tokens; webhooks do not expire)."""
        return await self._write(member_id, {"kind": WEBHOOK, "endpoint": webhook_url})

    async def register_oauth(
        self,
        member_id: str,
        endpoint: str,
        *,
        access_token: str,
        refresh_token: str,
        expires: int,
    ) -> PortalCredentials:
        """Store an OAuth portal's verified endpoint and token pair (ingress/install.py)."""
        domain = endpoint_host(endpoint)
        if not domain:
            raise ConfigurationError(f"OAuth endpoint {endpoint[:80]!r} names no host")
        fields = {
            "kind": OAUTH,
            "endpoint": endpoint,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires": str(expires),
            "domain": domain,
            "registered_at": str(int(time.time())),
        }
        return await self._write(member_id, fields)

    async def unregister(self, member_id: str) -> None:
        """Forget a portal (ONAPPUNINSTALL)."""
        self._cache.pop(member_id, None)
        await self._redis.delete(self.key(member_id))

    async def refresh(self, member_id: str, stale: PortalCredentials) -> PortalCredentials:
        """Credentials newer than `stale`: refreshed here or by whoever got there first."""
        lock = self._locks.setdefault(member_id, asyncio.Lock())
        async with lock:
            current = await self.load(member_id)
            if current.version != stale.version or current.kind != OAUTH:
                return current
            return await self._refresh_cluster(member_id, stale)

    async def _refresh_cluster(self, member_id: str, stale: PortalCredentials) -> PortalCredentials:
        lock_key = f"{self._prefix}:{{{member_id}}}:refresh-lock"
        deadline = time.monotonic() + _REFRESH_DEADLINE_S
        while time.monotonic() < deadline:
            owner = secrets.token_hex(8)
            if await self._redis.set(lock_key, owner, nx=True, px=_LOCK_TTL_MS):
                try:
                    current = await self.load(member_id)
                    if current.version != stale.version:
                        return current
                    return await self._exchange(current)
                finally:
                    await self._unlock(keys=[lock_key], args=[owner])
            # Someone else is refreshing: wait for the version to move (or their lock to lapse).
            # Polling, not pub/sub: the holder may die, and then its lock's TTL is the signal.
            while await self._redis.exists(lock_key) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(_WAIT_STEP_S)
            current = await self.load(member_id)
            if current.version != stale.version:
                return current
        raise OAuthError("refresh_timeout", f"no refresh of {member_id} within the deadline")

    async def _exchange(self, current: PortalCredentials) -> PortalCredentials:
        """Spend the refresh token at the OAuth server and store the rotated pair (CAS)."""
        if self._transport is None or not self._client_id or not self._client_secret:
            raise ConfigurationError("OAuth refresh needs a transport, client_id and client_secret")
        body = await refresh_grant(
            self._transport,
            self._oauth_url,
            self._client_id,
            self._client_secret,
            current.refresh_token,
        )
        fields = [
            "access_token",
            str(body["access_token"]),
            "refresh_token",
            str(body.get("refresh_token") or current.refresh_token),
            "expires",
            str(body.get("expires") or 0),
        ]
        moved = str(body.get("client_endpoint") or "")
        if moved and endpoint_host(moved) == endpoint_host(current.endpoint):
            fields += ["endpoint", moved]
        elif moved:
            # the endpoint was verified once; an answer naming another host is not followed
            log.warning("oauth_endpoint_move_refused", member_id=current.member_id)
        await self._cas(keys=[self.key(current.member_id)], args=[str(current.version), *fields])
        metrics.TOKEN_REFRESHES.labels(current.member_id).inc()
        return await self.load(current.member_id)

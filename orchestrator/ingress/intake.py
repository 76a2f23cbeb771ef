"""Verify an event against the portal registry and queue it: the path shared by the ingress and
the spool replayer, so a replayed event is checked exactly like a live one.

An event counts when its portal is registered and its `application_token` matches the stored
hash. A portal is registered only by a verified install (orchestrator/ingress/install.py: the OAuth
server says who it is), by the settings (the webhook portal) or by an operator (`portals add`).
What is queued is the event's domain inputs (events/convert.py), converted once here, so a
worker never parses the wire event again, and the inbox, history and dead letters hold no token
(the credentials hash is the only place tokens live, orchestrator/bitrix/auth.py).

ONOFFLINEEVENT is verified like every event but never queued: it only says the portal's offline
queue has rows (a hint the portal may drop, docs/bitrix24-offline-events.md §1.10), so its
member id is published on `Keys.offline_wake` for the offline consumers
(orchestrator/ingress/pull/offline.py) and its tokens go nowhere. A publish that fails loses
nothing: the consumers' periodic sweep reads the same rows.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import structlog
from redis.exceptions import RedisError

from orchestrator.bitrix.auth import AuthStore
from orchestrator.bitrix.bot_store import BotStore
from orchestrator.errors import InvalidEvent
from orchestrator.events.convert import stored_inputs
from orchestrator.events.formdata import decode_form
from orchestrator.events.models import AppInstall, Event, OfflineEventNotice, parse_event
from orchestrator.ingress.install import InstallVerifier
from orchestrator.ingress.portals import ConfiguredPortal, Portal, Portals
from orchestrator.observe import metrics
from orchestrator.pipeline.keys import PORTAL_DIALOG
from orchestrator.pipeline.records import IngestResult
from orchestrator.pipeline.store import Store

__all__ = [
    "CUSTOM",
    "ERROR_CODES",
    "FETCHED",
    "PORTAL_CACHE_S",
    "TOKEN_KEYS",
    "Intake",
    "error_code",
    "fetched_payload",
    "ingest_event",
    "parse_body",
    "spooled_body",
]

log = structlog.get_logger(__name__)

# How long an ingress trusts its copy of a portal's record: saves a Redis round trip per event.
# A token mismatch always re-reads the registry, so a re-key is seen at once; an uninstall done
# through another ingress replica is seen here within this many seconds.
PORTAL_CACHE_S = 2.0

# How the portal prefixes a bot token to make it an owner key (and an application token).
CUSTOM = "custom"

# The `error` field of a 4xx body, by status (the `reason` field says more).
ERROR_CODES = {
    400: "malformed",
    401: "forged_token",
    403: "unknown_portal",
    408: "body_timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unknown_event",
}


# Secrets an event may carry (top level `auth`, and per bot in `data[BOT][<id>]` and its `AUTH`):
# verified or of no use to us, and never stored.
TOKEN_KEYS = frozenset({"application_token", "access_token", "refresh_token"})


def error_code(exc: InvalidEvent) -> str:
    """The short code a refused event is counted and answered under."""
    return exc.code or ERROR_CODES.get(exc.status, "rejected")


def parse_body(body: bytes, content_type: str) -> tuple[dict[str, Any], Event]:
    """Decode and validate a body; raises InvalidEvent (pure, no I/O)."""
    payload = decode_form(body, content_type)
    return payload, parse_event(payload)


def spooled_body(event: Event, payload: Mapping[str, Any]) -> bytes:
    """What the spool keeps of an event it takes while Redis is out of reach (as JSON, which
    `parse_body` reads back): the application token, to verify it at replay, and no access or
    refresh token — but an install's refresh token, which is its proof (install.py)."""
    drop = _SPOOL_DROP_INSTALL if isinstance(event, AppInstall) else _SPOOL_DROP
    return json.dumps(_without(payload, drop), separators=(",", ":")).encode()


_SPOOL_DROP = TOKEN_KEYS - {"application_token"}
_SPOOL_DROP_INSTALL = frozenset({"access_token"})


def _without(value: Any, keys: frozenset[str]) -> Any:
    # most values are strings: they are copied without a call (this runs on every event)
    if isinstance(value, Mapping):
        return {
            k: v if isinstance(v, str) else _without(v, keys)
            for k, v in value.items()
            if k not in keys
        }
    if isinstance(value, list):
        return [v if isinstance(v, str) else _without(v, keys) for v in value]
    return value


# The `auth[application_token]` of an event we fetched ourselves (orchestrator/ingress/pull/):
# it never travelled with one, and needs no check: we asked the portal for it over an
# authenticated REST call.
FETCHED = "fetched-from-portal"


def fetched_payload(
    name: str, data: Mapping[str, Any], *, member_id: str, ts: int, **extra: Any
) -> dict[str, Any]:
    """A fetched event in the envelope of a pushed one, so it parses with the same models and
    converts to the same inputs (and the same dedup key: pushed and fetched count once)."""
    return {
        "event": name,
        "data": dict(data),
        "ts": ts,
        "auth": {"member_id": member_id, "domain": member_id, "application_token": FETCHED},
        **extra,
    }


async def ingest_event(store: Store, event: Event, received_ms: int | None = None) -> IngestResult:
    """Dedup + append + schedule the event's inputs in its dialog, in one Lua call: the path
    every way in shares (POSTs, spool replays, the bot event fetcher, offline events)."""
    result, _ = await store.ingest(
        event.member_id,
        event.dialog_id or PORTAL_DIALOG,
        event.dedup_key,
        event.name,
        event.ts,
        stored_inputs(event),
        received_ms,
    )
    return result


class Intake:
    """The portal check and the one-call ingest."""

    def __init__(
        self,
        store: Store,
        portals: Portals,
        installs: InstallVerifier,
        credentials: AuthStore,
        configured: ConfiguredPortal | None = None,
        bots: BotStore | None = None,
    ) -> None:
        self.store = store
        self.bots = bots
        self.portals = portals
        self.installs = installs
        self.credentials = credentials
        self.configured = configured
        self._cache: dict[str, tuple[float, Portal]] = {}

    async def ensure_configured(self) -> None:
        """Register the portal the settings name, if any (at start; after a loss of Redis)."""
        if self.configured is not None:
            await self.portals.ensure(self.configured)
            self._cache.pop(self.configured.member_id, None)

    async def _portal(self, member_id: str, *, fresh: bool = False) -> Portal | None:
        now = time.monotonic()
        cached = None if fresh else self._cache.get(member_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        portal = await self.portals.get(member_id)
        if portal is None and self.configured and member_id == self.configured.member_id:
            # the settings vouch for it: a Redis that lost its data loses no configured portal
            portal = await self.portals.ensure(self.configured)
        if portal is None:
            self._cache.pop(member_id, None)
        else:
            self._cache[member_id] = (now + PORTAL_CACHE_S, portal)
        return portal

    async def accept(self, event: Event, received_ms: int | None = None) -> IngestResult:
        """Verify the event (an install at the OAuth server), then dedup + append + schedule."""
        if isinstance(event, AppInstall):
            return await self._install(event, received_ms)
        portal = await self._portal(event.member_id)
        if portal is not None and not portal.verify(event.application_token):
            portal = await self._portal(event.member_id, fresh=True)  # re-keyed meanwhile?
        if await self._bot_signed(event):
            pass  # a bot we registered on this portal, signing with its own token
        elif portal is None:
            raise InvalidEvent(f"portal {event.member_id[:40]!r} is not registered", status=403)
        elif not portal.verify(event.application_token):
            raise InvalidEvent("application_token does not match the portal's", status=401)
        if isinstance(event, OfflineEventNotice):
            return await self._wake(event.member_id)
        result = await self._ingest(event, received_ms)
        if event.name == "ONAPPUNINSTALL":
            await self.portals.remove(event.member_id)  # its credentials go with it
            self._cache.pop(event.member_id, None)
        return result

    async def _bot_signed(self, event: Event) -> bool:
        """A webhook-mode v2 bot owned by its token (no app) signs its events with `"custom"` +
        that token (docs/bitrix24-bots-v2.md "Events"): one of the portal's bots we keep."""
        token = event.application_token
        if (
            self.bots is None
            or not event.name.startswith("ONIMBOTV2")
            or not token.startswith(CUSTOM)
        ):
            return False
        records = await self.bots.of_portal(event.member_id)
        return any(
            r.bot_token and hmac.compare_digest(token.encode(), (CUSTOM + r.bot_token).encode())
            for r in records
        )

    async def _install(self, event: AppInstall, received_ms: int | None) -> IngestResult:
        """Register the portal the OAuth server vouches for (a re-install rotates its tokens and
        may bring a new application_token), then queue the event."""
        portal = await self._portal(event.member_id, fresh=True)  # Redis down: spooled as is
        if (
            portal is not None
            and portal.verify(event.application_token)
            and await self.store.accepted_before(event.member_id, event.dedup_key)
        ):
            # a re-delivery of an install we applied: its refresh token is spent by now
            return IngestResult.DUPLICATE
        verified = await self.installs.verify(event)
        await self.credentials.register_oauth(
            verified.member_id,
            verified.client_endpoint,
            access_token=verified.access_token,
            refresh_token=verified.refresh_token,
            expires=verified.expires,
        )
        await self.portals.register(
            verified.member_id,
            verified.domain,
            event.application_token,
            client_endpoint=verified.client_endpoint,
            server_endpoint=verified.server_endpoint,
            source="install",
        )
        self._cache.pop(event.member_id, None)
        return await self._ingest(event, received_ms)

    async def _wake(self, member_id: str) -> IngestResult:
        """Tell the offline consumers to drain this portal now; queue and keep nothing."""
        try:
            await self.store.redis.publish(self.store.keys.offline_wake, member_id)
        except (RedisError, OSError) as exc:
            metrics.OFFLINE_WAKEUPS.labels(outcome="publish_failed").inc()
            log.warning("offline_wake_lost", member_id=member_id, error=type(exc).__name__)
        else:
            metrics.OFFLINE_WAKEUPS.labels(outcome="published").inc()
        return IngestResult.HINT

    async def _ingest(self, event: Event, received_ms: int | None) -> IngestResult:
        return await ingest_event(self.store, event, received_ms)

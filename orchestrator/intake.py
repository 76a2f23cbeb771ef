"""Verify an event against the portal registry and queue it: the path shared by the ingress and
the spool replayer, so a replayed event is checked exactly like a live one."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import InvalidEvent
from orchestrator.events import Event, parse_event
from orchestrator.formdata import decode_form
from orchestrator.keys import PORTAL_DIALOG
from orchestrator.registry import Portal, Portals
from orchestrator.store import IngestResult, Store

__all__ = ["ERROR_CODES", "PORTAL_CACHE_S", "Intake", "error_code", "parse_body"]

# How long an ingress trusts its copy of a portal's record: saves a Redis round trip per event.
# A token mismatch always re-reads the registry, so a re-key is seen at once; an uninstall done
# through another ingress replica is seen here within this many seconds.
PORTAL_CACHE_S = 2.0

# The `error` field of a 4xx body, by status (the `reason` field says more).
ERROR_CODES = {
    400: "malformed",
    401: "forged_token",
    403: "unknown_portal",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unknown_event",
}


def error_code(status: int) -> str:
    """The short code a refused event is counted and answered under."""
    return ERROR_CODES.get(status, "rejected")


def parse_body(body: bytes, content_type: str) -> tuple[dict[str, Any], Event]:
    """Decode and validate a body; raises InvalidEvent (pure, no I/O)."""
    payload = decode_form(body, content_type)
    return payload, parse_event(payload)


def _stored_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as queued: application tokens (top-level and per-bot) are verified and of
    no further use, so they are not kept in Redis."""
    return _without_tokens(payload)  # type: ignore[no-any-return]


def _without_tokens(value: Any) -> Any:
    # most values are strings: they are copied without a call (this runs on every event)
    if isinstance(value, Mapping):
        return {
            k: v if isinstance(v, str) else _without_tokens(v)
            for k, v in value.items()
            if k != "application_token"
        }
    if isinstance(value, list):
        return [v if isinstance(v, str) else _without_tokens(v) for v in value]
    return value


class Intake:
    """The portal check and the one-call ingest."""

    def __init__(self, store: Store, portals: Portals) -> None:
        self.store = store
        self.portals = portals
        self._cache: dict[str, tuple[float, Portal]] = {}

    async def _portal(self, member_id: str, *, fresh: bool = False) -> Portal | None:
        now = time.monotonic()
        cached = None if fresh else self._cache.get(member_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        portal = await self.portals.get(member_id)
        if portal is None:
            self._cache.pop(member_id, None)
        else:
            self._cache[member_id] = (now + PORTAL_CACHE_S, portal)
        return portal

    async def accept(
        self, event: Event, payload: Mapping[str, Any], received_ms: int | None = None
    ) -> IngestResult:
        """Verify the event's token, apply install/uninstall, then dedup + append + schedule."""
        portal = await self._portal(event.member_id)
        if portal is not None and not portal.verify(event.application_token):
            portal = await self._portal(event.member_id, fresh=True)  # re-keyed meanwhile?
        if portal is None:
            if event.name != "ONAPPINSTALL":
                raise InvalidEvent(f"portal {event.member_id[:40]!r} is not registered", status=403)
            # the first install of an unknown portal is how a portal introduces its token
        elif not portal.verify(event.application_token):
            raise InvalidEvent("application_token does not match the portal's", status=401)
        if event.name == "ONAPPINSTALL":
            await self.portals.register(
                event.member_id,
                event.domain,
                event.application_token,
                client_endpoint=event.auth.client_endpoint or "",
                server_endpoint=event.auth.server_endpoint or "",
                source="install",
            )
        result, _ = await self.store.ingest(
            event.member_id,
            event.dialog_id or PORTAL_DIALOG,
            event.dedup_key,
            event.name,
            event.ts,
            _stored_payload(payload),
            received_ms,
        )
        if event.name == "ONAPPUNINSTALL":
            await self.portals.remove(event.member_id)
            self._cache.pop(event.member_id, None)
        elif event.name == "ONAPPINSTALL":
            self._cache.pop(event.member_id, None)
        return result

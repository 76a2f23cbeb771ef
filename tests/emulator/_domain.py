"""Helpers for the portal-domain tests: a seeded Portal whose sink records every event, and a
way to call a method handler the way the platform would (keys upper-cased when the spec says)."""

from __future__ import annotations

from typing import Any

import emulator.methods  # noqa: F401  (registers the handlers)
from emulator.portal import Portal
from emulator.primitives import AuthType, Clock, PortalIdentity, RestError
from emulator.registry import METHODS, CallContext

EVENT_URL = "http://hooks.test/b24/events"
APP_TOKEN = "app-token-1"
ALL_SCOPES = frozenset({"crm", "im", "imbot", "imopenlines", "user", "user_basic"})
OPERATORS = (2, 3, 4)  # seeded queue of line 1
SUPERVISOR = 5
BOT = 6  # the seeded open-line welcome bot


class RecordingSink:
    """An EventSink that keeps (url, payload) pairs instead of POSTing them."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []

    def post(self, url: str, payload: dict[str, Any], note: dict[str, Any] | None = None) -> None:
        self.posts.append((url, payload))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [p for _, p in self.posts if p["event"] == name]

    def names(self) -> list[str]:
        return [p["event"] for _, p in self.posts]


def make_portal(event_url: str | None = EVENT_URL) -> tuple[Portal, RecordingSink]:
    sink = RecordingSink()
    portal = Portal(PortalIdentity("member-1", "acme.example.com", APP_TOKEN), Clock(), sink)
    portal.seed_default(event_url)
    return portal, sink


def call(
    portal: Portal,
    name: str,
    params: dict[str, Any] | None = None,
    *,
    user_id: int | None = None,
    webhook: bool = False,
    scopes: frozenset[str] = ALL_SCOPES,
) -> Any:
    """Run a handler as the platform would: spec lookup, key normalisation, auth-type check."""
    spec = METHODS[name.lower()]
    params = dict(params or {})
    if spec.keys_normalised:
        params = {str(k).upper(): v for k, v in params.items()}
    auth_type: AuthType = "webhook" if webhook else "oauth"
    if auth_type not in spec.auth:
        raise RestError("WRONG_AUTH_TYPE", "Current authorization type is denied", 403)
    ctx = CallContext(
        portal,
        portal.admin_user_id if user_id is None else user_id,
        auth_type,
        None if webhook else portal.app_client_id,
        scopes,
        spec.name,
    )
    return spec.handler(ctx, params)


def listing(result: dict[Any, Any]) -> tuple[list[Any], int, int | None]:
    """Split a list handler's PHP-array answer into rows, total and next."""
    rows = [v for k, v in result.items() if isinstance(k, int)]
    return rows, int(result["total"]), result.get("next")


def statuses(portal: Portal, session_id: int) -> list[int]:
    return [h["status"] for h in portal.sessions[session_id].history]

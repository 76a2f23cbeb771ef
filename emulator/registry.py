"""The seam between the emulator's platform (transport, auth, limits, batch) and its portal
domain (state and method handlers): the method registry and the call context a handler gets.
The types both sides share live one level down, in emulator.primitives.

Shares NO code with orchestrator/bitrix on purpose: one misreading of the portal contract must not
hide in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.primitives import AuthType, RestError

if TYPE_CHECKING:
    from emulator.portal import Portal


@dataclass
class CallContext:
    """Who is calling, as the portal's REST server sees it."""

    portal: Portal
    user_id: int  # the token's user / the webhook's owner
    auth_type: AuthType
    app_client_id: str | None  # OAuth app client_id; None for webhooks
    scopes: frozenset[str]
    method: str  # lower-case method name

    def app_id(self, params: dict[str, Any]) -> str:
        """App identity for bot methods: the OAuth client_id, or 'custom' + CLIENT_ID (webhooks)."""
        if self.auth_type == "oauth" and self.app_client_id:
            return self.app_client_id
        client_id = next((v for k, v in params.items() if k.upper() == "CLIENT_ID"), None)
        if not client_id:
            raise RestError("ACCESS_DENIED", "Access denied! Client ID not specified", 403)
        return f"custom{client_id}"


Handler = Callable[[CallContext, dict[str, Any]], Any]


@dataclass(frozen=True)
class MethodSpec:
    name: str  # lower-case, as the portal registers it
    handler: Handler
    scope: str
    keys_normalised: bool  # True: top-level keys upper-cased before the handler
    auth: frozenset[str] = field(default_factory=lambda: frozenset({"oauth", "webhook"}))


METHODS: dict[str, MethodSpec] = {}


def method(
    name: str,
    *,
    scope: str,
    keys_normalised: bool,
    auth: frozenset[str] = frozenset({"oauth", "webhook"}),
) -> Callable[[Handler], Handler]:
    """Register a handler under a method name (case-insensitive, as on the portal)."""

    def register(fn: Handler) -> Handler:
        key = name.lower()
        METHODS[key] = MethodSpec(key, fn, scope, keys_normalised, auth)
        return fn

    return register

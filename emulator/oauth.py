"""OAuth as the portal and oauth.bitrix.info play it: one installed app per portal, access
tokens that expire, refresh tokens that rotate (the old one dies when used), and the
`/oauth/token/` endpoint with its request and answer shapes [docs/bitrix24.md §3].
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from emulator.primitives import Clock, RestError

REFRESH_TTL_S = 180 * 24 * 3600.0  # refresh tokens live 180 days
CODE_TTL_S = 30.0  # authorization codes are short-lived and one-shot


@dataclass
class AccessGrant:
    """What an access token stands for."""

    user_id: int
    expires_at: float


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires: int
    expires_in: int
    user_id: int


class OAuthError(Exception):
    """An error answer of the token endpoint: {"error", "error_description"} with a status."""

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status


class TokenStore:
    """The tokens of the one app installed on a portal."""

    def __init__(
        self,
        clock: Clock,
        ttl_s: float,
        scopes: frozenset[str],
        app: tuple[str, str] | None = None,
    ) -> None:
        # `app` (client_id, client_secret): the same app installed on another portal too
        self.client_id, self.client_secret = app or (
            f"local.{secrets.token_hex(7)}.{secrets.token_hex(4)}",
            secrets.token_urlsafe(30),
        )
        self.user_id = 0  # the installing user, set once seeded
        self.scopes = scopes
        self.ttl_s = ttl_s
        self.refreshes = 0
        self._clock = clock
        self._access: dict[str, AccessGrant] = {}
        self._refresh: dict[str, tuple[float, int]] = {}  # token -> (expires_at, user_id)
        self._codes: dict[str, float] = {}
        # every token and code ever handed out, used or not (tests scan logs for them)
        self.issued: list[str] = []

    def owns_access(self, token: str) -> bool:
        return token in self._access

    def owns_refresh(self, token: str) -> bool:
        return token in self._refresh

    def owns_code(self, code: str) -> bool:
        return code in self._codes

    def issue_pair(self, user_id: int | None = None) -> TokenPair:
        """A fresh access/refresh pair for `user_id` (default: the installing user)."""
        user = self.user_id if user_id is None else user_id
        now = self._clock.now()
        access, refresh = secrets.token_hex(36), secrets.token_hex(36)
        self._access[access] = AccessGrant(user, now + self.ttl_s)
        self._refresh[refresh] = (now + REFRESH_TTL_S, user)
        self.issued += [access, refresh]
        return TokenPair(access, refresh, int(now + self.ttl_s), int(self.ttl_s), user)

    def issue_code(self) -> str:
        code = secrets.token_hex(20)
        self._codes[code] = self._clock.now() + CODE_TTL_S
        self.issued.append(code)
        return code

    def check(self, token: str) -> AccessGrant:
        """The grant behind a token, or the portal's 401 for an unknown or expired one."""
        grant = self._access.get(token)
        if grant is None:
            raise RestError("invalid_token", "The access token provided is invalid", 401)
        if grant.expires_at <= self._clock.now():
            raise RestError("expired_token", "The access token provided has expired", 401)
        return grant

    def expire_all(self) -> int:
        """Make every live access token expired now (refresh tokens stay valid)."""
        now = self._clock.now()
        live = [g for g in self._access.values() if g.expires_at > now]
        for grant in live:
            grant.expires_at = now
        return len(live)

    def grant(self, params: dict[str, Any]) -> TokenPair:
        """Serve one `/oauth/token/` request: authorization_code or refresh_token."""
        if (
            params.get("client_id") != self.client_id
            or params.get("client_secret") != self.client_secret
        ):
            raise OAuthError("invalid_client", "Invalid client credentials", 401)
        grant_type = params.get("grant_type")
        now = self._clock.now()
        if grant_type == "refresh_token":
            expires_at, user_id = self._refresh.pop(str(params.get("refresh_token", "")), (0.0, 0))
            if expires_at <= now:
                raise OAuthError("invalid_grant", "Invalid refresh token")
            self.refreshes += 1
            return self.issue_pair(user_id)
        if grant_type == "authorization_code":
            code_expiry = self._codes.pop(str(params.get("code", "")), None)
            if code_expiry is None or code_expiry <= now:
                raise OAuthError("invalid_grant", "Invalid authorization code")
            return self.issue_pair()
        raise OAuthError("unsupported_grant_type", "Unsupported grant type")


def token_fields(store: TokenStore, pair: TokenPair) -> dict[str, Any]:
    """The token part of an answer or an event's auth block."""
    return {
        "access_token": pair.access_token,
        "expires": pair.expires,
        "expires_in": pair.expires_in,
        "scope": ",".join(sorted(store.scopes)),
        "refresh_token": pair.refresh_token,
    }


def token_answer(
    store: TokenStore, pair: TokenPair, *, base_url: str, member_id: str, oauth_domain: str
) -> dict[str, Any]:
    """The body oauth.bitrix.info answers a successful token request with."""
    return {
        "access_token": pair.access_token,
        "expires": pair.expires,
        "expires_in": pair.expires_in,
        "scope": ",".join(sorted(store.scopes)),
        "domain": oauth_domain,
        "server_endpoint": f"{base_url}/rest/",
        "status": "L",
        "client_endpoint": f"{base_url}/rest/",
        "member_id": member_id,
        "user_id": pair.user_id,
        "refresh_token": pair.refresh_token,
    }

"""Installs are verified before anything is stored or called.

Anyone can POST an ONAPPINSTALL, and the event body names a `member_id`, a `client_endpoint`
and tokens of the sender's choosing; believed as they came, they would let anyone register a
portal, squat a real portal's `member_id` before it installs, or point our workers' REST calls at
a host of their choosing. So an install counts only once our own OAuth app proves it: its
refresh token is exchanged at the configured OAuth server with our `client_id`/`client_secret`,
and who the portal is — `member_id`, `client_endpoint`, `server_endpoint` — comes from that
server's answer, never from the event (docs/bitrix24.md, "OAuth"). The answer's `domain` is the
OAuth server's own, so the portal's domain is the host its `client_endpoint` names. The exchange
rotates the pair: the install's own tokens are dead afterwards and the answer's pair is stored.

Refused, with nothing stored: no OAuth app configured, an install without a refresh token, a
grant the server refuses, an answer naming another portal or another endpoint than the event,
a domain outside `B24_ALLOWED_DOMAINS`. The OAuth server out of reach is a 503 (the install could
be genuine). Verifications are throttled per process, so a flood of forged installs costs the
OAuth server (and our app's standing there) a bounded number of requests.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog

from orchestrator.bitrix.auth import endpoint_host, refresh_grant
from orchestrator.bitrix.transport import Transport
from orchestrator.errors import InstallRefused, OAuthError, TransportError
from orchestrator.events.models import AppInstall
from orchestrator.observe import metrics
from orchestrator.settings import PortalConfig

__all__ = ["VERIFY_BURST", "VERIFY_PER_S", "VERIFY_TIMEOUT_S", "InstallVerifier", "VerifiedInstall"]

log = structlog.get_logger(__name__)

# Installs are rare (an admin installs the app once per portal): a burst of 20, then 2 a second.
VERIFY_BURST = 20
VERIFY_PER_S = 2.0
VERIFY_TIMEOUT_S = 10.0
THROTTLED_LOG_S = 10.0


@dataclass(frozen=True, slots=True)
class VerifiedInstall:
    """A portal as the OAuth server describes it, with the fresh pair it handed out."""

    member_id: str
    domain: str
    client_endpoint: str
    server_endpoint: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires: int


class _Bucket:
    """A token bucket in process memory (a refused verification costs nobody anything)."""

    def __init__(self, burst: int, per_s: float) -> None:
        self.burst, self.per_s = float(burst), per_s
        self.level, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.at) * self.per_s)
        self.at = now
        if self.level < 1:
            return False
        self.level -= 1
        return True


def _patterns(raw: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in raw.split(",") if p.strip())


class InstallVerifier:
    """Checks an ONAPPINSTALL at the OAuth server (the only place we learn who a portal is)."""

    def __init__(self, settings: PortalConfig, transport: Transport) -> None:
        self.client_id = settings.b24_client_id
        self.client_secret = settings.b24_client_secret
        self.oauth_url = settings.b24_oauth_url
        self.allowed = _patterns(settings.b24_allowed_domains)
        self.transport = transport
        self._bucket = _Bucket(VERIFY_BURST, VERIFY_PER_S)
        self._throttled, self._throttled_logged_at = 0, float("-inf")

    async def verify(self, event: AppInstall) -> VerifiedInstall:
        """The verified portal, or InstallRefused (counted and logged with the reason)."""
        try:
            verified = await self._verify(event)
        except InstallRefused as exc:
            metrics.INSTALLS.labels(outcome=exc.outcome).inc()
            self._log_refusal(exc)
            raise
        metrics.INSTALLS.labels(outcome="verified").inc()
        log.info("install_verified", member_id=verified.member_id, domain=verified.domain)
        return verified

    def _log_refusal(self, exc: InstallRefused) -> None:
        # a flood is throttled, and so is its logging: one line per THROTTLED_LOG_S says how many
        if exc.outcome != "throttled":
            log.warning("install_refused", outcome=exc.outcome, reason=exc.reason)
            return
        self._throttled += 1
        now = time.monotonic()
        if now - self._throttled_logged_at >= THROTTLED_LOG_S:
            log.warning("installs_throttled", refused=self._throttled, per_s=VERIFY_PER_S)
            self._throttled, self._throttled_logged_at = 0, now

    async def _verify(self, event: AppInstall) -> VerifiedInstall:
        client_id, client_secret = self.client_id, self.client_secret
        if not (client_id and client_secret):
            raise InstallRefused(
                "no_oauth_app",
                "no OAuth app is configured (B24_CLIENT_ID, B24_CLIENT_SECRET): "
                "an install cannot be verified",
            )
        if not event.auth.refresh_token:
            raise InstallRefused("no_refresh_token", "the install carries no refresh_token")
        if not self._bucket.take():
            raise InstallRefused(
                "throttled",
                "too many installs to verify at once; install again shortly",
                status=429,
            )
        answer = await self._grant(client_id, client_secret, event.auth.refresh_token)
        return self._check(event, answer)

    async def _grant(
        self, client_id: str, client_secret: str, refresh_token: str
    ) -> dict[str, Any]:
        try:
            return await refresh_grant(
                self.transport, self.oauth_url, client_id, client_secret, refresh_token
            )
        except OAuthError as exc:
            raise InstallRefused(
                "oauth_refused", f"the OAuth server refused the install's grant: {exc.code}"
            ) from exc
        except TransportError as exc:
            raise InstallRefused(
                "oauth_unreachable", f"the OAuth server is out of reach: {exc}", status=503
            ) from exc

    def _check(self, event: AppInstall, answer: dict[str, Any]) -> VerifiedInstall:
        """The answer's portal, if the event described the same one and it may install."""
        member_id = str(answer.get("member_id") or "")
        endpoint = str(answer.get("client_endpoint") or "")
        domain = endpoint_host(endpoint)
        if member_id != event.member_id:
            raise InstallRefused("other_portal", "the OAuth server names another portal")
        if not domain or urlsplit(endpoint).scheme not in ("http", "https"):
            raise InstallRefused("endpoint_mismatch", "the OAuth server names no REST endpoint")
        if not answer.get("refresh_token"):
            raise InstallRefused("oauth_refused", "the OAuth server's answer has no refresh_token")
        claimed = (event.auth.client_endpoint or endpoint).rstrip("/")
        if domain != event.domain.lower() or claimed != endpoint.rstrip("/"):
            raise InstallRefused(
                "endpoint_mismatch", "the event's domain or endpoint is not the verified portal's"
            )
        host = urlsplit(endpoint).hostname or ""
        if self.allowed and not any(fnmatch.fnmatchcase(host, p) for p in self.allowed):
            raise InstallRefused("domain_not_allowed", f"{host[:80]} is not in B24_ALLOWED_DOMAINS")
        return VerifiedInstall(
            member_id=member_id,
            domain=domain,
            client_endpoint=endpoint,
            server_endpoint=str(answer.get("server_endpoint") or ""),
            access_token=str(answer["access_token"]),
            refresh_token=str(answer["refresh_token"]),
            expires=_int(answer.get("expires")),
        )


def _int(value: Any) -> int:
    try:
        return int(float(value or 0))
    except (TypeError, ValueError):
        return 0  # unknown expiry: the first call's expired_token refreshes it

"""The emulator's live state: its configuration, and per portal the domain (B's Portal) wrapped
with what the platform keeps for it — clock, throttles, tokens, webhooks, faults, counters."""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.bots_v2 import V2Settings
from emulator.delivery import EventDelivery
from emulator.faults import Faults
from emulator.features import Features
from emulator.limits import PLANS, LeakyBucket, OperatingBudget
from emulator.oauth import TokenPair, TokenStore, token_fields
from emulator.primitives import AuthType, Clock, EventSink, PortalIdentity, RestError
from emulator.push_drops import PushDrops
from emulator.transport import Credentials

if TYPE_CHECKING:
    from emulator.portal import Portal

PortalFactory = Callable[[PortalIdentity, Clock, EventSink], "Portal"]

# Scopes of the seeded webhook and app: everything the Open Lines bot flow touches.
DEFAULT_SCOPES = ("crm", "im", "imbot", "imopenlines", "user", "user_basic")
# Methods of these scopes need no grant (`batch`, `event.*`, `app.info`... live in "basic").
GLOBAL_SCOPES = frozenset({"", "basic", "global"})


@dataclass
class EmulatorConfig:
    """How the emulator plays its portals; the defaults are a standard-plan cloud portal."""

    plan: str = "standard"
    bucket_capacity: float | None = None  # overrides the plan's bucket size
    drain_per_s: float | None = None  # overrides the plan's drain rate
    token_ttl_s: float = 3600.0
    operating_limit_s: float = 480.0
    method_exec_time: dict[str, float] = field(default_factory=dict)  # simulated seconds
    event_url: str | None = None
    # Seed the app's v1 bot as line 1's welcome bot with the Open Lines events bound online (a
    # deployment from before the v2 API); False: the app registers its own bot (v2) and binds
    # what it needs, as on a fresh portal.
    v1_bot: bool = True
    portals: int = 1
    host: str = "127.0.0.1"
    port: int = 0
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    auth_error_status: int = 401  # code says 401, docs say 403 (§1.5)
    fault_timeout_s: float = 30.0  # how long a "timeout" fault holds a request
    frozen_clock: bool = False  # portal clocks move only by advance-time
    tick_interval_s: float = 0.2
    portal_factory: PortalFactory | None = None  # None: B's emulator.portal.Portal
    shared_app: bool = False  # every portal runs one app (one client_id), as a market app does
    # The base of every URL handed out (None: http://host:port); what clients reach, which is
    # not the bind address behind a compose service name or a port mapping.
    public_url: str | None = None
    # Fixed credentials of the first portal (None: random per start), so an orchestrator can be
    # configured before the emulator starts.
    member_id: str | None = None
    application_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    webhook_code: str | None = None
    # Chat-bot API v2: docs-vs-code switches and values (emulator.bots_v2.V2Settings).
    bots_v2: V2Settings = field(default_factory=V2Settings)
    # Licence features feature.get reports and the REST server checks (emulator.features):
    # merged over the cloud defaults (both offline features "Y"); `self_hosted` plays a portal
    # without the bitrix24 module (every licence check passes, unknown codes `en_selfhosted`).
    features: dict[str, str] = field(default_factory=dict)
    self_hosted: bool = False
    # How long offline-event rows live (docs: 30 days; the code's constant: 2952000 s).
    offline_retention_s: float = 30 * 86_400.0

    def check(self) -> None:
        """Refuse a config that cannot be played (ValueError)."""
        if self.plan not in PLANS:
            raise ValueError(f"unknown plan {self.plan!r}; known: {sorted(PLANS)}")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ValueError(f"public_url must be an http(s) base URL, not {self.public_url!r}")
        one_portal = (self.member_id, self.application_token, self.webhook_code)
        if self.portals > 1 and any(one_portal):
            raise ValueError("a fixed member_id, application_token or webhook code: one portal")
        if self.portals > 1 and not self.shared_app and (self.client_id or self.client_secret):
            raise ValueError("a fixed client_id/client_secret on several portals needs shared_app")


class FrozenClock(Clock):
    """A clock that stands still until advanced: throttles become exact in tests."""

    def __init__(self) -> None:
        super().__init__()
        self._origin = super().now()

    def now(self) -> float:
        return self._origin + self.offset


@dataclass(frozen=True)
class Webhook:
    """An inbound webhook: owner, secret code and the scopes it was created with."""

    user_id: int
    code: str
    scopes: frozenset[str]
    password_id: str


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: what the budget key and CallContext are built from."""

    auth_type: AuthType
    user_id: int
    scopes: frozenset[str]
    entity: str  # app client_id or webhook password id
    app_client_id: str | None


def _default_factory(identity: PortalIdentity, clock: Clock, sink: EventSink) -> Portal:
    import emulator.methods  # noqa: F401  (registers every method handler)
    from emulator.portal import Portal

    return Portal(identity, clock, sink)


class PortalRuntime:
    """One emulated portal and the platform state that goes with it."""

    def __init__(
        self,
        config: EmulatorConfig,
        delivery: EventDelivery,
        base_url: str,
        app: tuple[str, str] | None = None,
        *,
        preset: bool = False,
    ) -> None:
        # preset: this portal takes the config's fixed credentials (the first portal does)
        self.clock: Clock = FrozenClock() if config.frozen_clock else Clock()
        domain = base_url.split("//", 1)[-1]
        given = config if preset else EmulatorConfig()
        self.identity = PortalIdentity(
            given.member_id or secrets.token_hex(16),
            domain,
            given.application_token or secrets.token_hex(16),
        )
        self.tokens = TokenStore(self.clock, config.token_ttl_s, frozenset(config.scopes), app)
        self.tokens.client_id = given.client_id or self.tokens.client_id
        self.tokens.client_secret = given.client_secret or self.tokens.client_secret
        factory = config.portal_factory or _default_factory
        self.portal = factory(self.identity, self.clock, delivery.sink(self.identity.member_id))
        self.portal.features = Features(config.features, self_hosted=config.self_hosted)
        self.portal.offline.retention_s = config.offline_retention_s
        # The platform owns the app, the endpoint and the tokens that events carry.
        self.portal.app_client_id = self.tokens.client_id
        self.portal.client_endpoint = f"{base_url}/rest/"
        self.portal.token_issuer = self._bot_tokens
        self.portal.bots_v2.settings = config.bots_v2
        self.portal.fetch_queue.retention_s = config.bots_v2.retention_s
        self.journal = self.portal.journal
        delivery.attach_journal(self.identity.member_id, self.journal)
        self.push_drops = PushDrops()  # pushes this portal loses (control: push-drops)
        delivery.attach_drops(self.identity.member_id, self.push_drops)
        self.portal.seed_default(config.event_url if config.v1_bot else None)
        self.tokens.user_id = int(self.portal.admin_user_id)
        self.install_pair: TokenPair = self.tokens.issue_pair()
        capacity, drain = PLANS[config.plan]
        self.bucket = LeakyBucket(
            config.bucket_capacity or capacity, config.drain_per_s or drain, self.clock
        )
        self.budget = OperatingBudget(config.operating_limit_s, self.clock)
        self.webhooks: dict[str, Webhook] = {}
        self.webhook = self.add_webhook(config.scopes, given.webhook_code)
        self.faults = Faults()
        self.exec_time = {k.lower(): v for k, v in config.method_exec_time.items()}
        self.requests = 0
        self.faults_after_write = 0  # answers lost after the call was applied
        self.method_counters: defaultdict[str, dict[str, int]] = defaultdict(
            lambda: {"calls": 0, "nested": 0, "503": 0, "429": 0, "errors": 0}
        )
        self._auth_error_status = config.auth_error_status

    def _bot_tokens(self, user_id: int, app_id: str) -> dict[str, Any]:
        """Tokens for a bot event's `data[BOT][id]` block: valid REST tokens of the bot user."""
        if app_id != self.tokens.client_id:
            return {}
        return token_fields(self.tokens, self.tokens.issue_pair(user_id))

    def add_webhook(
        self, scopes: tuple[str, ...] | frozenset[str], code: str | None = None
    ) -> Webhook:
        """Create an inbound webhook of the admin user with the given scopes (and code)."""
        hook = Webhook(
            int(self.portal.admin_user_id),
            code or secrets.token_hex(8),
            frozenset(scopes),
            str(len(self.webhooks) + 1),
        )
        self.webhooks[hook.code] = hook
        return hook

    def owns(self, creds: Credentials) -> bool:
        if creds.kind == "webhook":
            return creds.code in self.webhooks
        return creds.kind == "oauth" and self.tokens.owns_access(creds.token)

    def authenticate(self, creds: Credentials) -> Caller:
        """The caller behind the credentials, or the portal's auth error."""
        if creds.kind == "webhook":
            hook = self.webhooks.get(creds.code)
            if hook is None or creds.user != str(hook.user_id):
                raise RestError(
                    "INVALID_CREDENTIALS", "Invalid request credentials", self._auth_error_status
                )
            return Caller("webhook", hook.user_id, hook.scopes, hook.password_id, None)
        grant = self.tokens.check(creds.token)
        return Caller(
            "oauth", grant.user_id, self.tokens.scopes, self.tokens.client_id, self.tokens.client_id
        )

    def scope_error(self, caller: Caller) -> RestError:
        holder = "webhook" if caller.auth_type == "webhook" else "access"
        return RestError(
            "insufficient_scope",
            f"The request requires higher privileges than provided by the {holder} token",
            self._auth_error_status,
        )

    def count(self, method: str, what: str) -> None:
        # method names are case-insensitive: a call counts under one name however it is spelt
        self.method_counters[method.lower()][what] += 1

    def counters(self) -> dict[str, Any]:
        return {
            "member_id": self.identity.member_id,
            "requests": self.requests,
            "refreshes": self.tokens.refreshes,
            "faults_after_write": self.faults_after_write,
            "methods": {m: dict(c) for m, c in sorted(self.method_counters.items())},
            "journal": self.journal.counts(),
        }

    def credentials(self, base_url: str) -> dict[str, Any]:
        """Everything a client needs to talk to this portal (GET /_emulator/credentials)."""
        hook = self.webhook
        return {
            "webhook_url": f"{base_url}/rest/{hook.user_id}/{hook.code}/",
            "client_id": self.tokens.client_id,
            "client_secret": self.tokens.client_secret,
            "application_token": self.identity.application_token,
            "member_id": self.identity.member_id,
            "domain": self.identity.domain,
            "oauth_token_url": f"{base_url}/oauth/token/",
            "client_endpoint": f"{base_url}/rest/",
            "access_token": self.install_pair.access_token,
            "refresh_token": self.install_pair.refresh_token,
        }

    def install_payload(self, base_url: str) -> dict[str, Any]:
        """ONAPPINSTALL with a fresh token pair, as the portal posts it to the app's handler."""
        self.install_pair = self.tokens.issue_pair()
        pair = self.install_pair
        return {
            "event": "ONAPPINSTALL",
            "event_handler_id": 0,
            "data": {"VERSION": 1, "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"},
            "ts": int(self.clock.now()),
            "auth": {
                **token_fields(self.tokens, pair),
                "domain": self.identity.domain,
                "server_endpoint": f"{base_url}/rest/",
                "client_endpoint": f"{base_url}/rest/",
                "member_id": self.identity.member_id,
                "user_id": self.tokens.user_id,
                "status": "L",
                "application_token": self.identity.application_token,
            },
        }


class Emulator:
    """Every portal of one emulator process, the event delivery and the shutdown signal."""

    def __init__(self, config: EmulatorConfig) -> None:
        config.check()
        self.config = config
        self.delivery = EventDelivery()
        self.runtimes: list[PortalRuntime] = []
        self.base_url = ""  # the public base of every URL handed out, set once listening
        self.listen_url = ""
        self.closing = asyncio.Event()

    def add_portals(self, count: int) -> None:
        for _ in range(count):
            first = self.runtimes[0].tokens if self.runtimes else None
            app = (
                (first.client_id, first.client_secret) if first and self.config.shared_app else None
            )
            preset = not self.runtimes
            self.runtimes.append(
                PortalRuntime(self.config, self.delivery, self.base_url, app, preset=preset)
            )

    def by_member(self, member_id: str | None) -> PortalRuntime:
        """The portal with this member_id; None means the first portal."""
        if member_id is None:
            return self.runtimes[0]
        for runtime in self.runtimes:
            if runtime.identity.member_id == member_id:
                return runtime
        raise KeyError(member_id)

    def by_credentials(self, creds: Credentials) -> PortalRuntime | None:
        return next((r for r in self.runtimes if r.owns(creds)), None)

    def by_client_id(self, client_id: str) -> PortalRuntime | None:
        return next((r for r in self.runtimes if r.tokens.client_id == client_id), None)

    def for_grant(self, params: dict[str, Any]) -> PortalRuntime | None:
        """The portal an OAuth grant is for: the app's, told apart by the token or code when the
        app is on several portals (as the real OAuth server knows each refresh token's portal)."""
        client_id = str(params.get("client_id", ""))
        apps = [r for r in self.runtimes if r.tokens.client_id == client_id]
        refresh, code = str(params.get("refresh_token", "")), str(params.get("code", ""))
        owner = next(
            (r for r in apps if r.tokens.owns_refresh(refresh) or r.tokens.owns_code(code)), None
        )
        return owner or (apps[0] if apps else None)

"""`BitrixClient`: every REST call of the process goes through here (one per process, all portals).

    async with BitrixClient.from_settings(settings) as client:
        env = await client.call("user.get", {"ID": 1}, member_id="abc")
        api = client.api("abc")                       # typed wrappers (methods.PortalApi)
        await api.imbot_message_add(dialog_id="chat5", message="hi")

A call: operating budget (per method) → request slot (coalesced or direct) → HTTP → envelope;
failures are retried or surfaced per `retry.decide`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
import structlog

from orchestrator.bitrix import metrics
from orchestrator.bitrix.auth import OAUTH, AuthStore, PortalCredentials
from orchestrator.bitrix.batch import (
    BatchResult,
    Coalescer,
    Command,
    command_method,
    encode_commands,
    parse_batch,
)
from orchestrator.bitrix.envelope import Envelope, parse_response
from orchestrator.bitrix.fence import current_fence
from orchestrator.bitrix.limiter import BucketConfig, Limiter
from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.retry import Action, backoff, decide, is_idempotent
from orchestrator.bitrix.transport import Transport
from orchestrator.errors import (
    ConfigurationError,
    InvalidCredentials,
    OperationTimeLimit,
    OutcomeUnknown,
    PortalError,
    QueryLimitExceeded,
    RateLimited,
    Signal,
    TokenExpired,
)
from orchestrator.settings import PortalConfig, Settings

log = structlog.get_logger(__name__)
_THROTTLE_STATUSES = frozenset({429, 503})
# Default member_id of the single webhook portal configured by B24_WEBHOOK_URL.
WEBHOOK_MEMBER_ID = "webhook"


def configured_webhooks(settings: PortalConfig) -> dict[str, str]:
    """member_id -> URL of the webhook portal the settings name (none, or one)."""
    if not settings.b24_webhook_url:
        return {}
    return {settings.b24_member_id or WEBHOOK_MEMBER_ID: settings.b24_webhook_url}


class BitrixClient:
    """The process's REST client: shared transport, Redis limiter, credentials and coalescers."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        *,
        coalesce: bool = True,
        owns_redis: bool = False,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.transport = Transport(
            timeout_s=settings.b24_request_timeout_s, max_connections=settings.b24_max_connections
        )
        self.limiter = Limiter(
            redis,
            prefix=settings.key_prefix,
            bucket=BucketConfig.from_settings(settings),
            operating_limit_s=settings.b24_operating_limit_s,
            call_timeout_s=settings.b24_request_timeout_s,
        )
        self.auth = AuthStore(
            redis,
            prefix=settings.key_prefix,
            transport=self.transport,
            client_id=settings.b24_client_id,
            client_secret=settings.b24_client_secret,
            oauth_url=settings.b24_oauth_url,
            webhooks=configured_webhooks(settings),
        )
        self.coalesce = coalesce
        self.default_member_id: str | None = None
        self._owns_redis = owns_redis
        self._coalescers: dict[str, Coalescer] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, redis: aioredis.Redis | None = None, *, coalesce: bool = True
    ) -> BitrixClient:
        """A client on `redis` (or a new connection to settings.redis_url, owned and closed)."""
        if redis is not None:
            return cls(settings, redis, coalesce=coalesce)
        if not settings.redis_url:
            raise ConfigurationError("BitrixClient needs a Redis: pass one or set REDIS_URL")
        return cls(
            settings,
            aioredis.Redis.from_url(settings.redis_url),
            coalesce=coalesce,
            owns_redis=True,
        )

    async def open(self) -> BitrixClient:
        """Open the HTTP session; register the configured webhook portal, if any."""
        await self.transport.open()
        if self.settings.b24_webhook_url:
            member_id = self.settings.b24_member_id or WEBHOOK_MEMBER_ID
            await self.auth.register_webhook(member_id, self.settings.b24_webhook_url)
            self.default_member_id = member_id
        return self

    async def close(self) -> None:
        """Drain the senders, close the HTTP session (and Redis when we opened it)."""
        coalescers, self._coalescers = list(self._coalescers.values()), {}
        for coalescer in coalescers:
            await coalescer.close()
        await self.transport.close()
        if self._owns_redis:
            await self.redis.aclose()

    async def __aenter__(self) -> BitrixClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def api(self, member_id: str | None = None, *, bot_client_id: str | None = None) -> PortalApi:
        """Typed wrappers bound to one portal (CLIENT_ID for webhook bots from settings)."""
        return PortalApi(
            self,
            self._member(member_id),
            bot_client_id=bot_client_id or self.settings.b24_bot_client_id,
        )

    def _member(self, member_id: str | None) -> str:
        member = member_id or self.default_member_id
        if not member:
            raise ConfigurationError("no member_id given and no default portal configured")
        return member

    # --- one HTTP request ----------------------------------------------------------------------

    async def _request(
        self, member_id: str, method: str, params: Mapping[str, Any], *, kind: str = "single"
    ) -> Envelope:
        """Send one request (the slot is already acquired) and parse its envelope."""
        creds = await self.auth.get(member_id)
        payload = dict(params)
        if creds.kind == OAUTH:
            payload["auth"] = creds.access_token
        metrics.REQUESTS.labels(member_id, kind).inc()
        started = time.monotonic()
        raw = await self.transport.post_json(creds.url(method), payload)
        metrics.REQUEST_SECONDS.labels(member_id).observe(time.monotonic() - started)
        try:
            return parse_response(raw.status, raw.body, method)
        except InvalidCredentials as exc:
            # Another process may have rotated the pair since we cached it: then it is our copy
            # that is stale, and a replay with the stored token is the cure.
            if creds.kind == OAUTH and (await self.auth.load(member_id)).version != creds.version:
                raise TokenExpired(
                    exc.code, exc.description, status=exc.status, method=method
                ) from exc
            raise
        except PortalError as exc:
            await self._after_error(member_id, method, exc, creds)
            raise

    async def _after_error(
        self, member_id: str, method: str, exc: PortalError, creds: PortalCredentials
    ) -> None:
        """Fleet-wide reactions to one failed request: refresh the token, back the bucket off."""
        if isinstance(exc, TokenExpired):
            await self.auth.refresh(member_id, creds)
        elif isinstance(exc, QueryLimitExceeded) or (
            exc.status in _THROTTLE_STATUSES and not isinstance(exc, OperationTimeLimit)
        ):
            metrics.REJECTIONS.labels(member_id, method, str(exc.status or 503)).inc()
            pause = await self.limiter.penalize(member_id)
            log.warning(
                "rest_throttled",
                member_id=member_id,
                method=method,
                pause_s=pause,
                code=exc.code,
                status=exc.status,
            )

    async def _send_batch(
        self, member_id: str, cmd: dict[str, str], *, halt: bool = False, kind: str = "coalesced"
    ) -> Envelope:
        return await self._request(member_id, "batch", {"halt": int(halt), "cmd": cmd}, kind=kind)

    def _coalescer(self, member_id: str) -> Coalescer:
        coalescer = self._coalescers.get(member_id)
        if coalescer is None:
            coalescer = Coalescer(
                member_id,
                acquire=lambda: self.limiter.acquire(member_id),
                send_one=lambda m, p: self._request(member_id, m, p),
                send_batch=lambda cmd: self._send_batch(member_id, cmd),
                window_s=self.settings.b24_coalesce_window_ms / 1000,
            )
            self._coalescers[member_id] = coalescer
        return coalescer

    async def _dispatch(self, member_id: str, method: str, params: Mapping[str, Any]) -> Envelope:
        if self.coalesce:
            return await self._coalescer(member_id).submit(method, params)
        await self.limiter.acquire(member_id)
        fence = current_fence(method)
        if fence is not None:  # a write: its caller may still send it (bitrix/fence.py)
            await fence()
        return await self._request(member_id, method, params)

    # --- public calls --------------------------------------------------------------------------

    async def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, member_id: str | None = None
    ) -> Envelope:
        """Call one REST method; retries what is safe to retry, raises the classified error."""
        member = self._member(member_id)
        params = dict(params or {})
        attempt = 0
        while True:
            await self.limiter.acquire_operating(member, method)
            try:
                envelope = await self._dispatch(member, method, params)
            except (asyncio.CancelledError, Signal):
                # Cancelled, or stopped unsent by the caller's fence: give the in-flight slot
                # of the operating budget back before leaving.
                await asyncio.shield(self.limiter.report_operating(member, method, None))
                raise
            except Exception as exc:
                await self._operating_after(member, method, exc)
                attempt += 1
                await self._handle_failure(
                    member, method, params, exc, attempt, idempotent=is_idempotent(method)
                )
                continue
            await self.limiter.report_operating(member, method, envelope.time)
            metrics.CALLS.labels(member, method, "ok").inc()
            return envelope

    async def _operating_after(self, member: str, method: str, exc: Exception) -> None:
        if isinstance(exc, OperationTimeLimit):
            metrics.REJECTIONS.labels(member, method, "429").inc()
            await self.limiter.penalize_operating(member, method)
        elif isinstance(exc, PortalError):
            # The portal answered (an error envelope has no time block): the method is cheap
            # enough to know, so later calls need not go one at a time as cold-start probes.
            await self.limiter.report_operating(member, method, {"processing": 0.0})
        else:
            await self.limiter.report_operating(member, method, None)

    async def _handle_failure(
        self,
        member: str,
        method: str,
        params: dict[str, Any],
        exc: Exception,
        attempt: int,
        *,
        idempotent: bool,
    ) -> None:
        """Return to retry the call, or raise what the caller must see."""
        decision = decide(exc, method, idempotent=idempotent)
        if decision.action is Action.UNKNOWN:
            metrics.CALLS.labels(member, method, "outcome_unknown").inc()
            raise OutcomeUnknown(method, params, exc) from exc
        if decision.action is Action.RAISE or attempt > self.settings.b24_max_retries:
            metrics.CALLS.labels(member, method, "error").inc()
            raise exc
        metrics.RETRIES.labels(member, method, decision.reason).inc()
        log.info(
            "rest_retry",
            member_id=member,
            method=method,
            attempt=attempt,
            reason=decision.reason,
            error=str(exc),
        )
        # Throttles and refreshes already moved the shared state the next attempt waits on.
        if decision.action is Action.RETRY and not isinstance(exc, RateLimited):
            await asyncio.sleep(backoff(attempt))

    async def batch(
        self, commands: Mapping[str, Command], *, halt: bool = False, member_id: str | None = None
    ) -> BatchResult:
        """Send up to 50 commands as one request; per-command results and errors, typed."""
        member = self._member(member_id)
        cmd = encode_commands(commands)
        methods = {key: command_method(c) for key, c in commands.items()}
        idempotent = all(is_idempotent(m) for m in methods.values())
        attempt = 0
        while True:
            # Commands spend their own methods' operating budgets (batch itself is exempt); one
            # acquisition per distinct method, since a batch's commands run back to back.
            for method in set(methods.values()):
                await self.limiter.acquire_operating(member, method)
            try:
                await self.limiter.acquire(member)
                metrics.BATCHES.labels(member, "explicit").inc()
                metrics.BATCH_SIZE.labels(member).observe(len(cmd))
                envelope = await self._send_batch(member, cmd, halt=halt, kind="batch")
            except BaseException as exc:
                for method in set(methods.values()):
                    await asyncio.shield(self.limiter.report_operating(member, method, None))
                if not isinstance(exc, Exception):
                    raise
                attempt += 1
                await self._handle_failure(
                    member, "batch", {"halt": halt, "cmd": cmd}, exc, attempt, idempotent=idempotent
                )
                continue
            result = parse_batch(envelope, list(cmd), methods)
            for method in set(methods.values()):
                keys = [k for k, m in methods.items() if m == method]
                await self._report_commands(member, method, keys, result)
            metrics.CALLS.labels(member, "batch", "ok").inc()
            return result

    async def _report_commands(
        self, member: str, method: str, keys: list[str], result: BatchResult
    ) -> None:
        """Feed the outcome of one method's commands in a batch into its operating budget."""
        if any(isinstance(result.errors.get(k), OperationTimeLimit) for k in keys):
            await self.limiter.penalize_operating(member, method)
            return
        times = [result.results[k].time for k in keys if k in result.results]
        # The latest report of the method is the one with the largest running sum.
        latest = max(times, key=lambda t: float(t.get("operating") or 0), default=None)
        await self.limiter.report_operating(member, method, latest or {"processing": 0.0})

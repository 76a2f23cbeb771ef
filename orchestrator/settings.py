"""The settings: one reader of the environment (`load_settings`), split into sub-configs.

Each sub-config is one concern's fields (Redis, the portal, the REST client, the ingress, the
worker, the dialogs, the logs); `Settings` is all of them, read from the environment once, at the
edge, and passed down. A component that needs one concern takes its sub-config (e.g. the install
verifier a `PortalConfig`); every environment variable keeps its plain name (README,
deploy/env.example).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DialogConfig",
    "IngressConfig",
    "LogConfig",
    "PortalConfig",
    "PullConfig",
    "RedisConfig",
    "RestConfig",
    "Settings",
    "WorkerConfig",
    "explain_settings_error",
    "load_settings",
    "redacted_url",
]

REDIS_SCHEMES = ("redis", "rediss", "unix")
# An inbound webhook's URL: https://<portal>/rest/<user id>/<secret code>/ (docs/connect.md)
_WEBHOOK_PATH = re.compile(r"/rest/\d+/[^/]+/?")


def redacted_url(url: str) -> str:
    """A URL fit for a log line or an error: scheme, host and port; no password, no path (a
    webhook's path is its secret)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":<bad port>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}" if parts.scheme else "<not a URL>"


class RedisConfig(BaseModel):
    """Where our data lives and how long it is kept."""

    redis_url: str | None = Field(
        default=None,
        description="Redis URL; unset -> an embedded server is started (make run/test)",
    )
    key_prefix: str = Field(default="ol", description="prefix of every Redis key we own")
    dialog_retention_s: int = Field(
        default=14 * 24 * 3600,
        ge=0,
        description="a dialog idle this long is forgotten (its keys expire); 0 keeps it forever",
    )
    redis_epoch_check_s: float = Field(
        default=1.0,
        gt=0,
        description="how often ingress and workers check that Redis still holds its data "
        "(its epoch marker)",
    )
    dlq_max_len: int = Field(
        default=100_000, ge=0, description="dead letters kept, oldest trimmed first; 0: no cap"
    )
    redis_start_wait_s: float = Field(
        default=10.0,
        ge=0,
        description="how long ingress, worker and serve wait at start for Redis to answer before "
        "they refuse to start (a running ingress rides out an outage on its spool)",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"{redacted_url(url)} is not a Redis URL; use redis://host:6379/0, "
                "rediss://host:6380/0 (TLS) or unix:///path/to/redis.sock"
            )
        try:
            parts.port  # noqa: B018 - parsing it is the check
        except ValueError:
            raise ValueError(f"the port of {redacted_url(url)} is not a number") from None
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("names no host; use redis://host:6379/0")
        if parts.scheme != "unix" and parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError(f"the database of {redacted_url(url)} must be a number (/0)")
        return url


class PortalConfig(BaseModel):
    """Which portals: the webhook portal of a single-portal setup, and the OAuth app whose
    portals register by a verified ONAPPINSTALL."""

    b24_webhook_url: str | None = Field(
        default=None, description="inbound webhook, e.g. https://x.bitrix24.com/rest/1/code/"
    )
    b24_member_id: str | None = Field(default=None, description="member_id of the webhook portal")
    b24_application_token: str | None = Field(
        default=None, description="application_token events of the webhook portal carry"
    )
    b24_client_id: str | None = Field(default=None, description="OAuth app client_id")
    b24_client_secret: str | None = Field(default=None, description="OAuth app client_secret")
    b24_oauth_url: str = Field(
        default="https://oauth.bitrix.info/oauth/token/",
        description="OAuth token endpoint: refreshes tokens and verifies every app install",
    )
    b24_allowed_domains: str = Field(
        default="",
        description="comma-separated host patterns (*.bitrix24.com) a portal must match to "
        "install; empty: any portal our OAuth app verifies",
    )
    b24_bot_client_id: str | None = Field(
        default=None, description="CLIENT_ID of a webhook-registered bot (imbot.* over webhooks)"
    )

    @field_validator("b24_webhook_url")
    @classmethod
    def _webhook_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                "is not a URL; copy the inbound webhook's URL from the portal: "
                "https://<portal>/rest/<user id>/<code>/"
            )
        if not _WEBHOOK_PATH.fullmatch(parts.path):
            raise ValueError(
                f"{redacted_url(url)}{'/...' if parts.path else ''} is not an inbound webhook's "
                "URL; it looks like https://<portal>/rest/<user id>/<code>/"
            )
        return url if url.endswith("/") else url + "/"

    @field_validator("b24_oauth_url")
    @classmethod
    def _oauth_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("is not a URL (default https://oauth.bitrix.info/oauth/token/)")
        return url

    @model_validator(mode="after")
    def _portal_credentials_complete(self) -> PortalConfig:
        if self.b24_webhook_url and not self.b24_member_id:
            raise ValueError(
                "B24_WEBHOOK_URL is set without B24_MEMBER_ID: set B24_MEMBER_ID to the portal's "
                "member_id (docs/connect.md says where the portal shows it)"
            )
        if bool(self.b24_client_id) != bool(self.b24_client_secret):
            given, missing = (
                ("B24_CLIENT_ID", "B24_CLIENT_SECRET")
                if self.b24_client_id
                else ("B24_CLIENT_SECRET", "B24_CLIENT_ID")
            )
            raise ValueError(
                f"{given} is set without {missing}: an OAuth app needs both (the portal shows "
                "them together on the local application's page; docs/connect.md)"
            )
        return self


class RestConfig(BaseModel):
    """The REST client: the portal's plan (its rate budget), timeouts, batching, retries."""

    b24_plan: Literal["standard", "enterprise"] = "standard"
    b24_bucket_capacity: int | None = Field(default=None, description="override the plan's bucket")
    b24_drain_per_s: float | None = Field(default=None, description="override the plan's drain")
    b24_burst_margin: int = Field(default=5, description="bucket slots we never use (safety)")
    b24_operating_limit_s: float = Field(default=480.0, description="per-method budget / 10 min")
    b24_request_timeout_s: float = 30.0
    b24_max_connections: int = 32
    b24_coalesce_window_ms: float = Field(default=2.0, description="wait to fill a batch")
    b24_max_retries: int = 5


class IngressConfig(BaseModel):
    """The event ingress: where it listens, what it accepts, its spool."""

    ingress_host: str = "0.0.0.0"
    ingress_port: int = 8080
    ingress_max_body_bytes: int = 256 * 1024
    ingress_body_timeout_s: float = Field(
        default=10.0, description="a request body not fully read within this gets 408"
    )
    ingress_header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="a connection that has not sent a complete request head within this long of "
        "opening or of its last answer is closed: slowloris heads and idle keep-alive alike",
    )
    ingress_max_idle_connections: int = Field(
        default=256,
        ge=0,
        description="connections open with no request in a handler past this many are closed, "
        "never-answered and longest-idle first (0: no cap)",
    )
    spool_dir: str = Field(default="./spool", description="where events go while Redis is down")
    spool_max_bytes: int = Field(
        default=1024**3,
        ge=0,
        description="bytes the spool may hold; past it events are answered 503 (0: no cap)",
    )
    dedup_ttl_s: int = 7 * 24 * 3600


class WorkerConfig(BaseModel):
    """The workers: arq, drains, leases, retries, the sweeper, shutdown, their endpoint."""

    queue_name: str = Field(default="ol:queue", description="arq queue name")
    worker_concurrency: int = 50
    worker_poll_delay_s: float = 0.02
    worker_redis_ride_out_s: float = Field(
        default=10.0,
        description="how long a worker's Redis calls retry before its arq worker is rebuilt",
    )
    lease_ms: int = 5000
    drain_budget_events: int = 20
    drain_budget_s: float = 1.0
    sweep_interval_s: float = 2.0
    max_attempts: int = 5
    patient_max_attempts: int = Field(
        default=15,
        description="tries of a patient effect (queue handoff, vote, lead) before the DLQ",
    )
    patient_backoff_cap_s: float = Field(
        default=60.0,
        description="longest wait between two tries of a patient effect (~6 min of retrying)",
    )
    shutdown_grace_s: float = 10.0
    worker_metrics_port: int = Field(
        default=0, description="worker /metrics and /healthz port (0: off); serve adds the index"
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="bind address of the worker's /metrics and /healthz (the image sets 0.0.0.0 "
        "so Prometheus can scrape it)",
    )
    worker_handler: str = Field(
        default="orchestrator.handler:build_handler",
        description="module:callable(settings, redis) -> the workers' DialogHandler",
    )
    offline_poll_s: float = Field(
        default=60.0,
        gt=0,
        description="how often the offline consumer sweeps the offline event queue of every "
        "portal whose Open Lines events we bound offline, seconds (jittered ±20 %); an "
        "ONOFFLINEEVENT drains its portal at once in between",
    )
    offline_batch_limit: int = Field(
        default=500,
        ge=1,
        description="rows one event.offline.get reads (the portal's default is 50 and it takes "
        "any positive limit; one request of budget then carries 500 rows, so the queue keeps "
        "up at the portal's ceiling)",
    )
    offline_lease_ms: int = Field(
        default=15_000,
        ge=1000,
        description="lifetime of a portal's offline drain lease, milliseconds: held for one "
        "drain and renewed between its batches; a dead drainer's portal is free after this",
    )


class PullConfig(BaseModel):
    """The pollers every worker runs, one holder per queue: the v2 bots' event logs."""

    fetch_enabled: bool = Field(
        default=True, description="poll the event logs of the fetch-mode v2 bots we registered"
    )
    fetch_busy_s: float = Field(
        default=2.0,
        gt=0,
        description="wait after a full page or one with events new to us (the platform: >= 2 s)",
    )
    fetch_idle_min_s: float = Field(
        default=5.0, gt=0, description="first wait after an empty page (the platform: 5-30 s)"
    )
    fetch_idle_max_s: float = Field(
        default=30.0, gt=0, description="longest wait while the log stays empty (<= 30 s)"
    )
    fetch_limit: int = Field(default=500, ge=1, le=1000, description="events asked per poll")
    poller_lease_ms: int = Field(
        default=6000, ge=1000, description="a dead poller's queue is taken over after this"
    )
    poller_discover_s: float = Field(
        default=10.0, gt=0, description="how often a worker looks for newly registered bots"
    )


class DialogConfig(BaseModel):
    """What the bot says and does."""

    scenario_path: str | None = Field(default=None, description="YAML scenario; default shipped")
    reconcile_interval_s: int = Field(
        default=300,
        ge=0,
        description="how often an open dialog asks the portal whether its session still is (a "
        "lost finish push is never re-sent); a scenario's timers.reconcile_s wins; 0: off",
    )


class LogConfig(BaseModel):
    """How the processes log."""

    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"


class Settings(
    RedisConfig,
    PortalConfig,
    RestConfig,
    IngressConfig,
    WorkerConfig,
    PullConfig,
    DialogConfig,
    LogConfig,
    BaseSettings,
):
    """Everything configurable, read once at the edge and passed down."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    @model_validator(mode="after")
    def _retention_outlives_dedup(self) -> Settings:
        # A forgotten dialog starts afresh and mints the same deterministic effect ids and timer
        # tokens again: the dedup keys of its earlier life must be gone by then, or its timers
        # and follow-up events would be dropped as duplicates.
        if 0 < self.dialog_retention_s < self.dedup_ttl_s:
            raise ValueError("dialog_retention_s must be 0 (keep forever) or >= dedup_ttl_s")
        return self


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; explicit overrides (CLI flags, tests) win. A value that cannot
    work raises pydantic's ValidationError; `explain_settings_error` words it for people."""
    return Settings(**overrides)  # type: ignore[arg-type]


def explain_settings_error(exc: ValidationError) -> str:
    """The settings' validation errors as one line, each naming its environment variable (and
    the value it got, unless that is a secret or a URL that may carry one)."""
    said = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if not field:  # a check across fields names its variables itself
            said.append(message)
        elif _SECRET.search(field):
            said.append(f"{field.upper()}: {message}")
        else:
            said.append(f"{field.upper()}: {message} (got {error.get('input')!r:.80})")
    return "invalid settings: " + "; ".join(said)


# fields whose values an error must not echo: they are, or may carry, credentials
_SECRET = re.compile(r"secret|token|password|_url$", re.IGNORECASE)

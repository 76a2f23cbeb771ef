"""The settings: one reader of the environment (`load_settings`), split into sub-configs.

Each sub-config is one concern's fields (Redis, the portal, the REST client, the ingress, the
worker, the dialogs, the logs); `Settings` is all of them, read from the environment once, at the
edge, and passed down. A component that needs one concern takes its sub-config (e.g. the install
verifier a `PortalConfig`); every environment variable keeps its plain name (README,
deploy/env.example).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator
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
    "load_settings",
]


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
    """Read the environment once; explicit overrides (CLI flags, tests) win."""
    return Settings(**overrides)  # type: ignore[arg-type]

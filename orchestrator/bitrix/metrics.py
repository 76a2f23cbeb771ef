"""Prometheus metrics of the REST client, all `ol_rest_*`, on the process's default registry.

They sit next to the pipeline's `ol_*` metrics (orchestrator/observe/metrics.py), so the one
/metrics endpoint of the ingress/worker exposes both. Labels: `member_id` (portal), `method` (REST
method).
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Histogram

__all__ = [
    "BATCHES",
    "BATCH_SIZE",
    "CALLS",
    "REGISTRY",
    "REJECTIONS",
    "REQUESTS",
    "REQUEST_SECONDS",
    "RETRIES",
    "THROTTLE_SECONDS",
    "THROTTLE_WAITS",
    "TOKEN_REFRESHES",
]

CALLS = Counter(
    "ol_rest_calls",
    "REST method calls by outcome (ok, error, outcome_unknown)",
    ["member_id", "method", "outcome"],
    registry=REGISTRY,
)
REQUESTS = Counter(
    "ol_rest_requests",
    "HTTP requests sent to a portal (kind: single, batch, coalesced)",
    ["member_id", "kind"],
    registry=REGISTRY,
)
BATCHES = Counter(
    "ol_rest_batches",
    "batch requests sent (kind: explicit, coalesced)",
    ["member_id", "kind"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "ol_rest_batch_size",
    "commands per batch request",
    ["member_id"],
    buckets=(1, 2, 5, 10, 20, 30, 40, 50),
    registry=REGISTRY,
)
RETRIES = Counter(
    "ol_rest_retries",
    "calls retried (reason: rate_limited, token_expired, transient)",
    ["member_id", "method", "reason"],
    registry=REGISTRY,
)
THROTTLE_WAITS = Counter(
    "ol_rest_throttle_waits",
    "times a call waited for budget (budget: rate, operating)",
    ["member_id", "budget"],
    registry=REGISTRY,
)
THROTTLE_SECONDS = Counter(
    "ol_rest_throttle_wait_seconds",
    "seconds spent waiting for budget",
    ["member_id", "budget"],
    registry=REGISTRY,
)
REJECTIONS = Counter(
    "ol_rest_rejections",
    "throttle answers from the portal (status: 503, 429)",
    ["member_id", "method", "status"],
    registry=REGISTRY,
)
TOKEN_REFRESHES = Counter(
    "ol_rest_token_refreshes",
    "OAuth refreshes this process performed",
    ["member_id"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "ol_rest_request_seconds",
    "HTTP round trip of one REST request",
    ["member_id"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)

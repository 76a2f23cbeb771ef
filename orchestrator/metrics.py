"""Prometheus metrics of the event pipeline; every name is `ol_*` and lives here."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ACK_SECONDS",
    "DEAD_LETTERS",
    "EVENTS_DUPLICATE",
    "EVENTS_IN",
    "EVENTS_REJECTED",
    "EVENTS_SPOOLED",
    "QUEUE_DEPTH",
    "SPOOL_REPLAYED",
]

EVENTS_IN = Counter(
    "ol_events_in", "Events accepted (verified and durably queued)", ["event", "member_id"]
)
EVENTS_DUPLICATE = Counter(
    "ol_events_duplicate", "Events absorbed as duplicates of an accepted one", ["member_id"]
)
EVENTS_REJECTED = Counter("ol_events_rejected", "Events refused with a 4xx, by reason", ["reason"])
EVENTS_SPOOLED = Counter(
    "ol_events_spooled", "Events written to the local spool while Redis was unreachable"
)
SPOOL_REPLAYED = Counter(
    "ol_spool_replayed", "Spooled events replayed into Redis, by outcome", ["outcome"]
)
DEAD_LETTERS = Counter(
    "ol_dead_letters", "Events or effects moved to the dead-letter queue", ["kind"]
)
QUEUE_DEPTH = Gauge("ol_queue_depth", "Depth of the pipeline's queues at scrape time", ["queue"])
ACK_SECONDS = Histogram(
    "ol_ack_seconds",
    "Time from request to acknowledgment at the ingress",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

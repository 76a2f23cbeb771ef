"""Prometheus metrics of the event pipeline and the dialogs; every name is `ol_*` and lives here.

The ingress and every worker process export them on their own /metrics (the REST client's
`ol_rest_*` are in orchestrator/bitrix/metrics.py). Counters count in the process where the
thing happens; the queue gauges are read from Redis at scrape time by whoever is scraped, so
dashboards aggregate them with `max`, never `sum`.
"""

from __future__ import annotations

from collections import Counter as Tally

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge, Histogram

from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.queue import now_ms
from orchestrator.settings import Settings

__all__ = [
    "ACK_SECONDS",
    "ANSWERER_TOKENS",
    "ANSWERS",
    "ANSWER_SECONDS",
    "DEAD_LETTERS",
    "DIALOG_TRANSITIONS",
    "EFFECTS",
    "EFFECT_SECONDS",
    "EVENTS_DUPLICATE",
    "EVENTS_IN",
    "EVENTS_LOST",
    "EVENTS_REJECTED",
    "EVENTS_SPOOLED",
    "EVENT_LAG_SECONDS",
    "FETCH_CONFIRMS",
    "FETCH_EVENTS",
    "FETCH_LAG",
    "FETCH_POLLS",
    "FETCH_REFUSED",
    "HANDOFFS",
    "INSTALLS",
    "INSTALL_OUTCOMES",
    "JOB_SECONDS",
    "LEADS",
    "LEADS_COMPLETED",
    "OFFLINE_BATCHES",
    "OFFLINE_ERRORS",
    "OFFLINE_LAG_SECONDS",
    "OFFLINE_ROWS",
    "OFFLINE_TAKEOVERS",
    "OFFLINE_WAKEUPS",
    "PIPELINE_RETRIES",
    "POLLER_TAKEOVERS",
    "PORTAL_OLDEST_PENDING_SECONDS",
    "PORTAL_PENDING_DIALOGS",
    "QUEUE_DEPTH",
    "RECONCILE_CHECKS",
    "RECONCILE_FINISHES",
    "REDIS_DATA_LOSSES",
    "REDIS_DATA_LOSS_UNACKNOWLEDGED",
    "REDIS_PERSISTENCE",
    "SPOOL_ERRORS",
    "SPOOL_REPLAYED",
    "TYPING_SHOWN",
    "VOTES",
    "refresh_queue_gauges",
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
INSTALLS = Counter(
    "ol_installs",
    "App installs by outcome: verified, or why refused (no portal label: a refused portal "
    "creates no series)",
    ["outcome"],
)
# Every outcome orchestrator/ingress/install.py counts, each series there from the start (at 0): the
# exposition's series never change with what strangers send, and rate() has a baseline.
INSTALL_OUTCOMES = (
    "verified",
    "no_oauth_app",
    "no_refresh_token",
    "throttled",
    "oauth_refused",
    "oauth_unreachable",
    "other_portal",
    "endpoint_mismatch",
    "domain_not_allowed",
)
for _outcome in INSTALL_OUTCOMES:
    INSTALLS.labels(outcome=_outcome)
SPOOL_REPLAYED = Counter(
    "ol_spool_replayed", "Spooled events replayed into Redis, by outcome", ["outcome"]
)
# A counter of its own, not an `ol_events_rejected` reason: those are events refused on purpose
# (junk, forgeries: a 4xx, nothing to do), these are genuine events lost to an outage (a 503
# the portal never re-sends), which is data loss and is alerted on apart.
EVENTS_LOST = Counter(
    "ol_events_lost",
    "Events answered 503 because Redis was unreachable and the spool could not take them",
    ["reason"],
)
SPOOL_ERRORS = Counter(
    "ol_spool_errors",
    "Spool operations that failed (append, seal, claim, read, release, discard)",
    ["op"],
)
DEAD_LETTERS = Counter(
    "ol_dead_letters", "Events or effects moved to the dead-letter queue", ["kind"]
)
REDIS_DATA_LOSSES = Counter(
    "ol_redis_data_losses", "Times this process found Redis emptied (its epoch marker gone)"
)
REDIS_DATA_LOSS_UNACKNOWLEDGED = Gauge(
    "ol_redis_data_loss_unacknowledged",
    "1 while a loss of Redis's data waits for `orchestrator redis ack-loss` (alert on it)",
)
REDIS_PERSISTENCE = Gauge(
    "ol_redis_persistence",
    "Redis's persistence as read at start (1 for the mode: aof, rdb, none, unknown)",
    ["mode"],
)
QUEUE_DEPTH = Gauge("ol_queue_depth", "Depth of the pipeline's queues at scrape time", ["queue"])
ACK_SECONDS = Histogram(
    "ol_ack_seconds",
    "Time from request to acknowledgment at the ingress",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

PORTAL_PENDING_DIALOGS = Gauge(
    "ol_portal_pending_dialogs",
    "Dialogs with work or a wake-up outstanding, per portal, at scrape time",
    ["member_id"],
)
PORTAL_OLDEST_PENDING_SECONDS = Gauge(
    "ol_portal_oldest_pending_seconds",
    "Per portal: seconds since its longest-waiting pending dialog was scheduled or drained",
    ["member_id"],
)
EVENT_LAG_SECONDS = Histogram(
    "ol_event_lag_seconds",
    "Time from an event's acceptance at the ingress to its commit by a worker",
    ["member_id"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
JOB_SECONDS = Histogram(
    "ol_job_seconds",
    "Duration of one drain job, by how it ended (done, handed_back, busy, lost, error)",
    ["outcome"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EFFECTS = Counter(
    "ol_effects", "Effects run, by kind and outcome (done, failed, dead)", ["kind", "outcome"]
)
EFFECT_SECONDS = Histogram(
    "ol_effect_seconds",
    "Duration of one try of an effect (REST calls included)",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PIPELINE_RETRIES = Counter(
    "ol_pipeline_retries", "Events (decide) or effects tried again after a failure", ["kind"]
)
DIALOG_TRANSITIONS = Counter(
    "ol_dialog_transitions",
    "Committed dialog status changes (from_status 'none' for a new dialog)",
    ["member_id", "from_status", "to_status"],
)
HANDOFFS = Counter(
    "ol_handoffs",
    "Dialogs handed to people: to the line's queue or transferred (kind: queue, transfer)",
    ["member_id", "kind"],
)
LEADS = Counter(
    "ol_leads",
    "Lead steps by outcome (created: crm.lead.add; found_existing: ours on a retry, or the "
    "chat's own lead, completed)",
    ["member_id", "outcome"],
)
LEADS_COMPLETED = Counter(
    "ol_leads_completed",
    "Leads the bot did not make (the line's, or made by imopenlines.crm.lead.create) that got "
    "the collected fields they lacked (crm.lead.update)",
    ["member_id"],
)
VOTES = Counter("ol_votes", "Head votes saved on finished sessions", ["member_id"])
ANSWERS = Counter(
    "ol_answers",
    "Questions to a line's answerer (http, llm), by outcome: answered, or the failure its "
    "fallback answered instead (timeout, error, invalid)",
    ["member_id", "answerer", "outcome"],
)
ANSWER_SECONDS = Histogram(
    "ol_answer_seconds",
    "How long a line's answerer took to answer (or to fail)",
    ["answerer"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0),
)
ANSWERER_TOKENS = Counter(
    "ol_answerer_tokens",
    "Tokens the llm answerer's endpoint reported using (kind: prompt, completion)",
    ["kind"],
)
TYPING_SHOWN = Counter(
    "ol_typing_shown", "Typing indicators shown while an answer was pending", ["member_id"]
)
RECONCILE_CHECKS = Counter(
    "ol_reconcile_checks",
    "Open dialogs asked about at the portal (imopenlines.dialog.get), by what it showed "
    "(open: still our session; gone: closed or another session)",
    ["member_id", "outcome"],
)
RECONCILE_FINISHES = Counter(
    "ol_reconcile_finishes",
    "Sessions finished by reconciliation: the portal had closed them and no push told us",
    ["member_id"],
)

# --- the v2 bot event fetcher (orchestrator/ingress/pull/fetcher.py) ------------------------
FETCH_POLLS = Counter(
    "ol_fetch_polls",
    "imbot.v2.Event.get calls made, by whether the page was empty",
    ["member_id", "empty"],
)
FETCH_EVENTS = Counter("ol_fetch_events", "Bot events fetched from the portal", ["member_id"])
FETCH_REFUSED = Counter(
    "ol_fetch_refused",
    "Fetched events not taken (an event type we do not handle)",
    ["member_id", "reason"],
)
FETCH_CONFIRMS = Counter(
    "ol_fetch_confirms", "Offsets saved after their events were stored", ["member_id"]
)
FETCH_LAG = Gauge(
    "ol_fetch_lag_seconds", "Age of the newest event of the last non-empty page", ["member_id"]
)
POLLER_TAKEOVERS = Counter(
    "ol_poller_takeovers",
    "Poller leases this process took (a start, or a dead holder's)",
    ["poller"],
)

# The offline-event consumer (orchestrator/ingress/pull/offline.py) and its ingress hint.
OFFLINE_ROWS = Counter(
    "ol_offline_rows",
    "Rows read from a portal's offline event queue, by outcome (ingested, duplicate, poison)",
    ["member_id", "outcome"],
)
OFFLINE_BATCHES = Counter(
    "ol_offline_batches",
    "Offline batches done with, by mode: cleared (reserved, stored, then event.offline.clear) "
    "or taken (clear=1, deleted by the read: at most once)",
    ["member_id", "mode"],
)
OFFLINE_TAKEOVERS = Counter(
    "ol_offline_takeovers",
    "Times this process took a portal's offline consumer lease",
    ["member_id"],
)
OFFLINE_ERRORS = Counter(
    "ol_offline_errors",
    "Offline drains that failed on Redis or the portal (retried at the next wake-up or sweep)",
    ["member_id"],
)
OFFLINE_LAG_SECONDS = Gauge(
    "ol_offline_lag_seconds",
    "Age of the oldest row of the last offline batch read (portal clock to ours)",
    ["member_id"],
)
OFFLINE_WAKEUPS = Counter(
    "ol_offline_wakeups",
    "Verified ONOFFLINEEVENT hints at the ingress, by outcome (published, publish_failed)",
    ["outcome"],
)

# the per-portal gauges read at most this many pending dialogs per scrape
_PENDING_SCAN_LIMIT = 50_000


async def refresh_queue_gauges(client: aioredis.Redis, settings: Settings) -> None:
    """Read the queue depths (global and per portal) from Redis into the gauges."""
    keys = Keys(settings.key_prefix)
    async with client.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.pending)
        pipe.zcard(settings.queue_name)
        pipe.xlen(keys.dlq)
        pipe.zrange(keys.pending, 0, _PENDING_SCAN_LIMIT - 1, withscores=True)
        pending, queued, dead, members = await pipe.execute()
    QUEUE_DEPTH.labels(queue="pending_dialogs").set(pending)
    QUEUE_DEPTH.labels(queue="arq_jobs").set(queued)
    QUEUE_DEPTH.labels(queue="dlq").set(dead)
    counts: Tally[str] = Tally()
    oldest: dict[str, float] = {}
    for raw, score in members:
        member_id = raw.decode().partition("/")[0]
        counts[member_id] += 1
        oldest[member_id] = min(oldest.get(member_id, score), score)
    # portals that drained since the last scrape must drop to nothing, not keep their old value
    PORTAL_PENDING_DIALOGS.clear()
    PORTAL_OLDEST_PENDING_SECONDS.clear()
    now = now_ms()
    for member_id, count in counts.items():
        PORTAL_PENDING_DIALOGS.labels(member_id=member_id).set(count)
        age_s = max(0.0, (now - oldest[member_id]) / 1000)
        PORTAL_OLDEST_PENDING_SECONDS.labels(member_id=member_id).set(age_s)

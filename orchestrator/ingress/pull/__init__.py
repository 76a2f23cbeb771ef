"""The ways in we pull: the events the portal keeps for us until we confirm them — a v2 bot's
event log (`imbot.v2.Event.get`, fetcher.py) and the app's offline events (`event.offline.*`) —
each read by one poller per queue across the cluster (lease.py) and written through the
ingress's own one-call ingest (orchestrator/ingress/intake.py `ingest_event`)."""

from orchestrator.ingress.pull.lease import PollLease
from orchestrator.ingress.pull.offline import OfflineConsumer
from orchestrator.ingress.pull.offline_drain import DrainReport, OfflineDrainer

__all__ = ["DrainReport", "OfflineConsumer", "OfflineDrainer", "PollLease"]

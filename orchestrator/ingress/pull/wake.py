"""The portal's "you have news" notice, fanned out to every worker's pollers.

The ingress verifies an ONOFFLINEEVENT and publishes its portal's member id on
`Keys.offline_wake` (orchestrator/ingress/intake.py); each worker's offline consumer and bot
pollers subscribe. A notice follows the portal request that wrote offline rows — a client's
message among them, which also wrote a row in our bot's event log — so it is the moment to
look at both queues, instead of waiting for the next poll. It is a hint only: the portal drops
notices inside the binding's minTimeout, and a publish nobody hears is lost, so every poller
keeps its own cadence as well. The dialogs' timers, held until the bot's log is read past
their due time, ask the bot pollers alone on `Keys.fetch_wake` (orchestrator/pipeline/timers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import structlog

__all__ = ["listen"]

log = structlog.get_logger(__name__)


async def listen(
    redis: aioredis.Redis,
    channels: str | list[str],
    on_member: Callable[[str], Awaitable[None]],
    stop: asyncio.Event,
) -> None:
    """Call `on_member(member_id)` for each message on `channels` until `stop`, re-subscribing
    after a Redis outage (messages published meanwhile are missed: the cadences cover them)."""
    channel = [channels] if isinstance(channels, str) else channels
    backoff = 0.5
    while not stop.is_set():
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(*channel)
            backoff = 0.5
            while not stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    data = message["data"]
                    await on_member(data.decode() if isinstance(data, bytes) else str(data))
        except Exception as exc:
            log.warning("wake_listener_failed", channel=channel, error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 30.0)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

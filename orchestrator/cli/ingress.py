"""`orchestrator ingress`: the event ingress as a process, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import structlog

from orchestrator.cli.startup import portal_mode, redis_for, require_a_portal, wait_for_redis
from orchestrator.ingress.app import start_ingress
from orchestrator.observe.logs import configure_logging
from orchestrator.settings import Settings, load_settings

__all__ = ["cli_main"]

log = structlog.get_logger(__name__)


async def _serve_until_signalled(settings: Settings, host: str, port: int, portals: int) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (requests in flight finish)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    server = await start_ingress(settings, host, port)
    # the one line an operator looks for: what serves, where, for which portals
    log.info(
        "ingress_listening",
        url=server.url,
        events=f"{server.url}/b24/events",
        portals_registered=portals,
        spool_dir=settings.spool_dir,
        **portal_mode(settings),
    )
    try:
        await stopping.wait()
    finally:
        await server.stop()


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator ingress`."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    with contextlib.ExitStack() as stack:
        url = redis_for(settings, args, stack)
        wait_for_redis(url, settings.redis_start_wait_s)
        settings = settings.model_copy(update={"redis_url": url})
        portals = require_a_portal(settings)
        host, port = args.host or settings.ingress_host, args.port or settings.ingress_port
        asyncio.run(_serve_until_signalled(settings, host, port, portals))
    return 0

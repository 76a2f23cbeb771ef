"""The ingress's cap on idle connections: past it, the connections idle the longest are closed.

The header-read timeout (`start_ingress`) bounds how long one connection may wait without a
complete request head, not how many may wait at once: a flood of connections that send nothing
holds a file descriptor and a handler each until the timeout. So a few times a second the guard
counts the open connections that have no request in a handler and closes the excess: first those
that have never been answered, oldest first, then those whose last answer is the oldest — a
connection that has completed a request (a load balancer's pool, a scraper) is likelier a real
client than one that never sent a head.

aiohttp has no such knob, so this uses its public API only: `web.Server.connections` and
`RequestHandler.force_close()`, with requests in flight tracked by a middleware whose cost per
request is a set add and discard and one dict store (the hot path is benchmarked). A connection
whose handler has returned but whose answer is still being flushed to a slow reader counts as
idle: under pressure, cutting such a reader is fine (`force_close` still flushes what was written).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["CHECK_EVERY_S", "IdleConnectionCap"]

log = structlog.get_logger(__name__)

CHECK_EVERY_S = 0.25  # a flood gets this long (at most) past the cap before it is cut back


class IdleConnectionCap:
    """Keeps at most `max_idle` connections open with no request in a handler."""

    def __init__(self, max_idle: int) -> None:
        self.max_idle = max_idle
        self._busy: set[web.RequestHandler] = set()
        # when each connection was last answered, as a tick of `_clock` (a strict order)
        self._answered: dict[web.RequestHandler, int] = {}
        self._clock = itertools.count()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Mark the connection busy while its request is in a handler."""
        protocol = request.protocol
        self._busy.add(protocol)
        try:
            return await handler(request)
        finally:
            self._busy.discard(protocol)
            self._answered[protocol] = next(self._clock)

    def enforce(self, connections: Sequence[web.RequestHandler]) -> int:
        """Close the idle connections past the cap (given in the order they opened); how many."""
        if len(self._answered) > len(connections):  # some are gone: forget them
            live = set(connections)
            self._answered = {c: t for c, t in self._answered.items() if c in live}
        if len(connections) <= self.max_idle:
            return 0
        # a connection already closing (no transport) holds no socket: not worth counting
        idle = [c for c in connections if c not in self._busy and c.transport is not None]
        excess = len(idle) - self.max_idle
        if excess <= 0:
            return 0
        # never answered (-1) first; the sort is stable, so those stay in the order they opened
        idle.sort(key=lambda c: self._answered.get(c, -1))
        for connection in idle[:excess]:
            connection.force_close()
        return excess

    async def run(self, server: web.Server) -> None:
        """Enforce the cap on `server`'s connections every CHECK_EVERY_S, until cancelled."""
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            closed = self.enforce(server.connections)
            if closed:
                log.warning("ingress_idle_connections_closed", closed=closed, cap=self.max_idle)

"""The ingress's connection limits, against the real ingress on loopback and the suite's Redis:
the header-read timeout (slowloris heads, idle keep-alive) and the cap on idle connections.

Liveness bounds only ("closed within the timeout plus a margin"), never speed checks; every
socket a test opens is closed before it ends (about 2 file descriptors per connection here).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from orchestrator.ingress.app import IngressServer, start_ingress
from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.keys import Keys
from orchestrator.redis.client import aw
from orchestrator.settings import Settings
from tests.integration.pipeline.conftest import FORM, eventually, form, message_payload

MEMBER, TOKEN = "m-conn-limits", "token-of-the-conn-limits-portal"
DOMAIN = "acme.bitrix24.com"
MARGIN_S = 5.0  # on top of a timeout: scheduling noise of a busy test machine


@asynccontextmanager
async def _ingress(
    settings: Settings, redis: aioredis.Redis, tmp_path: Path, **limits: object
) -> AsyncIterator[IngressServer]:
    """The test portal registered and the ingress on 127.0.0.1 with these connection limits."""
    settings = settings.model_copy(update={"spool_dir": str(tmp_path / "spool"), **limits})
    await Portals(redis, Keys(settings.key_prefix)).register(MEMBER, DOMAIN, TOKEN, source="t")
    server = await start_ingress(settings, "127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()
        job_ids = await redis.zrange(settings.queue_name, 0, -1)
        await redis.delete(settings.queue_name, *(b"arq:job:" + j for j in job_ids))


@dataclass
class _Raw:
    """A client connection we drive by hand."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@asynccontextmanager
async def _raw_connections(port: int, count: int) -> AsyncIterator[list[_Raw]]:
    """`count` connections opened one after another (so the server accepts them in order)."""
    opened: list[_Raw] = []
    try:
        for _ in range(count):
            opened.append(_Raw(*await asyncio.open_connection("127.0.0.1", port)))
        yield opened
    finally:
        await asyncio.gather(*(c.close() for c in opened))


async def _post_events(
    http: aiohttp.ClientSession, url: str, chat: int, done: Callable[[], bool]
) -> list[int]:
    """POST distinct events one after another until `done()` (at least three); the statuses."""
    statuses: list[int] = []
    while len(statuses) < 3 or not done():
        body = form(message_payload(chat, len(statuses) + 1, member=MEMBER, token=TOKEN))
        async with http.post(f"{url}/b24/events", data=body, headers=FORM) as resp:
            statuses.append(resp.status)
        await asyncio.sleep(0.05)
    return statuses


# --- the header-read timeout -------------------------------------------------------------------

PARTIAL_HEAD = (
    b"POST /b24/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\n"
)


async def _slowloris(conn: _Raw, every_s: float, bound_s: float) -> bytes:
    """Send a partial request head, then one more header line every `every_s`, never the blank
    line that ends it; what the server sent before closing (EOF) within `bound_s`."""

    async def trickle() -> None:
        conn.writer.write(PARTIAL_HEAD)
        line = 0
        with contextlib.suppress(ConnectionError):
            while not conn.reader.at_eof():
                await asyncio.sleep(every_s)
                line += 1
                conn.writer.write(b"X-Trickle-%d: still here\r\n" % line)
                await conn.writer.drain()

    trickler = asyncio.create_task(trickle())
    try:
        return await asyncio.wait_for(conn.reader.read(), timeout=bound_s)
    finally:
        trickler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trickler


async def test_slowloris_heads_are_cut_at_the_header_timeout_while_events_are_served(
    settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """200 connections that each send part of a request head and then trickle a header line
    every second are all closed by the ingress (EOF, nothing sent) within the header timeout
    plus a margin, though they keep sending; real events POSTed on another connection meanwhile
    are all answered 200 and queued. The idle cap is set out of reach: the timeout alone acts."""
    timeout_s = 2.0
    limits = {"ingress_header_timeout_s": timeout_s, "ingress_max_idle_connections": 10_000}
    async with (
        _ingress(settings, redis, tmp_path, **limits) as ingress,
        _raw_connections(ingress.port, 200) as conns,
        aiohttp.ClientSession() as http,
    ):
        lorises = asyncio.gather(*(_slowloris(c, 1.0, timeout_s + MARGIN_S) for c in conns))
        statuses = await _post_events(http, ingress.url, 601, lorises.done)
        answers = await lorises
    assert answers == [b""] * 200
    assert set(statuses) == {200}
    inbox = Keys(settings.key_prefix).dialog(MEMBER, "601").inbox
    assert await aw(redis.llen(inbox)) == len(statuses)


async def test_an_idle_keep_alive_connection_is_closed_at_the_header_timeout(
    settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """After an answer the timer starts again: a keep-alive connection that sends nothing more
    is closed within the header timeout plus a margin, having got exactly its one answer."""
    timeout_s = 1.0
    async with (
        _ingress(settings, redis, tmp_path, ingress_header_timeout_s=timeout_s) as ingress,
        _raw_connections(ingress.port, 1) as [conn],
    ):
        conn.writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = await asyncio.wait_for(conn.reader.read(), timeout=timeout_s + MARGIN_S)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.count(b"HTTP/1.1") == 1


# --- the idle-connection cap -------------------------------------------------------------------


def _server_connections(ingress: IngressServer) -> int:
    server = ingress.runner.server
    assert server is not None
    return len(server.connections)


async def _request(conn: _Raw, head: bytes, body: bytes = b"") -> int:
    """Send one keep-alive request on `conn` and read its whole answer; its status."""
    conn.writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    answer_head = await conn.reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in answer_head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await conn.reader.readexactly(length)
    return int(answer_head.split(b" ", 2)[1])


async def test_idle_connections_past_the_cap_are_closed_never_answered_oldest_first(
    settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> None:
    """A keep-alive client gets an event answered, then cap + 50 connections open that send
    nothing (under a header timeout too long to matter): the ingress closes the 51 of those
    opened first and is left holding `cap` connections. The client, older than all of them but
    answered, stays open and is answered again meanwhile."""
    cap = 20
    limits = {"ingress_header_timeout_s": 600.0, "ingress_max_idle_connections": cap}
    event = form(message_payload(602, 1, member=MEMBER, token=TOKEN))
    post = b"POST /b24/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    post += b"Content-Type: application/x-www-form-urlencoded\r\n"
    async with (
        _ingress(settings, redis, tmp_path, **limits) as ingress,
        _raw_connections(ingress.port, 1) as [client],
    ):
        assert await _request(client, post, event) == 200
        async with _raw_connections(ingress.port, cap + 50) as idle:

            async def settled() -> bool:
                """The first 51 idle connections saw EOF, the rest did not; `cap` are left."""
                expected = [True] * 51 + [False] * (cap - 1)
                return [c.reader.at_eof() for c in idle] == expected and (
                    _server_connections(ingress) == cap
                )

            await eventually(settled)
            assert not client.reader.at_eof()
            health = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            assert await _request(client, health) == 200
    inbox = Keys(settings.key_prefix).dialog(MEMBER, "602").inbox
    assert await aw(redis.llen(inbox)) == 1

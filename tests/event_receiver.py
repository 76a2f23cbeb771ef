"""A local event handler for the emulator to post to: answers 200 and keeps every POST, decoded
flat (PHP bracket keys stay as they are), so a test can read what the portal pushed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class Receiver:
    """The handler's URL and every body it got, in order."""

    url: str = ""
    bodies: list[dict[str, str]] = field(default_factory=list)

    def events(self, name: str) -> list[dict[str, str]]:
        return [b for b in self.bodies if b.get("event") == name]


@asynccontextmanager
async def event_receiver() -> AsyncIterator[Receiver]:
    """`POST /events` on a free loopback port, for the life of the block."""
    receiver = Receiver()

    async def handle(request: web.Request) -> web.Response:
        raw = (await request.read()).decode()
        receiver.bodies.append(dict(parse_qsl(raw, keep_blank_values=True)))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/events"
        yield receiver
    finally:
        await runner.cleanup()

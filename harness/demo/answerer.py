"""The contact center's own answerer service, as the demo runs one on loopback (docs/answerers.md).

A small knowledge base answers what it knows (delivery countries, returns, opening hours) with
buttons for the follow-up; it asks for the field the bot is collecting when the client talks
about something else; it hands off a client who is upset. It checks the signature of every
request and counts what it was asked, so the demo can show the answerer's share.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.loopback import serve
from orchestrator.handler.answerers.signing import HEADER, verify

__all__ = ["ANSWERS", "SECRET_ENV", "DemoAnswerer", "demo_answerer"]

SECRET_ENV = "ANSWERER_SECRET"
# (words in the client's message, the reply, its buttons)
ANSWERS: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = (
    (
        ("spain", "france", "italy", "abroad", "country"),
        "Yes, we deliver to every EU country within 5 working days.",
        ("Delivery costs", "Returns"),
    ),
    (("delivery costs", "shipping cost"), "Delivery is free from 50 EUR, else 4.90 EUR.", ()),
    (("return", "refund"), "You can return anything within 30 days, free of charge.", ()),
    (("open", "hours"), "We answer Monday to Friday, 9:00 to 18:00.", ()),
)
UPSET = ("angry", "terrible", "complaint", "worst")


@dataclass
class DemoAnswerer:
    """What the service was asked, and how it answered."""

    url: str = ""
    asked: int = 0
    refused: int = 0  # requests whose signature did not verify
    by_action: dict[str, int] = field(default_factory=dict)

    def decide(self, question: dict[str, Any]) -> dict[str, Any]:
        """The action for one request."""
        words = str(question.get("message", "")).lower()
        if any(w in words for w in UPSET):
            return {"action": "handoff", "reason": "upset client", "note": "Handle with care."}
        for keys, reply, follow_ups in ANSWERS:
            if any(k in words for k in keys):
                buttons = [{"text": b, "value": b} for b in follow_ups]
                return {"action": "reply", "text": reply, "buttons": buttons}
        dialog = question.get("dialog") or {}
        if dialog.get("asking") and not dialog.get("first_message"):
            return {"action": "ask", "field": dialog["asking"]}
        return {"action": "reply", "text": "I can help with delivery, returns and our hours."}


@asynccontextmanager
async def demo_answerer() -> AsyncIterator[DemoAnswerer]:
    """The service on a free loopback port, its secret in the environment the workers read
    (restored afterwards)."""
    secret = secrets.token_urlsafe(24)
    service = DemoAnswerer()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not verify(secret, request.headers.get(HEADER, ""), body):
            service.refused += 1
            return web.Response(status=401)
        service.asked += 1
        action = service.decide(json.loads(body))
        service.by_action[action["action"]] = service.by_action.get(action["action"], 0) + 1
        return web.json_response(action)

    app = web.Application()
    app.router.add_post("/answer", handle)
    async with serve(app) as base:
        service.url = f"{base}/answer"
        with _env(SECRET_ENV, secret):
            yield service


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before

"""Servers a line's answerer talks to in the end-to-end tests, on loopback: a contact center's
service (its behaviour set per test) and a server that speaks the OpenAI chat-completions API
(its "model" answers by rule). Both record every request they were sent, as they got it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from harness.loopback import serve
from orchestrator.handler.answerers.signing import HEADER, verify

Behaviour = Callable[[dict[str, Any]], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    """One request as the server got it."""

    headers: dict[str, str]
    body: dict[str, Any]
    signed: bool


@dataclass
class FakeServer:
    """A running loopback server and what it was sent."""

    url: str
    received: list[Received] = field(default_factory=list)


@asynccontextmanager
async def serving(
    path: str, handle: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[str]:
    """An aiohttp app with one POST route on a free loopback port; yields its URL."""
    app = web.Application()
    app.router.add_post(path, handle)
    async with serve(app) as base:
        yield f"{base}{path}"


@asynccontextmanager
async def answer_service(secret: str, behaviour: Behaviour) -> AsyncIterator[FakeServer]:
    """A contact center's answerer service: unsigned requests get 401, the rest `behaviour`."""
    server = FakeServer(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        signed = verify(secret, request.headers.get(HEADER, ""), body)
        server.received.append(Received(dict(request.headers), json.loads(body), signed))
        if not signed:
            return web.Response(status=401)
        return await behaviour(json.loads(body))

    async with serving("/answer", handle) as url:
        server.url = url
        yield server


def action(payload: dict[str, Any], delay_s: float = 0.0) -> Behaviour:
    """Always answer `payload` (after `delay_s`)."""

    async def behave(_: dict[str, Any]) -> web.StreamResponse:
        await asyncio.sleep(delay_s)
        return web.json_response(payload)

    return behave


Model = Callable[[list[dict[str, Any]]], dict[str, Any]]


@asynccontextmanager
async def chat_completions(api_key: str, model: Model) -> AsyncIterator[FakeServer]:
    """`POST /v1/chat/completions` as OpenAI's API answers it: the content is the JSON `model`
    chooses for the messages; a wrong key gets 401 as there."""
    server = FakeServer(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        authorized = request.headers.get("Authorization") == f"Bearer {api_key}"
        server.received.append(Received(dict(request.headers), body, authorized))
        if not authorized:
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            return web.json_response({"error": error}, status=401)
        content = json.dumps(model(body["messages"]))
        return web.json_response(
            {
                "id": f"chatcmpl-{len(server.received)}",
                "object": "chat.completion",
                "created": 1767225600,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 120, "completion_tokens": 18, "total_tokens": 138},
            }
        )

    async with serving("/v1/chat/completions", handle) as url:
        server.url = url.removesuffix("/chat/completions")
        yield server

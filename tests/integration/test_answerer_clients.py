"""The answerer clients over real HTTP on loopback: the signature, what counts as a failure and
of which kind, the llm adapter's request and its reading of a completion, and the pool's limits
(timeout, typing indicator, validation)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from orchestrator.dialog.actions import AnswerRequest, DialogView, Turn
from orchestrator.dialog.answerer_config import AnswererConfig, HttpAnswerer, LlmAnswerer
from orchestrator.dialog.effects import AskAnswerer, EffectId
from orchestrator.dialog.scenario import ScenarioSet
from orchestrator.dialog.scenario_file import load_scenario
from orchestrator.errors import ConfigurationError
from orchestrator.handler.answerers import (
    AnswererFailed,
    AnswererPool,
    HttpAnswererClient,
    LlmAnswererClient,
    sign,
    verify,
)
from tests.answerer_fakes import action, answer_service, chat_completions, serving

SECRET = "s3cret"
REQUEST = AnswerRequest(
    turn=4,
    message="Do you ship to Spain?",
    dialog=DialogView(
        member_id="m1",
        chat_id=7,
        session_id=70,
        line_id=1,
        language="en",
        asking="email",
        collected={"name": "Jane", "email": None},
        skipped=[],
        answers=1,
        first_message=False,
    ),
    recent=[
        Turn(role="bot", text="What is your e-mail?", at=1.0),
        Turn(role="client", text="Do you ship to Spain?", at=2.0),
    ],
    fields=["name", "email"],
).model_dump(mode="json")


def test_the_signature_binds_the_body_the_secret_and_the_time() -> None:
    body = b'{"turn":1}'
    header = sign(SECRET, body, timestamp=1_000_000)
    assert verify(SECRET, header, body, now=1_000_100)
    assert not verify(SECRET, header, body + b" ", now=1_000_100)  # the body changed
    assert not verify("other", header, body, now=1_000_100)  # another secret
    assert not verify(SECRET, header, body, now=1_000_000 + 301)  # too old: a replay
    assert not verify(SECRET, "t=abc,v1=00", body)
    assert not verify(SECRET, "", body)


async def _http_answer(url: str, secret: str = SECRET, retries: int = 0) -> Any:
    async with aiohttp.ClientSession() as session:
        config = HttpAnswerer(url=url, retries=retries)
        return await HttpAnswererClient(session, config, secret).answer(REQUEST, "m1:7:70:4:0")


async def test_a_signed_request_gets_the_services_action() -> None:
    reply = {"action": "reply", "text": "Yes."}
    async with answer_service(SECRET, action(reply)) as service:
        assert await _http_answer(service.url) == reply
    [got] = service.received
    assert got.signed
    assert got.headers["Idempotency-Key"] == "m1:7:70:4:0"
    assert got.body == REQUEST


@pytest.mark.parametrize(
    ("respond", "failure"),
    [
        (lambda: web.Response(status=500, text="boom"), "error"),
        (lambda: web.Response(status=200, text="<html>"), "invalid"),
        (lambda: web.Response(status=200, body=b"[" + b"1," * 40_000 + b"1]"), "invalid"),
    ],
    ids=["5xx", "not-json", "too-large"],
)
async def test_what_the_service_answers_wrong_is_a_failure_of_its_kind(
    respond: Any, failure: str
) -> None:
    async def handle(_: web.Request) -> web.StreamResponse:
        return respond()

    async with serving("/answer", handle) as url:
        with pytest.raises(AnswererFailed) as caught:
            await _http_answer(url)
    assert caught.value.failure == failure


async def test_a_wrong_secret_is_refused_by_the_service() -> None:
    async with answer_service(SECRET, action({"action": "reply", "text": "x"})) as service:
        with pytest.raises(AnswererFailed, match="HTTP 401"):
            await _http_answer(service.url, secret="wrong")


async def test_only_a_request_that_never_left_is_tried_again() -> None:
    """Connection refused: tried 1 + retries times, then an error; a 5xx is not retried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends
    with pytest.raises(AnswererFailed, match="cannot connect"):
        await _http_answer(f"http://127.0.0.1:{port}/answer", retries=2)
    seen: list[int] = []

    async def fails(_: web.Request) -> web.StreamResponse:
        seen.append(1)
        return web.Response(status=503)

    async with serving("/answer", fails) as url:
        with pytest.raises(AnswererFailed):
            await _http_answer(url, retries=2)
    assert seen == [1]


def _llm(url: str, fmt: str = "json_schema") -> LlmAnswerer:
    return LlmAnswerer(base_url=url, model="m-1", api_key_env="K", response_format=fmt)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            {"action": "ask", "field": "email", "text": None, "reason": None, "note": None},
            {"action": "ask", "field": "email"},
        ),
        (
            {"action": "handoff", "text": None, "field": None, "reason": "r", "note": "n"},
            {"action": "handoff", "reason": "r", "note": "n"},
        ),
    ],
)
async def test_the_models_flat_object_becomes_the_action(
    content: dict[str, Any], expected: dict[str, Any]
) -> None:
    async with chat_completions("k1", lambda _: content) as server, aiohttp.ClientSession() as s:
        got = await LlmAnswererClient(s, _llm(server.url), "k1", "FAQ: x").answer(REQUEST, "id")
    assert got == expected
    body = server.received[0].body
    assert "FAQ: x" in body["messages"][0]["content"]
    assert body["messages"][1:] == [
        {"role": "assistant", "content": "What is your e-mail?"},
        {"role": "user", "content": "Do you ship to Spain?"},
    ]
    assert body["response_format"]["json_schema"]["schema"]["properties"]["field"]["enum"] == [
        "name",
        "email",
        None,
    ]


@pytest.mark.parametrize(
    "completion",
    [
        {"choices": [{"message": {"content": None, "refusal": "I cannot help with that."}}]},
        {"choices": [{"message": {"content": "Sure! Here you go."}}]},
        {"choices": [{"message": {"content": json.dumps({"action": "dance"})}}]},
        {"choices": []},
        {"error": {"message": "overloaded"}},
    ],
    ids=["refusal", "prose", "unknown-action", "no-choice", "no-completion"],
)
async def test_a_completion_without_an_action_is_invalid(completion: dict[str, Any]) -> None:
    async def handle(_: web.Request) -> web.StreamResponse:
        return web.json_response(completion)

    async with serving("/v1/chat/completions", handle) as url, aiohttp.ClientSession() as s:
        base = url.removesuffix("/chat/completions")
        with pytest.raises(AnswererFailed) as caught:
            await LlmAnswererClient(s, _llm(base, "json_object"), "k").answer(REQUEST, "id")
    assert caught.value.failure == "invalid"


def _scenarios(answerer: AnswererConfig) -> ScenarioSet:
    shipped = load_scenario(None)
    default = shipped.default.model_copy(update={"answerer": answerer})
    return shipped.model_copy(update={"default": default, "lines": {}})


def _question() -> tuple[AskAnswerer, EffectId]:
    effect_id = EffectId("m1", 7, 70, 4, 0)
    return AskAnswerer(chat_id=7, line_id=1, turn=4, request=REQUEST), effect_id


async def test_the_pool_times_out_shows_typing_and_validates(tmp_path: Any) -> None:
    """A slow service: a timeout, with the typing indicator shown while it waited; an answer
    outside the contract: invalid; a good one: the action, without empty keys."""
    shown: list[float] = []

    async def typing() -> None:
        shown.append(asyncio.get_running_loop().time())

    answers = iter(
        [
            action({"action": "reply", "text": "late"}, delay_s=4.0),
            action({"action": "ask", "field": "phone"}),  # not a field of this line
            action({"action": "reply", "text": "Yes, to Spain too."}),
        ]
    )

    async def behave(question: dict[str, Any]) -> web.StreamResponse:
        return await next(answers)(question)

    async with answer_service(SECRET, behave) as service:
        config = AnswererConfig(
            kind="http", http={"url": service.url}, timeout_s=1.5, typing_after_s=0.05
        )
        pool = AnswererPool.build(_scenarios(config), tmp_path, env={"ANSWERER_SECRET": SECRET})
        try:
            effect, effect_id = _question()
            slow = await pool.ask(effect, effect_id, typing)
            invalid = await pool.ask(effect, effect_id, typing)
            good = await pool.ask(effect, effect_id, typing)
        finally:
            await pool.aclose()
    assert (slow.action, slow.failure) == (None, "timeout")
    assert len(shown) == 1  # once within the wait: not again before TYPING_EVERY_S
    assert (invalid.action, invalid.failure) == (None, "invalid")
    assert (good.action, good.failure) == ({"action": "reply", "text": "Yes, to Spain too."}, "")
    assert good.turn == 4
    assert good.effect_id == str(effect_id)


def test_the_pool_refuses_to_start_without_a_secret_or_its_knowledge(tmp_path: Any) -> None:
    http = AnswererConfig(kind="http", http={"url": "http://127.0.0.1:9/"})
    with pytest.raises(ConfigurationError, match="ANSWERER_SECRET"):
        AnswererPool.build(_scenarios(http), tmp_path, env={})
    llm = AnswererConfig(
        kind="llm",
        llm={"base_url": "http://127.0.0.1:9/v1", "model": "m", "knowledge_path": "kb.md"},
    )
    with pytest.raises(ConfigurationError, match=r"kb\.md"):
        AnswererPool.build(_scenarios(llm), tmp_path, env={"OPENAI_API_KEY": "k"})

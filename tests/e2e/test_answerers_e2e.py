"""End to end, a line whose replies an answerer decides: portal events -> ingress -> worker ->
the answerer on loopback -> the emulated portal. Judged by what the client saw in the chat, the
portal's session and lead, and what the answerer was sent.

The documented example service answering a whole dialog; a service that times out and one that
answers an invalid action (the rules answer, the dialog still ends in a lead, the failure
counted); the llm adapter against a server speaking the chat-completions API; a worker SIGKILLed
while an answer is pending (the client sees the answer once).
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp import web
from prometheus_client import REGISTRY

from harness.demo.portal_setup import demo_scenario
from harness.demo.stack import Stack, StackOptions, run_stack
from orchestrator.dialog.state import DialogStatus
from orchestrator.settings import Settings
from tests.answerer_fakes import FakeServer, action, answer_service, chat_completions
from tests.e2e.chat_client import Client, calls, ends_with_one_lead, operator_closes
from tests.e2e.conftest import drop_arq_jobs, eventually

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-shared-secret-of-the-contact-center"
OPERATOR = 3
DELIVERY_FAQ = "We deliver within 3 working days."  # the rules' FAQ answer (the fallback)


@asynccontextmanager
async def _stack(
    settings: Settings,
    redis: aioredis.Redis,
    tmp_path: Path,
    answerer: dict[str, Any],
    *,
    in_process: bool = True,
) -> AsyncIterator[Stack]:
    """The whole stack, the demo scenario's default line answered by `answerer`."""
    document = demo_scenario()
    document["default"]["answerer"] = answerer
    path = tmp_path / "answerer-scenario.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    settings = settings.model_copy(update={"scenario_path": str(path)})
    async with run_stack(settings, StackOptions(workers=1, in_process=in_process)) as running:
        yield running
    await drop_arq_jobs(redis, settings.queue_name)


def _http(url: str, **limits: Any) -> dict[str, Any]:
    return {"kind": "http", "http": {"url": url, "secret_env": "ANSWERER_SECRET"}, **limits}


def _answers(outcome: str) -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "ol_answers_total" and sample.labels.get("outcome") == outcome:
                total += sample.value
    return total


async def _collect_and_close(client: Client) -> None:
    """The client gives name, e-mail and phone; the bot hands off; an operator closes; the
    client likes it."""
    await client.say("Anna Smith", expect="What is your e-mail?")
    await client.say("anna@example.com", expect="And your phone number?")
    await client.say("+1 555 010 2030", expect="Connecting you with an operator, please wait.")
    await client.queued()
    await operator_closes(client, OPERATOR, vote="like")


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """The shared secret, where the workers read it (in-process and spawned alike)."""
    monkeypatch.setenv("ANSWERER_SECRET", SECRET)
    return SECRET


@asynccontextmanager
async def _documented_service(tmp_path: Path) -> AsyncIterator[str]:
    """docs/answerers.md's example service, run as written in a process of its own (only its
    port is swapped for a free one)."""
    doc = (ROOT / "docs" / "answerers.md").read_text(encoding="utf-8")
    [code] = re.findall(r"<!-- example: answerer-service -->\s*```python\n(.*?)```", doc, re.S)
    assert "port=8088" in code
    with socket.socket() as sock:  # a free port: bind, read, release
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = tmp_path / "answerer.py"
    script.write_text(code.replace("port=8088", f"port={port}"), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.DEVNULL
    )
    try:
        await _wait_listening(port)
        yield f"http://127.0.0.1:{port}/answer"
    finally:
        proc.kill()
        await proc.wait()


async def _wait_listening(port: int) -> None:
    async def listening() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    await eventually(listening, 20)


async def test_the_documented_service_answers_a_whole_dialog(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path, secret: str
) -> None:
    """The docs' example decides: an FAQ reply, the field asked again, then the rules collect
    and hand off; the lead carries what the client gave."""
    async with (
        _documented_service(tmp_path) as url,
        _stack(e2e_settings, redis, tmp_path, _http(url)) as stack,
    ):
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        faq = "We deliver across the EU within 3 working days."
        await client.say("Do you deliver to Spain?", expect=faq)
        await _collect_and_close(client)
        st = await ends_with_one_lead(client)
        assert (st.data.email, st.handoff_reason) == ("anna@example.com", "collected")
        assert client.texts().count(faq) == 1
        assert _answers("answered") >= 2


async def test_a_service_that_times_out_leaves_the_rules_to_answer(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path, secret: str
) -> None:
    """Past timeout_s the rules answer the same message, the client saw the bot typing, the
    timeout is counted, and the dialog still ends in a lead."""
    slow = action({"action": "reply", "text": "Too late to be said."}, delay_s=8.0)
    async with answer_service(secret, slow) as service:
        limits = {"timeout_s": 1.5, "typing_after_s": 0.1}
        async with _stack(e2e_settings, redis, tmp_path, _http(service.url, **limits)) as stack:
            before = _answers("timeout")
            client = Client(stack)
            await client.say("Hello", expect="How may I call you?")
            await client.say("What is the delivery time?", expect=DELIVERY_FAQ)
            await _collect_and_close(client)
            await ends_with_one_lead(client)
            assert "Too late to be said." not in client.texts()
            assert _answers("timeout") - before >= 2
            assert calls(stack, "imbot.chat.sendtyping") >= 1  # the portal's own count
            assert all(r.signed for r in service.received)


async def test_an_invalid_action_is_refused_and_counted(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path, secret: str
) -> None:
    """An action the contract does not have is refused; the rules answer; a lead at the end."""
    invalid = action({"action": "transfer", "user_id": 1, "text": "Sending you to Bob."})
    async with (
        answer_service(secret, invalid) as service,
        _stack(e2e_settings, redis, tmp_path, _http(service.url)) as stack,
    ):
        before = _answers("invalid")
        client = Client(stack)
        await client.say("Hello", expect="How may I call you?")
        await client.say("What is the delivery time?", expect=DELIVERY_FAQ)
        await _collect_and_close(client)
        await ends_with_one_lead(client)
        assert "Sending you to Bob." not in client.texts()
        assert _answers("invalid") - before >= 2
        request = service.received[-1]
        assert request.headers["Idempotency-Key"].startswith(f"{stack.member_id}:")
        assert request.body["dialog"]["member_id"] == stack.member_id


def _model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A "model" that follows its instructions by rule: answers delivery questions from the
    knowledge, asks for what is being asked, hands off the rest."""
    system, last = messages[0]["content"], messages[-1]["content"].lower()
    nothing = {"text": None, "field": None, "reason": None, "note": None}
    if "deliver" in last and "Express delivery takes one day." in system:
        return {**nothing, "action": "reply", "text": "Express delivery takes one day."}
    asked = re.search(r"Being asked: (\w+)\.", system)
    if asked and asked.group(1) != "nothing":
        return {**nothing, "action": "ask", "field": asked.group(1)}
    return {**nothing, "action": "handoff", "reason": "unsure"}


async def test_the_llm_adapter_against_a_chat_completions_server(
    e2e_settings: Settings,
    redis: aioredis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model is asked with the system prompt, the knowledge and the recent turns for one
    object of our flat schema; its reply reaches the client; the dialog ends in a lead."""
    monkeypatch.setenv("LLM_KEY", "sk-test-123")
    (tmp_path / "knowledge.md").write_text("Express delivery takes one day.\n", encoding="utf-8")
    async with chat_completions("sk-test-123", _model) as server:
        answerer = {
            "kind": "llm",
            "llm": {
                "base_url": server.url,
                "model": "gpt-4o-mini",
                "api_key_env": "LLM_KEY",
                "system_prompt": "You are the support bot of Example Shop.",
                "knowledge_path": "knowledge.md",
            },
        }
        async with _stack(e2e_settings, redis, tmp_path, answerer) as stack:
            client = Client(stack)
            await client.say("Hello", expect="How may I call you?")
            await client.say("How fast can you deliver?", expect="Express delivery takes one day.")
            await _collect_and_close(client)
            await ends_with_one_lead(client)
    _check_completion_requests(server)


def _check_completion_requests(server: FakeServer) -> None:
    asked = server.received[-1]
    assert asked.signed  # the key from the environment, as a bearer token
    body = asked.body
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["properties"]["action"]["enum"] == ["reply", "ask", "handoff", "finish"]
    system = body["messages"][0]
    assert system["role"] == "system"
    assert "Example Shop" in system["content"]
    assert "Express delivery takes one day." in system["content"]
    assert body["messages"][-1] == {"role": "user", "content": "How fast can you deliver?"}
    assert {m["role"] for m in body["messages"][1:]} <= {"user", "assistant"}


async def test_a_worker_killed_while_an_answer_is_pending_answers_once(
    e2e_settings: Settings, redis: aioredis.Redis, tmp_path: Path, secret: str
) -> None:
    """The worker holding a question is SIGKILLed; a new one asks again under the same id and
    the client sees the answer exactly once."""
    asked = asyncio.Event()
    released = asyncio.Event()
    reply = {"action": "reply", "text": "Yes, we deliver to the Canary Islands."}

    async def hold_first(question: dict[str, Any]) -> web.StreamResponse:
        if "Canary" not in question["message"]:
            return web.json_response({"action": "ask", "field": "name"})
        if not asked.is_set():  # the first time: until the worker asking is dead
            asked.set()
            await released.wait()
        return web.json_response(reply)

    settings = e2e_settings.model_copy(update={"log_level": "WARNING"})
    async with answer_service(secret, hold_first) as service:
        answerer = _http(service.url, timeout_s=30)
        async with _stack(settings, redis, tmp_path, answerer, in_process=False) as stack:
            client = Client(stack)
            await client.say("Hello", expect="How may I call you?")
            await client.say("Do you deliver to the Canary Islands?")
            await _wait(asked.wait())
            [worker] = stack.worker_processes
            stack.kill_worker(worker)
            released.set()
            stack.spawn_worker()

            async def answered() -> bool:
                return reply["text"] in client.texts()

            await eventually(answered, 40)
            await client.say("Anna Smith", expect="What is your e-mail?")
            assert client.texts().count(reply["text"]) == 1
            keys = [r.headers["Idempotency-Key"] for r in service.received]
            question = [k for k in keys if keys.count(k) > 1]
            assert question, f"the question was not asked again after the kill: {keys}"
            st = await client.state(DialogStatus.BOT)
            assert st.pending_ask is None


async def _wait(awaitable: Awaitable[Any], within_s: float = 30.0) -> None:
    await asyncio.wait_for(awaitable, within_s)

"""The ingress under attack: fuzzed bodies, replays, another portal's token, oversized and slow
bodies, and two portals using the same chat id. The ingress runs in-process on port 0 against
the real Redis of the suite; every refusal must be a 4xx that leaves Redis untouched."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings

from orchestrator.events.convert import inputs_of_stored
from orchestrator.ingress.app import IngressServer, start_ingress
from orchestrator.ingress.portals import Portals
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.records import EffectRecord, StoredEvent
from orchestrator.pipeline.runner import Decision, FollowUp, Runner
from orchestrator.pipeline.store import Store
from orchestrator.redis.client import aw
from orchestrator.settings import Settings
from tests.fuzz_strategies import bodies
from tests.integration.pipeline.conftest import FORM, form, message_payload

A, TOKEN_A = "m-portal-a", "token-of-portal-a-0123456789"
B, TOKEN_B = "m-portal-b", "token-of-portal-b-9876543210"
DOMAIN = "acme.bitrix24.com"


@dataclass
class Ingress:
    """The running ingress and what the tests check it with."""

    url: str
    settings: Settings
    redis: aioredis.Redis

    async def keys(self) -> set[bytes]:
        """Every key under the test's prefix."""
        pattern = f"{self.settings.key_prefix}*"
        return {k async for k in self.redis.scan_iter(match=pattern, count=1000)}

    async def queued_jobs(self) -> int:
        return int(await self.redis.zcard(self.settings.queue_name))


@pytest.fixture
async def ingress(
    settings: Settings, redis: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Ingress]:
    """Two registered portals (A, B) and the ingress on 127.0.0.1 and a free port."""
    settings = settings.model_copy(
        update={"spool_dir": str(tmp_path / "spool"), "ingress_body_timeout_s": 1.0}
    )
    portals = Portals(redis, Keys(settings.key_prefix))
    await portals.register(A, DOMAIN, TOKEN_A, source="test")
    await portals.register(B, DOMAIN, TOKEN_B, source="test")
    server = await start_ingress(settings, "127.0.0.1", 0)
    try:
        yield Ingress(server.url, settings, redis)
    finally:
        await server.stop()
        job_ids = await redis.zrange(settings.queue_name, 0, -1)
        if job_ids:
            await redis.delete(*(b"arq:job:" + j for j in job_ids))
        await redis.delete(settings.queue_name)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def _start(settings: Settings) -> IngressServer:
    client = aioredis.Redis.from_url(str(settings.redis_url))
    portals = Portals(client, Keys(settings.key_prefix))
    await portals.register(A, DOMAIN, TOKEN_A, source="test")
    await portals.register(B, DOMAIN, TOKEN_B, source="test")
    await client.aclose()
    return await start_ingress(settings, "127.0.0.1", 0)


@dataclass
class ThreadedIngress:
    """The ingress on its own event loop in a thread, for synchronous (hypothesis) tests."""

    port: int
    settings: Settings
    redis: redis.Redis

    def keys(self) -> set[bytes]:
        return set(self.redis.scan_iter(match=f"{self.settings.key_prefix}*", count=1000))

    def queued_jobs(self) -> int:
        return int(cast(int, self.redis.zcard(self.settings.queue_name)))

    def post(self, body: bytes, content_type: str) -> int:
        conn = HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", "/b24/events", body=body, headers={"Content-Type": content_type})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


@pytest.fixture
def threaded_ingress(settings: Settings, tmp_path: Path) -> Iterator[ThreadedIngress]:
    """Portals A and B registered, the ingress serving from a background thread's loop."""
    settings = settings.model_copy(update={"spool_dir": str(tmp_path / "spool")})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ingress-loop", daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(_start(settings), loop).result(timeout=30)
    client = redis.Redis.from_url(str(settings.redis_url))
    try:
        yield ThreadedIngress(server.port, settings, client)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        job_ids = cast(list[bytes], client.zrange(settings.queue_name, 0, -1))
        if job_ids:
            client.delete(*(b"arq:job:" + j for j in job_ids))
        for key in [settings.queue_name, *client.scan_iter(match=f"{settings.key_prefix}*")]:
            client.delete(key)
        client.close()


@fuzz_settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=bodies(A, TOKEN_A))
def test_fuzzed_requests_never_get_a_5xx_and_refusals_store_nothing(
    threaded_ingress: ThreadedIngress, case: tuple[bytes, str]
) -> None:
    """Random bytes, odd bracket forms, huge values, bad UTF-8, JSON of any shape, fuzzed
    genuine events, any content type: the answer is 200 or a 4xx, and after a 4xx Redis holds
    exactly the keys and jobs it held before."""
    body, content_type = case
    before, jobs = threaded_ingress.keys(), threaded_ingress.queued_jobs()
    status = threaded_ingress.post(body, content_type)
    assert status == 200 or 400 <= status < 500, status
    if status != 200:
        assert threaded_ingress.keys() == before
        assert threaded_ingress.queued_jobs() == jobs


async def _post(
    http: aiohttp.ClientSession, ingress: Ingress, body: bytes, headers: dict[str, str] = FORM
) -> tuple[int, Any]:
    async with http.post(f"{ingress.url}/b24/events", data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_replayed_event_is_absorbed_however_often_and_concurrently_it_comes(
    ingress: Ingress, http: aiohttp.ClientSession
) -> None:
    """One event replayed 20 times (half of them at once) is queued once; every replay is
    answered 200 with duplicate=true, so a replaying attacker gains nothing."""
    body = form(message_payload(501, 9001, "hi", member=A, token=TOKEN_A))
    first = await _post(http, ingress, body)
    replays = [await _post(http, ingress, body) for _ in range(10)]
    replays += await asyncio.gather(*(_post(http, ingress, body) for _ in range(10)))
    assert first == (200, {"ok": True, "duplicate": False})
    assert all(r == (200, {"ok": True, "duplicate": True}) for r in replays)
    inbox = Keys(ingress.settings.key_prefix).dialog(A, "501").inbox
    assert await aw(ingress.redis.llen(inbox)) == 1


async def test_valid_token_of_another_portal_is_refused_and_stores_nothing(
    ingress: Ingress, http: aiohttp.ClientSession
) -> None:
    """Portal B's genuine application token on an event naming portal A: 401, nothing stored
    (and B's own event with it is fine, so the token itself is valid)."""
    before = await ingress.keys()
    status, answer = await _post(
        http, ingress, form(message_payload(502, 9002, member=A, token=TOKEN_B))
    )
    assert (status, answer["error"]) == (401, "forged_token")
    assert await ingress.keys() == before
    assert await ingress.queued_jobs() == 0
    status, _ = await _post(
        http, ingress, form(message_payload(502, 9002, member=B, token=TOKEN_B))
    )
    assert status == 200


async def test_oversized_bodies_get_413_with_or_without_content_length(
    ingress: Ingress, http: aiohttp.ClientSession
) -> None:
    """A body over the limit is refused 413 whether it declares its length or comes chunked
    with none; nothing is stored either way."""
    limit = ingress.settings.ingress_max_body_bytes
    before = await ingress.keys()
    valid = form(message_payload(503, 9003, "x" * (limit + 1), member=A, token=TOKEN_A))
    status, answer = await _post(http, ingress, valid)
    assert (status, answer["error"]) == (413, "too_large")

    async def chunks() -> AsyncIterator[bytes]:
        yield valid[:1000]
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536

    async with http.post(f"{ingress.url}/b24/events", data=chunks(), headers=FORM) as resp:
        assert resp.status == 413
        assert "Content-Length" not in resp.request_info.headers
    assert await ingress.keys() == before


async def _trickle(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """Send one body byte every 0.2 s until told to stop or the server hangs up."""
    with contextlib.suppress(ConnectionError):
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(0.2)


async def test_slowloris_body_is_cut_while_normal_requests_keep_being_served(
    ingress: Ingress, http: aiohttp.ClientSession
) -> None:
    """A client that sends its headers and then trickles the body gets 408 and is hung up on
    (after INGRESS_BODY_TIMEOUT_S), while ordinary events meanwhile are accepted as usual."""
    port = int(ingress.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /b24/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    )
    stop = asyncio.Event()
    trickler = asyncio.create_task(_trickle(writer, stop))
    try:
        for index in range(3):  # served while the slow body is still coming
            body = form(message_payload(504, 9100 + index, member=A, token=TOKEN_A))
            assert (await _post(http, ingress, body))[0] == 200
        # a liveness bound: the server must close the connection (EOF) while we still send
        answer = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        stop.set()
        await trickler
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 408")
    assert not trickler.cancelled()
    inbox = Keys(ingress.settings.key_prefix).dialog(A, "504").inbox
    assert await aw(ingress.redis.llen(inbox)) == 3


class _Transcript:
    """A DialogHandler whose state lists (portal, text) of every event it applied."""

    def decide(self, state: bytes | None, event: StoredEvent) -> Decision:
        seen = json.loads(state) if state else []
        [inp] = inputs_of_stored(event.payload)  # what the ingress queued for the message
        text = getattr(inp, "text", None)
        seen.append([event.member_id, text])
        return Decision(json.dumps(seen).encode())

    async def execute(self, effect: EffectRecord) -> Sequence[FollowUp] | None:
        raise AssertionError("no effects are decided")


async def test_same_chat_id_on_two_portals_makes_two_separate_dialogs(
    ingress: Ingress, http: aiohttp.ClientSession
) -> None:
    """CHAT_ID 777 on portal A and on portal B: two inboxes, two states, each holding only its
    own portal's messages, and message ids that coincide are not taken for duplicates."""
    for member, token, text in ((A, TOKEN_A, "from A"), (B, TOKEN_B, "from B")):
        status, answer = await _post(
            http, ingress, form(message_payload(777, 1, text, member=member, token=token))
        )
        assert (status, answer["duplicate"]) == (200, False)
    store = Store(ingress.redis, ingress.settings)
    da, db = store.dialog(A, "777"), store.dialog(B, "777")
    assert len({da.inbox, db.inbox, da.state, db.state}) == 4
    runner = Runner(store, _Transcript(), ingress.settings, owner="test")
    for member in (A, B):
        await runner.drain(member, "777")
    assert json.loads((await store.state(da)).data or b"[]") == [[A, "from A"]]
    assert json.loads((await store.state(db)).data or b"[]") == [[B, "from B"]]

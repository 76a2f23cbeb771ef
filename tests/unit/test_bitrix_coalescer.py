"""The coalescer's grouping, with in-memory senders: alone without backlog, ≤ 50 under load."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import pytest

from orchestrator.bitrix.batch import Coalescer
from orchestrator.bitrix.envelope import Envelope
from orchestrator.bitrix.fence import WriteFence, fenced
from orchestrator.errors import MethodError, TransportError


class FakePortal:
    """Answers single calls and batches in memory; a gate makes the "limiter" wait when closed."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, int]] = []
        self.batches: list[list[str]] = []  # the methods of each batch, in order
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_batches = False

    async def acquire(self) -> float:
        await self.gate.wait()
        return 0.0

    async def send_one(self, method: str, params: Mapping[str, Any]) -> Envelope:
        self.requests.append((method, 1))
        if params.get("fail"):
            raise MethodError("BAD", method=method)
        return Envelope(result={"echo": params.get("n")})

    async def send_batch(self, cmd: dict[str, str]) -> Envelope:
        self.requests.append(("batch", len(cmd)))
        self.batches.append([command.split("?", 1)[0] for command in cmd.values()])
        if self.fail_batches:
            raise TransportError("connection reset")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, command in cmd.items():
            query = dict(parse_qsl(command.split("?", 1)[1]))
            if query.get("fail") == "1":
                errors[key] = {"error": "BAD", "error_description": "no"}
            else:
                results[key] = {"echo": int(query["n"])}
        return Envelope(
            result={
                "result": results,
                "result_error": errors or [],
                "result_total": dict.fromkeys(results, 7),
            }
        )


def _coalescer(portal: FakePortal) -> Coalescer:
    return Coalescer(
        "m",
        acquire=portal.acquire,
        send_one=portal.send_one,
        send_batch=portal.send_batch,
        window_s=0.0,
    )


async def test_a_call_without_backlog_goes_out_alone() -> None:
    """One call, nothing queued: it is sent as itself."""
    portal = FakePortal()
    coalescer = _coalescer(portal)
    env = await coalescer.submit("user.get", {"n": 1})
    await coalescer.close()
    assert env.result == {"echo": 1}
    assert portal.requests == [("user.get", 1)]


async def test_backlog_leaves_in_batches_of_at_most_fifty_with_own_results() -> None:
    """120 calls queued while the limiter waits leave as 50 + 50 + 20; each gets its own answer."""
    portal = FakePortal()
    portal.gate.clear()
    coalescer = _coalescer(portal)
    calls = [
        asyncio.create_task(coalescer.submit("user.get", {"n": i, "fail": i % 10 == 0}))
        for i in range(120)
    ]
    await asyncio.sleep(0.01)
    portal.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    await coalescer.close()
    assert sorted(size for _, size in portal.requests) == [20, 50, 50]
    for i, result in enumerate(results):
        if i % 10 == 0:
            assert isinstance(result, MethodError)
        else:
            assert isinstance(result, Envelope)
            assert result.result == {"echo": i}
            assert result.total == 7


async def test_the_calls_that_bring_events_in_jump_the_backlog() -> None:
    """Under a backlog, an event log read and an offline queue read submitted last leave in the
    very next request; the backlog keeps its order behind them."""
    portal = FakePortal()
    portal.gate.clear()
    coalescer = _coalescer(portal)
    backlog = [asyncio.create_task(coalescer.submit("user.get", {"n": i})) for i in range(60)]
    await asyncio.sleep(0.01)
    intake = [
        asyncio.create_task(coalescer.submit("imbot.v2.Event.get", {"n": 100})),
        asyncio.create_task(coalescer.submit("event.offline.get", {"n": 101})),
    ]
    await asyncio.sleep(0.01)
    portal.gate.set()
    await asyncio.gather(*backlog, *intake)
    await coalescer.close()
    first, second = portal.batches
    assert first[:2] == ["imbot.v2.Event.get", "event.offline.get"]
    assert (len(first), len(second)) == (50, 12)
    assert set(first[2:] + second) == {"user.get"}


async def test_a_failed_batch_request_reaches_every_caller() -> None:
    """When the batch's HTTP request fails, each coalesced caller gets that failure."""
    portal = FakePortal()
    portal.gate.clear()
    portal.fail_batches = True
    coalescer = _coalescer(portal)
    calls = [asyncio.create_task(coalescer.submit("user.get", {"n": i})) for i in range(5)]
    await asyncio.sleep(0.01)
    portal.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    await coalescer.close()
    assert all(isinstance(r, TransportError) for r in results)


async def test_cancelled_callers_are_not_sent() -> None:
    """A caller that gave up while queued does not take a place in the batch."""
    portal = FakePortal()
    portal.gate.clear()
    coalescer = _coalescer(portal)
    keep = asyncio.create_task(coalescer.submit("user.get", {"n": 1}))
    drop = asyncio.create_task(coalescer.submit("user.get", {"n": 2}))
    await asyncio.sleep(0.01)
    drop.cancel()
    portal.gate.set()
    assert (await keep).result == {"echo": 1}
    with pytest.raises(asyncio.CancelledError):
        await drop
    await coalescer.close()
    assert portal.requests == [("user.get", 1)]


class Stolen(Exception):
    """What the test's fence raises: the caller may no longer write."""


async def test_a_write_whose_fence_fails_after_the_limiter_wait_is_not_sent() -> None:
    """Three callers queue while the limiter waits: a write whose fence raises by the time the
    limiter lets the batch go is dropped unsent with the fence's error; a write whose fence
    passes, and a read (never fenced), still go out — together, as a batch of two."""
    portal = FakePortal()
    portal.gate.clear()
    coalescer = _coalescer(portal)
    lease = {"ours": True}
    checks: list[str] = []

    def fence_for(name: str) -> WriteFence:
        async def fence() -> None:
            checks.append(name)
            if name == "lost" and not lease["ours"]:
                raise Stolen(name)

        return fence

    async def submit(name: str, method: str, n: int) -> Envelope:
        with fenced(fence_for(name)):
            return await coalescer.submit(method, {"n": n})

    lost = asyncio.create_task(submit("lost", "imbot.message.add", 1))
    kept = asyncio.create_task(submit("kept", "imbot.message.add", 2))
    read = asyncio.create_task(submit("read", "user.get", 3))
    await asyncio.sleep(0.01)
    lease["ours"] = False  # the lease went while the calls waited for the limiter
    portal.gate.set()
    results = await asyncio.gather(lost, kept, read, return_exceptions=True)
    await coalescer.close()
    assert isinstance(results[0], Stolen)
    assert [r.result for r in results[1:] if isinstance(r, Envelope)] == [{"echo": 2}, {"echo": 3}]
    assert portal.requests == [("batch", 2)]
    assert sorted(checks) == ["kept", "lost"]  # checked once each, after the wait; reads never


async def test_a_write_alone_is_fenced_too() -> None:
    """A single queued write goes out as itself only when its fence passes."""
    portal = FakePortal()
    coalescer = _coalescer(portal)

    async def refuse() -> None:
        raise Stolen("gone")

    with fenced(refuse), pytest.raises(Stolen):
        await coalescer.submit("imbot.message.add", {"n": 1})
    await coalescer.close()
    assert portal.requests == []

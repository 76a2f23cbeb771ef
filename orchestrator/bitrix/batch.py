"""`batch`: the explicit form (a typed `BatchResult`) and the per-portal coalescer.

The coalescer follows docs/design.md §4: one sender per portal per process; each time the limiter
grants a request the sender takes up to 50 queued calls. With no backlog a call goes out alone (as a
plain request); under load the queue fills while the sender waits for its slot, so batches fill up
by themselves and one request of budget carries up to 50 calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.bitrix import metrics
from orchestrator.bitrix.encoding import encode_command
from orchestrator.bitrix.envelope import Envelope, as_int, classify
from orchestrator.bitrix.fence import WriteFence, current_fence
from orchestrator.errors import MethodError, PortalError

MAX_BATCH = 50
NOT_EXECUTED = "BATCH_COMMAND_NOT_EXECUTED"

# The calls that bring events in (the fetcher's, the offline consumer's) go to the front of the
# coalescer's queue: everything else a dialog does waits on what they fetch, and there are few
# of them (one poller per bot and one drain per portal at a time, across the cluster), so the
# calls behind them cannot starve.
INTAKE_METHODS = frozenset(
    {"imbot.v2.event.get", "event.offline.get", "event.offline.clear", "event.offline.error"}
)

# A command: a ready "method?query" string, or (method, params) to be encoded here.
Command = str | tuple[str, Mapping[str, Any]]


@dataclass(frozen=True)
class BatchResult:
    """Per-command outcomes of one `batch`: an `Envelope` or a `PortalError` per key."""

    results: dict[str, Envelope] = field(default_factory=dict)
    errors: dict[str, PortalError] = field(default_factory=dict)
    time: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        """The command's `result`; raises its error if it failed."""
        return self.envelope(key).result

    def envelope(self, key: str) -> Envelope:
        """The command's whole envelope (result, total, next, time), or its error raised."""
        if key in self.errors:
            raise self.errors[key]
        return self.results[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self.results, *self.errors])

    @property
    def ok(self) -> bool:
        """True when no command failed."""
        return not self.errors


def command_method(command: Command) -> str:
    """The REST method a command calls."""
    return command.split("?", 1)[0] if isinstance(command, str) else command[0]


def encode_commands(commands: Mapping[str, Command]) -> dict[str, str]:
    """The `cmd` object of a batch request."""
    if len(commands) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} commands, got {len(commands)}")
    return {
        key: c if isinstance(c, str) else encode_command(c[0], c[1]) for key, c in commands.items()
    }


def _section(value: Any) -> dict[str, Any]:
    # PHP renders an empty section as [] and a list-keyed one as a JSON array.
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


def parse_batch(
    envelope: Envelope, keys: list[str], methods: Mapping[str, str] | None = None
) -> BatchResult:
    """Split a batch envelope into one result or error per command key."""
    body = envelope.result if isinstance(envelope.result, dict) else {}
    results, errors = _section(body.get("result")), _section(body.get("result_error"))
    totals, nexts = _section(body.get("result_total")), _section(body.get("result_next"))
    times = _section(body.get("result_time"))
    out = BatchResult(time=envelope.time)
    for key in keys:
        method = (methods or {}).get(key)
        if key in errors:
            err = errors[key] if isinstance(errors[key], dict) else {}
            out.errors[key] = classify(
                str(err.get("error") or ""),
                str(err.get("error_description") or ""),
                status=None,
                method=method,
                payload=err,
            )
        elif key in results:
            time = times.get(key)
            out.results[key] = Envelope(
                result=results[key],
                total=as_int(totals.get(key)),
                next=as_int(nexts.get(key)),
                time=time if isinstance(time, dict) else {},
            )
        else:
            # `halt` stopped the batch before this command (or the portal dropped it).
            out.errors[key] = MethodError(
                NOT_EXECUTED, "the batch stopped before this command", method=method
            )
    return out


@dataclass
class _Pending:
    method: str
    params: Mapping[str, Any]
    future: asyncio.Future[Envelope]
    fence: WriteFence | None = None  # the caller's, for a write (orchestrator/bitrix/fence.py)


SendOne = Callable[[str, Mapping[str, Any]], Awaitable[Envelope]]
SendBatch = Callable[[dict[str, str]], Awaitable[Envelope]]
Acquire = Callable[[], Awaitable[float]]


class Coalescer:
    """One sender per portal: queued calls leave as single requests or batches of up to 50."""

    def __init__(
        self,
        member_id: str,
        *,
        acquire: Acquire,
        send_one: SendOne,
        send_batch: SendBatch,
        window_s: float = 0.002,
    ) -> None:
        self.member_id = member_id
        self._acquire = acquire
        self._send_one = send_one
        self._send_batch = send_batch
        self._window_s = window_s
        self._queue: deque[_Pending] = deque()
        self._intake: deque[_Pending] = deque()  # INTAKE_METHODS, taken first
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    async def submit(self, method: str, params: Mapping[str, Any]) -> Envelope:
        """Queue one call and wait for its own envelope (or its own error)."""
        future: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        lane = self._intake if method.lower() in INTAKE_METHODS else self._queue
        lane.append(_Pending(method, params, future, current_fence(method)))
        self._wake.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._run(), name=f"b24-sender-{self.member_id}")
        return await future

    async def close(self) -> None:
        """Stop the sender and wait for requests already on the wire."""
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        for lane in (self._intake, self._queue):
            for pending in lane:
                pending.future.cancel()
            lane.clear()

    def _take(self) -> list[_Pending]:
        taken: list[_Pending] = []
        for lane in (self._intake, self._queue):
            while lane and len(taken) < MAX_BATCH:
                pending = lane.popleft()
                if not pending.future.done():  # the caller may have been cancelled meanwhile
                    taken.append(pending)
        return taken

    def _empty(self) -> bool:
        return not (self._intake or self._queue)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self._window_s > 0:
                await asyncio.sleep(self._window_s)
            try:
                await self._acquire()
            except Exception as exc:  # Redis down: every waiting caller hears it
                for pending in self._take():
                    _fail(pending.future, exc)
                if self._empty():
                    self._wake.clear()
                continue
            taken = self._take()
            if self._empty():
                self._wake.clear()
            if taken:
                task = asyncio.create_task(self._deliver(taken))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _deliver(self, taken: list[_Pending]) -> None:
        taken = await _past_fences(taken)
        if not taken:
            return
        if len(taken) == 1:
            one = taken[0]
            try:
                _settle(one.future, await self._send_one(one.method, one.params))
            except Exception as exc:  # handed to the one caller it belongs to
                _fail(one.future, exc)
            return
        keys = [f"c{i}" for i in range(len(taken))]
        cmd = {k: encode_command(p.method, p.params) for k, p in zip(keys, taken, strict=True)}
        metrics.BATCHES.labels(self.member_id, "coalesced").inc()
        metrics.BATCH_SIZE.labels(self.member_id).observe(len(taken))
        try:
            envelope = await self._send_batch(cmd)
        except Exception as exc:  # the whole request failed: every caller hears it
            for pending in taken:
                _fail(pending.future, exc)
            return
        methods = {k: p.method for k, p in zip(keys, taken, strict=True)}
        parsed = parse_batch(envelope, keys, methods)
        for key, pending in zip(keys, taken, strict=True):
            if key in parsed.errors:
                _fail(pending.future, parsed.errors[key])
            else:
                _settle(pending.future, parsed.results[key])


async def _past_fences(taken: list[_Pending]) -> list[_Pending]:
    """The calls whose fence (if any) lets them go now; a fence that raises stops its own call,
    unsent, and its caller hears why. Checked here, after the limiter, right before sending."""
    fenced = [(p, p.fence) for p in taken if p.fence is not None]
    if not fenced:
        return taken
    outcomes = await asyncio.gather(*(fence() for _, fence in fenced), return_exceptions=True)
    stopped: set[int] = set()
    for (pending, _), outcome in zip(fenced, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            _fail(pending.future, outcome)
            stopped.add(id(pending))
    return [p for p in taken if id(p) not in stopped]


def _settle(future: asyncio.Future[Envelope], envelope: Envelope) -> None:
    if not future.done():
        future.set_result(envelope)


def _fail(future: asyncio.Future[Envelope], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)

"""What the client receives when the wire between it and the portal is in trouble: before the
call (a hung request, a proxy's HTML page, latency) the method does not run; after it (a lost
answer) the method ran and committed and only its answer is gone — held and then 504, the
connection dropped, or a balancer's 502/503/504 page. The second is the case that makes a client
that retries create duplicates. Every injected fault is journaled as a `fault` entry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiohttp import web

from emulator.faults import FaultDecision
from emulator.runtime import Emulator, PortalRuntime
from emulator.transport import html_error


async def hold(emu: Emulator) -> None:
    """Hold a request past any sane client timeout; wake early when the emulator stops."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(emu.closing.wait(), emu.config.fault_timeout_s)


async def before_call(
    emu: Emulator, runtime: PortalRuntime, method: str, decision: FaultDecision
) -> web.StreamResponse | None:
    """Timeouts, HTML pages and latency: trouble in front of the handler, which does not run
    (None: go on to the handler)."""
    if decision.kind == "timeout":
        runtime.count(method, "errors")
        runtime.journal.append("fault", method=method, fault="timeout", status=504)
        await hold(emu)
        return html_error(504)
    if decision.kind == "html":
        runtime.count(method, "errors")
        runtime.journal.append("fault", method=method, fault="html", status=decision.html_status)
        return html_error(decision.html_status)
    if decision.latency_s > 0:
        await asyncio.sleep(decision.latency_s)
    return None


async def lose_answer(
    request: web.Request,
    emu: Emulator,
    runtime: PortalRuntime,
    *,
    variant: str,
    method: str,
    drawn: Sequence[str],
    applied: bool,
) -> web.StreamResponse:
    """The call ran (and, when `applied`, committed); the client gets `variant` instead of the
    answer. `drawn`: the methods whose draw lost it (for a batch, "batch" and/or its commands)."""
    runtime.faults_after_write += 1
    entry = {"method": method, "fault": "lost_after_write", "variant": variant, "applied": applied}
    if method == "batch":
        entry["methods"] = list(drawn)
    runtime.journal.append("fault", **entry)
    if variant == "timeout":
        await hold(emu)
        return html_error(504)
    if variant == "reset":
        # Close the socket without a byte of answer: the client sees a dropped connection.
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=204)  # never written: the transport is gone
    return html_error(int(variant))

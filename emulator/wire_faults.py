"""What the client receives when the wire between it and the portal is in trouble before the
call: a hung request, a proxy's HTML page, latency; the method does not run. Every injected
fault is journaled as a `fault` entry."""

from __future__ import annotations

import asyncio
import contextlib

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

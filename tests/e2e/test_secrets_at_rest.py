"""Tokens at rest: after a whole demo run, no access or refresh token the portal ever issued
(the install's, every rotation's, the bot events' own) is anywhere in Redis but in the portal's
credentials hash."""

from __future__ import annotations

import asyncio
import contextlib

from rich.console import Console

from harness.demo.main import DemoOptions, play_on
from harness.demo.stack import Stack
from orchestrator.pipeline.keys import Keys
from tests.e2e.conftest import stored_values


async def test_a_demo_run_leaves_tokens_only_in_the_credentials_hash(stack: Stack) -> None:
    """Ten dialogs of every persona (installs, bot events carrying the bot's own tokens, token
    refreshes, votes, leads, timers). Every key of ours and every arq job record is read while
    the dialogs run (inboxes hold events only briefly) and once they are done: a token shows up
    in the credentials hash and nowhere else."""
    patterns = [f"{stack.settings.key_prefix}*", "arq:*"]
    creds = Keys(stack.settings.key_prefix).creds(stack.member_id).encode()
    holders: set[bytes] = set()
    scans = 0

    def issued() -> list[bytes]:
        return [t.encode() for r in stack.emu.portals for t in r.tokens.issued]

    async def scan() -> None:
        nonlocal scans
        values = await stored_values(stack.redis, patterns)
        tokens = issued()
        holders.update(k for k, v in values.items() for t in tokens if t in v or t in k)
        scans += 1

    async def sample(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await scan()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    await stack.control.expire_tokens()  # one rotation on the way
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample(stop))
    verdict = await play_on(stack, DemoOptions(dialogs=10, arrivals_per_s=4.0), Console(quiet=True))
    stop.set()
    await sampler
    await scan()
    assert verdict.ok, verdict.problems
    assert len(issued()) > 10  # the install's pair, bot event pairs, refreshed pairs
    assert scans > 10
    assert holders == {creds}

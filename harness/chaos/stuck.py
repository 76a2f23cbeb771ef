"""What a chaos run's stuck dialogs (not terminal after the drain) still hold: the evidence
for finding the cause, and their count by kind."""

from __future__ import annotations

import json
from collections import Counter

from harness.bench.play import PortalPlay, dialog_states
from harness.demo.stack import Stack
from orchestrator.dialog.state import TERMINAL
from orchestrator.pipeline.store import Store
from orchestrator.redis.client import aw

__all__ = ["stuck_details"]


async def stuck_details(
    stack: Stack, plays: list[PortalPlay], counts: Counter[str], limit: int = 10
) -> list[str]:
    """What each dialog that is not terminal still holds (the evidence for finding the cause);
    `counts` gets every such dialog by kind: an effect dead-lettered (parked in the DLQ for a
    person), work still pending (the drain ran out), or idle (waiting for nothing we know)."""
    store = Store(stack.redis, stack.settings)
    found: list[str] = []
    members: set[str] = set()
    for play in plays:
        for chat_id, state in (await dialog_states(stack, play)).items():
            if state is not None and state.status in TERMINAL:
                continue
            d = store.dialog(play.member_id, str(chat_id))
            async with stack.redis.pipeline(transaction=False) as pipe:
                for key in (d.inbox, d.outbox):
                    pipe.llen(key)
                pipe.hgetall(d.fxstatus)
                pipe.exists(d.lease, d.sched)
                pipe.lrange(d.history, -3, -1)
                inbox, outbox, fx, held, history = await pipe.execute()
            effects = sorted(v.decode() for v in fx.values())
            kind = "dead_effect" if "dead" in effects else "pending" if inbox or outbox else "idle"
            counts[kind] += 1
            if len(found) >= limit:
                continue
            members.add(play.member_id)
            status = state.status.value if state else "none"
            found.append(
                f"{play.member_id[:8]}/{chat_id} ({kind}): {status}, inbox {inbox}, outbox "
                f"{outbox}, effects {effects}, lease+sched {held}; closing "
                f"{state.closing if state else None}, timers {state.timers if state else None}; "
                f"last applied {[json.loads(h)['event'] for h in history]}"
            )
    return found + await _budgets(stack, members)


async def _budgets(stack: Stack, members: set[str]) -> list[str]:
    """The REST budgets (operating time per method, rate) of the portals with stuck dialogs."""
    found = []
    for member_id in sorted(members):
        pattern = f"{stack.settings.key_prefix}:{{{member_id}}}:op:*"
        async for key in stack.redis.scan_iter(match=pattern, count=1000):
            fields = await aw(stack.redis.hgetall(key))
            text = {k.decode(): v.decode() for k, v in fields.items()}
            found.append(f"{member_id[:8]} {key.decode().rsplit(':', 1)[-1]}: {text}")
    return found

"""The write fence: a caller's proof, taken at the last moment, that it may still write.

A dialog's effect runs under its drainer's lease, and the lease is checked when the effect
begins. Between that check and the moment a write leaves for the portal there can be a long
wait — the rate limiter's queue, or a Redis outage the limiter rides out — and meanwhile the
lease may expire and another drainer start the same effect. Its resend check then reads a chat
that does not show our post yet, and both post: a message the client sees twice.

So a caller may set a fence (`fenced`) around its calls. For every call that is not safe to
repeat, the client awaits the fence after the limiter let the request go and right before it is
sent, in a batch per command; a fence that raises stops that call, unsent, and its caller gets
the fence's exception. The runner's fence renews the dialog's lease: passing it both proves the
lease is still ours and keeps it for a whole lease period, so no other drainer can take the
dialog while the request is on its way. What remains is a portal that takes longer than that
period to apply a request it received.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from orchestrator.bitrix.retry import is_idempotent

__all__ = ["WriteFence", "current_fence", "fenced"]

# Raises (the caller's own signal, e.g. LeaseLost) when the caller may no longer write.
WriteFence = Callable[[], Awaitable[None]]

_fence: ContextVar[WriteFence | None] = ContextVar("b24_write_fence", default=None)


@contextmanager
def fenced(fence: WriteFence) -> Iterator[None]:
    """Check `fence` before every non-idempotent call made inside the block."""
    token = _fence.set(fence)
    try:
        yield
    finally:
        _fence.reset(token)


def current_fence(method: str) -> WriteFence | None:
    """The fence a call of `method` must pass, if any (none for calls safe to repeat)."""
    fence = _fence.get()
    return None if fence is None or is_idempotent(method) else fence

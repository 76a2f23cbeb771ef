"""Helpers for the emulator platform tests: throw-away test methods (registered only while a
test runs) and small HTTP helpers. Platform tests talk HTTP to a real emulator on port 0."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp

from emulator.primitives import RestError
from emulator.registry import METHODS, CallContext, method

# Every name is prefixed so it can never clash with a real portal method.
ECHO = "platformtest.echo"
UPPER = "platformtest.upper"
LISTING = "platformtest.list"
FAIL = "platformtest.fail"
CRM_ONLY = "platformtest.crmonly"
OAUTH_ONLY = "platformtest.oauthonly"
COUNTED = "platformtest.counted"

calls: dict[str, int] = {}


def _echo(ctx: CallContext, params: dict[str, Any]) -> Any:
    return {"params": params, "user_id": ctx.user_id, "auth_type": ctx.auth_type}


def _listing(ctx: CallContext, params: dict[str, Any]) -> Any:
    start = int(params.get("start", 0) or 0)
    items = [{"ID": str(i)} for i in range(start, min(start + 50, 120))]
    page: dict[Any, Any] = dict(enumerate(items))
    page["total"] = 120
    if start + 50 < 120:
        page["next"] = start + 50
    return page


def _fail(ctx: CallContext, params: dict[str, Any]) -> Any:
    raise RestError(
        "ERROR_ARGUMENT", "Argument 'CHAT_ID' is null or empty", 400, argument="CHAT_ID"
    )


def _counted(ctx: CallContext, params: dict[str, Any]) -> Any:
    calls[COUNTED] = calls.get(COUNTED, 0) + 1
    return True


@contextmanager
def platform_methods() -> Iterator[None]:
    """Register the test methods for the duration of a test, then remove them."""
    method(ECHO, scope="user", keys_normalised=False)(_echo)
    method(UPPER, scope="user", keys_normalised=True)(_echo)
    method(LISTING, scope="user", keys_normalised=False)(_listing)
    method(FAIL, scope="user", keys_normalised=False)(_fail)
    method(CRM_ONLY, scope="crm", keys_normalised=False)(_echo)
    method(OAUTH_ONLY, scope="user", keys_normalised=False, auth=frozenset({"oauth"}))(_echo)
    method(COUNTED, scope="user", keys_normalised=False)(_counted)
    calls.clear()
    try:
        yield
    finally:
        for name in (ECHO, UPPER, LISTING, FAIL, CRM_ONLY, OAUTH_ONLY, COUNTED):
            METHODS.pop(name, None)


async def call(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    """POST (or GET with method="GET") and return (status, decoded JSON body)."""
    verb = kwargs.pop("method", "POST")
    async with http.request(verb, url, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


async def control(
    http: aiohttp.ClientSession,
    base: str,
    route: str,
    body: dict[str, Any] | None = None,
    verb: str = "POST",
) -> tuple[int, Any]:
    """Call a `/_emulator/` route with a JSON body."""
    return await call(http, f"{base}/_emulator/{route}", method=verb, json=body)


def hook(emu: Any, method: str) -> str:
    """The URL of `method` through the seeded inbound webhook."""
    return f"{emu.credentials['webhook_url']}{method}"

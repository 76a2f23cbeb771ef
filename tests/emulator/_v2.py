"""Helpers for the chat-bot API v2 tests: register a v2 bot on a domain portal, raise errors."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.portal import Portal
from emulator.primitives import RestError
from tests.emulator._domain import call

TOKEN = "k3v9Qm2LrX8tWb7ZpN4sJd6Yc1Hf0Ae5"  # 32 chars
HOOK_URL = "http://hooks.example.test/v2"


def register(
    portal: Portal,
    code: str = "acme_ol_bot",
    *,
    token: str | None = TOKEN,
    **fields: Any,
) -> dict[str, Any]:
    """Bot.register with a webhook token (token=None: as the OAuth app); the result."""
    body: dict[str, Any] = {
        "code": code,
        "type": "openline",
        "properties": {"name": "Acme Assistant"},
        **fields,
    }
    params: dict[str, Any] = {"fields": body}
    if token is not None:
        params["botToken"] = token
    result: dict[str, Any] = call(
        portal, "imbot.v2.Bot.register", params, webhook=token is not None
    )
    return result


def v2(portal: Portal, name: str, params: dict[str, Any], *, token: str | None = TOKEN) -> Any:
    """Call an imbot.v2 method with a webhook token (token=None: as the OAuth app)."""
    if token is not None:
        params = {"botToken": token, **params}
    return call(portal, name, params, webhook=token is not None)


def v2_error(portal: Portal, name: str, params: dict[str, Any], **kw: Any) -> RestError:
    with pytest.raises(RestError) as err:
        v2(portal, name, params, **kw)
    return err.value

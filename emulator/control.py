"""The `/_emulator/` control API: play clients and operators, move time, inject faults, expire
tokens, re-install the app, read state, counters, credentials and the journal, and plant journal
entries (a test tool). JSON in, JSON out; every route takes an optional `member_id` (body or
query), default the first portal."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from emulator.dispatch import EMULATOR
from emulator.journal import PAGE_LIMIT, acting
from emulator.offline_context import request
from emulator.primitives import RestError
from emulator.runtime import Emulator, PortalRuntime
from emulator.transport import json_response

Action = Callable[[Any, dict[str, Any]], dict[str, Any]]


def _chat(portal: Any, body: dict[str, Any]) -> int:
    """The chat a body names: `chat_id`, or the client's `user_code` (a person at a keyboard, or
    a shell script, knows who is writing rather than the portal's chat id)."""
    if "chat_id" in body or "user_code" not in body:
        return int(body["chat_id"])
    chat = portal.chat_by_user_code(str(body["user_code"]))
    if chat is None:
        raise BadRequest(f"no chat of user_code {body['user_code']!r}")
    return int(chat.id)


# Domain actions of B's Portal, by route: (portal, body) -> result.
ACTIONS: dict[str, Action] = {
    "client-message": lambda p, b: p.client_message(
        int(b["line_id"]), str(b["text"]), b.get("user_code"), b.get("name")
    ),
    "operator-answer": lambda p, b: p.operator_answer(_chat(p, b), int(b["user_id"])),
    "operator-message": lambda p, b: p.operator_message(
        _chat(p, b), int(b["user_id"]), str(b["text"])
    ),
    "operator-finish": lambda p, b: p.operator_finish(_chat(p, b), int(b["user_id"])),
    "client-vote": lambda p, b: p.client_vote(_chat(p, b), str(b["vote"])),
    "client-command": lambda p, b: p.client_command(
        _chat(p, b), int(b["message_id"]), str(b["command"])
    ),
    "client-press": lambda p, b: p.client_press(_chat(p, b), int(b["message_id"]), str(b["label"])),
    "client-edit": lambda p, b: p.client_edit(_chat(p, b), int(b["message_id"]), str(b["text"])),
    "client-delete": lambda p, b: p.client_delete(_chat(p, b), int(b["message_id"])),
}


# Who the journal names as `via` for the changes each action makes.
ACTORS = {
    "client-message": "client",
    "client-vote": "client",
    "client-command": "client",
    "client-press": "client",
    "client-edit": "client",
    "client-delete": "client",
    "operator-answer": "operator",
    "operator-message": "operator",
    "operator-finish": "operator",
}


class BadRequest(Exception):
    """A control request the emulator cannot act on (400)."""


async def _body(request: web.Request) -> dict[str, Any]:
    """A POST's JSON object; for a GET, its query string."""
    if request.method == "GET":
        return dict(request.query)
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.read())
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _runtime(emu: Emulator, request: web.Request, body: dict[str, Any]) -> PortalRuntime:
    member_id = body.get("member_id") or request.query.get("member_id")
    try:
        return emu.by_member(member_id)
    except KeyError as exc:
        raise web.HTTPNotFound(
            text=json.dumps({"error": "PORTAL_NOT_FOUND", "error_description": str(member_id)}),
            content_type="application/json",
        ) from exc


Route = Callable[[Emulator, PortalRuntime, dict[str, Any]], Any]


def _wrap(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        emu = request.app[EMULATOR]
        try:
            body = await _body(request)
            runtime = _runtime(emu, request, body)
            result = route(emu, runtime, body)
        except RestError as err:
            return json_response(err.envelope(), err.status)
        except (BadRequest, KeyError, ValueError, TypeError) as exc:
            text = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            return json_response({"error": "BAD_REQUEST", "error_description": text}, 400)
        return json_response(result)

    return handler


def _action(name: str) -> Route:
    def run(_: Emulator, runtime: PortalRuntime, body: dict[str, Any]) -> Any:
        # One portal request each: its offline rows are announced once, at its end.
        with acting(ACTORS[name]), request():
            return ACTIONS[name](runtime.portal, body)

    return run


def _advance_time(_: Emulator, runtime: PortalRuntime, body: dict[str, Any]) -> Any:
    seconds = float(body["seconds"])
    if seconds < 0:
        raise BadRequest("seconds must not be negative")
    runtime.clock.advance(seconds)
    runtime.portal.tick()
    return {"now": runtime.clock.now()}


def _set_faults(_: Emulator, runtime: PortalRuntime, body: dict[str, Any]) -> Any:
    runtime.faults.configure(body)
    return {"faults": runtime.faults.describe()}


def _clear_faults(_: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    runtime.faults.clear()
    return {"faults": runtime.faults.describe()}


def _expire_tokens(_: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    return {"expired": runtime.tokens.expire_all()}


def _install(emu: Emulator, runtime: PortalRuntime, body: dict[str, Any]) -> Any:
    url = body.get("url") or emu.config.event_url
    if not url:
        raise BadRequest("url is required (no event_url configured)")
    payload = runtime.install_payload(emu.base_url)
    emu.delivery.enqueue(runtime.identity.member_id, str(url), payload)
    return {"queued": True, "url": url, "auth": payload["auth"]}


def _oauth_code(_: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    return {"code": runtime.tokens.issue_code(), "client_id": runtime.tokens.client_id}


def _add_webhook(emu: Emulator, runtime: PortalRuntime, body: dict[str, Any]) -> Any:
    scopes = body.get("scopes", list(emu.config.scopes))
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise BadRequest("scopes must be a list of strings")
    hook = runtime.add_webhook(frozenset(scopes))
    return {
        "webhook_url": f"{emu.base_url}/rest/{hook.user_id}/{hook.code}/",
        "scopes": sorted(hook.scopes),
    }


def _state(emu: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    return {
        **runtime.portal.snapshot(),
        "counters": runtime.counters(),
        "deliveries": emu.delivery.log(runtime.identity.member_id),
        "faults": runtime.faults.describe(),
        "now": runtime.clock.now(),
    }


def _counters(_: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    return runtime.counters()


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"{name} must be an integer") from exc
    if value < 0:
        raise BadRequest(f"{name} must not be negative")
    return value


def _journal(_: Emulator, runtime: PortalRuntime, body: dict[str, Any]) -> Any:
    """Entries with seq > since (default 0), at most limit (default and cap PAGE_LIMIT)."""
    since = _int_param(body, "since", 0)
    limit = _int_param(body, "limit", PAGE_LIMIT)
    return runtime.journal.page(since, limit)


def _plant(_: Emulator, runtime: PortalRuntime, body: dict[str, Any]) -> Any:
    """A test tool: append an entry as if the portal had made that change (see planting)."""
    entry = {k: v for k, v in body.items() if k != "member_id"}
    return {"entry": runtime.portal.plant(entry)}


def _credentials(emu: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    return runtime.credentials(emu.base_url)


def _secrets(_: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    """Every secret the portal ever issued: tokens, codes, the app secret, webhook codes."""
    return {
        "member_id": runtime.identity.member_id,
        "application_token": runtime.identity.application_token,
        "client_secret": runtime.tokens.client_secret,
        "webhook_codes": sorted(runtime.webhooks),
        "issued_tokens": list(runtime.tokens.issued),
    }


def add_control_routes(app: web.Application) -> None:
    """Mount every `/_emulator/` route on `app`."""
    prefix = "/_emulator"
    for name in ACTIONS:
        app.router.add_post(f"{prefix}/{name}", _wrap(_action(name)))
    app.router.add_post(f"{prefix}/advance-time", _wrap(_advance_time))
    app.router.add_post(f"{prefix}/faults", _wrap(_set_faults))
    app.router.add_delete(f"{prefix}/faults", _wrap(_clear_faults))
    app.router.add_post(f"{prefix}/expire-tokens", _wrap(_expire_tokens))
    app.router.add_post(f"{prefix}/install", _wrap(_install))
    app.router.add_post(f"{prefix}/oauth-code", _wrap(_oauth_code))
    app.router.add_post(f"{prefix}/webhooks", _wrap(_add_webhook))
    app.router.add_get(f"{prefix}/state", _wrap(_state))
    app.router.add_get(f"{prefix}/counters", _wrap(_counters))
    app.router.add_get(f"{prefix}/credentials", _wrap(_credentials))
    app.router.add_get(f"{prefix}/secrets", _wrap(_secrets))
    app.router.add_get(f"{prefix}/journal", _wrap(_journal))
    app.router.add_post(f"{prefix}/journal/plant", _wrap(_plant))

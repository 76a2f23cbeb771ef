"""`event.bind|get|unbind` (docs/bitrix24.md §7.3): an app's online handlers; OAuth only. The
offline half (event_type=offline, event.offline.*) is emulator.methods.events_offline."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from emulator.methods._common import php_int
from emulator.methods.events_offline import (
    bind_offline,
    binding_options,
    binding_row,
    unbind_offline,
)
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.state import ROLE_ADMIN, EventBinding

OAUTH_ONLY = frozenset({"oauth"})
# Bindable events by the scope that grants them ("" needs none).
EVENT_SCOPES = {
    "ONAPPINSTALL": "",
    "ONAPPUNINSTALL": "",
    "ONAPPUPDATE": "",
    "ONOPENLINEMESSAGEADD": "imopenlines",
    "ONOPENLINEMESSAGEUPDATE": "imopenlines",
    "ONOPENLINEMESSAGEDELETE": "imopenlines",
    "ONSESSIONSTART": "imopenlines",
    "ONSESSIONFINISH": "imopenlines",
    "ONCRMLEADADD": "crm",
    "ONCRMLEADUPDATE": "crm",
    "ONCRMLEADDELETE": "crm",
    "ONUSERADD": "user",
    "ONIMBOTMESSAGEADD": "imbot",
    "ONIMBOTMESSAGEUPDATE": "imbot",
    "ONIMBOTMESSAGEDELETE": "imbot",
    "ONIMBOTJOINCHAT": "imbot",
    "ONIMBOTDELETE": "imbot",
    "ONOFFLINEEVENT": "",
}


def _argument(name: str) -> RestError:
    return RestError("ERROR_ARGUMENT", f"Argument '{name}' is null or empty", argument=name)


def _event_name(ctx: CallContext, params: dict[str, Any]) -> str:
    event = str(params.get("EVENT") or "").upper()
    if not event:
        raise _argument("EVENT")
    scope = EVENT_SCOPES.get(event)
    if scope is None or (scope and scope not in ctx.scopes):
        raise RestError("ERROR_EVENT_NOT_FOUND", "Event not found")
    return event


@method("event.bind", scope="basic", keys_normalised=True, auth=OAUTH_ONLY)
def event_bind(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Bind an online handler of the calling app to an event (or, event_type=offline, the
    app's offline queue)."""
    event = _event_name(ctx, params)
    event_type = str(params.get("EVENT_TYPE") or "online").lower()
    if event_type not in ("online", "offline"):
        raise RestError("ERROR_ARGUMENT", "Value of 'event_type' is invalid", argument="EVENT_TYPE")
    if event_type == "offline":
        return bind_offline(ctx, event)
    handler = str(params.get("HANDLER") or "")
    if not handler:
        raise _argument("HANDLER")
    parts = urlsplit(handler)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RestError("ERROR_ARGUMENT", "Handler URL is invalid", argument="HANDLER")
    portal = ctx.portal
    user = portal.get_user(ctx.user_id)
    auth_user = php_int(params.get("AUTH_TYPE")) if params.get("AUTH_TYPE") else 0
    if auth_user and auth_user != ctx.user_id and (user is None or user.role != ROLE_ADMIN):
        raise RestError("ACCESS_DENIED", "Access denied! Admin permissions required", 403)
    app_id = ctx.app_client_id or ""
    if any(
        b.event == event and b.handler == handler and b.app_id == app_id
        for b in portal.bindings.values()
    ):
        raise RestError("ERROR_CORE", "Unable to set event handler: Handler already binded")
    options = binding_options(event, params.get("OPTIONS"))
    binding = EventBinding(
        portal.next_id("binding"), event, handler, app_id, auth_user, options=options
    )
    portal.bindings[binding.id] = binding
    return True


@method("event.unbind", scope="basic", keys_normalised=True, auth=OAUTH_ONLY)
def event_unbind(ctx: CallContext, params: dict[str, Any]) -> dict[str, int]:
    """Remove the app's handlers of an event (all of them, or the one given); the count."""
    event = str(params.get("EVENT") or "").upper()
    if not event:
        raise _argument("EVENT")
    if str(params.get("EVENT_TYPE") or "").lower() == "offline":
        return unbind_offline(ctx, event)
    handler = str(params.get("HANDLER") or "")
    portal = ctx.portal
    gone = [
        b.id
        for b in portal.bindings.values()
        if b.event == event
        and b.handler  # an online handler (offline bindings have none)
        and b.app_id == (ctx.app_client_id or "")
        and (not handler or b.handler == handler)
    ]
    for binding_id in gone:
        del portal.bindings[binding_id]
    return {"count": len(gone)}


@method("event.get", scope="basic", keys_normalised=True, auth=OAUTH_ONLY)
def event_get(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The app's bindings, online and offline (non-admins see only their own)."""
    portal = ctx.portal
    user = portal.get_user(ctx.user_id)
    admin = user is not None and user.role == ROLE_ADMIN
    return [
        binding_row(b)
        for b in sorted(portal.bindings.values(), key=lambda b: b.id)
        if b.app_id == (ctx.app_client_id or "") and (admin or b.auth_type == ctx.user_id)
    ]

"""Offline events over REST (rest/lib/api/event.php): binding an event as offline, and
`event.offline.get|clear|error|list` over the app's queue (emulator.offline). All are OAuth-only
and need an administrator; `auth_connector` (taken by the OAuth layer, emulator.offline_context)
selects the connector queue. `event.bind|unbind|get` in emulator.methods.events call in here for
the offline half."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from emulator.features import OFFLINE_EXTENDED
from emulator.methods._common import php_int
from emulator.methods._listing import matches, page
from emulator.offline import ON_OFFLINE_EVENT, Order, Where
from emulator.offline_context import current_caller
from emulator.offline_row import OfflineRow
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.state import ROLE_ADMIN, EventBinding

OAUTH_ONLY = frozenset({"oauth"})
# Events flagged `disableOffline` (only onOfflineEvent itself).
OFFLINE_DISABLED = frozenset({ON_OFFLINE_EVENT})
# Event options a binding may carry, by event (`allowOptions`): name -> type.
ALLOWED_OPTIONS = {ON_OFFLINE_EVENT: {"minTimeout": int}}
GET_FIELDS = ("ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID")
LIST_FIELDS = (*GET_FIELDS, "PROCESS_ID", "ERROR")
OPERATIONS = ("", "=", ">", "<", ">=", "<=", "@", "%")
LIST_LIMIT = 50
_OPERATION = re.compile(r"^([^a-zA-Z]*)(.*)$")


def _argument(name: str, description: str) -> RestError:
    return RestError("ERROR_ARGUMENT", description, argument=name)


def _require_admin(ctx: CallContext, detail: str = "") -> None:
    user = ctx.portal.get_user(ctx.user_id)
    if user is None or user.role != ROLE_ADMIN:
        raise RestError("ACCESS_DENIED", f"Access denied!{' ' + detail if detail else ''}", 403)


def _app(ctx: CallContext) -> tuple[str, str]:
    """The calling app and its connector queue."""
    return ctx.app_client_id or "", current_caller().connector


# ---- event.bind / unbind / get, offline half ---------------------------------------------------


def bind_offline(ctx: CallContext, event: str) -> bool:
    """event.bind with event_type=offline: the handler and auth_type are ignored."""
    _require_admin(ctx, "Offline events binding requires administrator access rights")
    if event in OFFLINE_DISABLED:
        raise RestError("ERROR_ARGUMENT", "Offline event cannot be registered for this event.")
    app_id, connector = _app(ctx)
    portal = ctx.portal
    if any(
        (b.event, b.handler, b.app_id, b.connector_id) == (event, "", app_id, connector)
        for b in portal.bindings.values()
    ):
        raise RestError("ERROR_CORE", "Unable to set event handler: Handler already binded")
    binding = EventBinding(portal.next_id("binding"), event, "", app_id, 0, connector)
    portal.bindings[binding.id] = binding
    return True


def unbind_offline(ctx: CallContext, event: str) -> dict[str, int]:
    """event.unbind with event_type=offline: the app's offline binding of this connector."""
    _require_admin(ctx, "Offline events unbinding requires administrator access rights")
    app_id, connector = _app(ctx)
    portal = ctx.portal
    gone = [
        b.id
        for b in portal.bindings.values()
        if (b.event, b.handler, b.app_id, b.connector_id) == (event, "", app_id, connector)
    ]
    for binding_id in gone:
        del portal.bindings[binding_id]
    return {"count": len(gone)}


def binding_options(event: str, raw: Any) -> dict[str, Any]:
    """The options an online binding keeps: only those the event allows, cast like PHP."""
    allowed = ALLOWED_OPTIONS.get(event, {})
    if not isinstance(raw, dict):
        return {}
    return {name: php_int(raw[name]) for name in allowed if name in raw}


def binding_row(binding: EventBinding) -> dict[str, Any]:
    """One event.get row: an online handler, or an offline binding with its connector."""
    if binding.handler:
        return {
            "event": binding.event,
            "handler": binding.handler,
            "auth_type": str(binding.auth_type),
            "offline": 0,
        }
    return {"event": binding.event, "connector_id": binding.connector_id, "offline": 1}


# ---- filter and order ---------------------------------------------------------------------------


def _timestamp(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError as exc:
        raise _argument("FILTER", f"Wrong date: {value}") from exc


def _where(raw: Any, fields: tuple[str, ...]) -> Where | None:
    """`sanitizeFilter`: upper-case keys, an allowed operation and field, dates parsed."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, dict):
        raise RestError("ERROR_ARGUMENT", "The filter is not an array.")
    conditions: list[tuple[str, str, Any]] = []
    for key, value in raw.items():
        operation, field = _OPERATION.match(str(key).upper()).groups()  # type: ignore[union-attr]
        if operation not in OPERATIONS:
            raise RestError("ERROR_ARGUMENT", f"Filter operation not allowed: {operation}")
        if field not in fields:
            raise RestError("ERROR_ARGUMENT", f"Filter field not allowed: {field}")
        if field == "TIMESTAMP_X":
            value = _timestamp(value)
        conditions.append((operation, field, value))

    def where(row: OfflineRow) -> bool:
        columns = row.fields()
        return all(matches(columns, op, field, value) for op, field, value in conditions)

    return where


def _order(raw: Any, fields: tuple[str, ...], default: Order) -> Order:
    """`sanitizeOrder`: {field: ASC|DESC} (or a list of fields) over the allowed fields."""
    if raw in (None, ""):
        return default
    if not isinstance(raw, dict):
        raise RestError("ERROR_ARGUMENT", "The order is not an array.")
    order: Order = []
    for key, value in raw.items():
        if str(key).isdigit():  # a bare field name: ascending
            field, direction = str(value).upper(), "ASC"
        else:
            field, direction = str(key).upper(), str(value).upper()
        if field not in fields:
            raise RestError("ERROR_ARGUMENT", f"Order field not allowed: {field}")
        if direction not in ("ASC", "DESC"):
            raise RestError("ERROR_ARGUMENT", "Order direction should be one of {ASC|DESC}")
        order.append((field, direction == "DESC"))
    return order


def _lower(params: dict[str, Any]) -> dict[str, Any]:
    """The event.offline.* methods read their params lower-cased (array_change_key_case)."""
    return {str(k).lower(): v for k, v in params.items()}


def _process_id(params: dict[str, Any]) -> str | None:
    raw = params.get("process_id")
    return None if raw is None else str(raw).strip()


def _required_process_id(params: dict[str, Any]) -> str:
    """clear and error act on one process's rows: without PROCESS_ID they refuse."""
    process_id = _process_id(params)
    if process_id is None:
        raise _argument("PROCESS_ID", "Argument 'PROCESS_ID' is null or empty")
    return process_id


def _php_list(value: Any) -> list[Any] | None:
    """A PHP array argument as a list (a form's `a[0]=..` decodes to a dict); None otherwise."""
    if isinstance(value, dict):
        return list(value.values())
    return value if isinstance(value, list) else None


# ---- event.offline.* ------------------------------------------------------------------------


@method("event.offline.get", scope="basic", keys_normalised=False, auth=OAUTH_ONLY)
def offline_get(ctx: CallContext, raw: dict[str, Any]) -> dict[str, Any]:
    """Reserve (clear=0) or take (clear=1, the default) a batch of the app's free rows, or
    re-read a reserved batch by `process_id`."""
    _require_admin(ctx)
    params = _lower(raw)
    clear = 1 if params.get("clear") is None else php_int(params.get("clear"))
    process_id = _process_id(params)
    if not clear and not ctx.portal.features.enabled(OFFLINE_EXTENDED):
        raise RestError(
            "WRONG_LICENSE",
            "This feature is not enabled for the current license: extended offline events handling",
            403,
        )
    limit = LIST_LIMIT if params.get("limit") is None else php_int(params.get("limit"))
    error = 1 if php_int(params.get("error")) == 1 else 0
    if limit <= 0:
        raise _argument("LIMIT", "Value must be positive integer")
    where = _where(params.get("filter"), GET_FIELDS)
    order = _order(params.get("order"), GET_FIELDS, [("TIMESTAMP_X", False)])
    app_id, connector = _app(ctx)
    queue = ctx.portal.offline
    show_process = not clear or process_id is not None
    if process_id is None:
        process_id = queue.reserve(
            app_id, connector, error=error, where=where, order=order, limit=limit
        )
    rows = queue.select(
        app_id, connector, process_id=process_id, error=error, where=where, order=order
    )[:limit]
    events = [row.rest(with_state=False) for row in rows]
    if clear and rows:
        queue.clear(app_id, connector, process_id, reason="get")
    return {"process_id": process_id if show_process else None, "events": events}


@method("event.offline.clear", scope="basic", keys_normalised=False, auth=OAUTH_ONLY)
def offline_clear(ctx: CallContext, raw: dict[str, Any]) -> bool:
    """Delete a process's rows: all, or those MESSAGE_IDs (which win), or those IDs."""
    _require_admin(ctx)
    params = _lower(raw)
    process_id = _required_process_id(params)
    app_id, connector = _app(ctx)
    queue = ctx.portal.offline
    if "message_id" in params:
        message_ids = _php_list(params["message_id"])
        if message_ids is None:
            raise _argument("message_id", "Value must be array of MESSAGE_ID values")
        wanted = [str(m).strip() for m in message_ids]
        if any(len(m) != 32 for m in wanted):
            # The server code spells this argument with three s.
            raise _argument("messsage_id", "Value must be array of MESSAGE_ID values")
        queue.clear(app_id, connector, process_id, message_ids=wanted, reason="clear")
        return True
    ids = None
    if "id" in params:
        raw_ids = _php_list(params["id"])
        if raw_ids is None or any(php_int(i) <= 0 for i in raw_ids):
            raise _argument("id", "Value must be array of integers")
        ids = [php_int(i) for i in raw_ids]
    queue.clear(app_id, connector, process_id, ids=ids, reason="clear")
    return True


@method("event.offline.error", scope="basic", keys_normalised=False, auth=OAUTH_ONLY)
def offline_error(ctx: CallContext, raw: dict[str, Any]) -> bool:
    """Mark rows of a process as failed: they become free error rows (read with error=1)."""
    _require_admin(ctx)
    params = _lower(raw)
    process_id = _required_process_id(params)
    message_ids = _php_list(params.get("message_id"))
    if message_ids is None:
        raise _argument("message_id", "Value must be array of MESSAGE_ID values")
    if message_ids:
        app_id, connector = _app(ctx)
        ctx.portal.offline.mark_error(app_id, connector, process_id, [str(m) for m in message_ids])
    return True


@method("event.offline.list", scope="basic", keys_normalised=False, auth=OAUTH_ONLY)
def offline_list(ctx: CallContext, raw: dict[str, Any]) -> dict[Any, Any]:
    """A read-only page of 50 of the app's rows (this connector's; "" without one)."""
    _require_admin(ctx)
    params = _lower(raw)
    where = _where(params.get("filter"), LIST_FIELDS)
    order = _order(params.get("order"), LIST_FIELDS, [("ID", False)])
    app_id, connector = _app(ctx)
    rows = ctx.portal.offline.select(app_id, connector, where=where, order=order)
    return page([row.rest(with_state=True) for row in rows], params.get("start"))

"""`imopenlines.config.get|update|list.get` (imopenlines/lib/rest.php `configGet`,
`configUpdate`, `configListGet`; imopenlines/lib/config.php `prepareFields`, `update`, `get`,
`getList`): the line's settings as the portal stores them, and the welcome-bot fields a bot
service sets to attach its bot to a line.

The settings ARE the emulator's `Line` record — the session lifecycle (emulator.lifecycle
`route_new_session`, `remove_bot`, `answer`) reads the same fields when a dialog starts — so an
update that resets the welcome bot really stops it joining new dialogs.

The trap of `prepareFields` in an update: each of WELCOME_BOT_ID, WELCOME_BOT_TIME and
WELCOME_BOT_LEFT present in PARAMS is reset to 0 / 600 / queue unless WELCOME_BOT_ENABLE=Y is in
the same PARAMS; keys left out keep their values. Parameter keys are case-sensitive (the methods
read `$arParams['CONFIG_ID']` directly); `get` answers raw DB strings, or false for no line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.methods._common import caller, is_head, php_int
from emulator.methods._listing import apply_filter, apply_order
from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.state import Line

OTHER_BOTS = ("NO_ANSWER_BOT_ID", "WORKTIME_DAYOFF_BOT_ID", "CLOSE_BOT_ID", "AUTO_CLOSE_BOT_ID")
CRM_CREATE = ("none", "lead", "deal")


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _given(params: dict[str, Any], key: str) -> bool:
    """PHP isset(): present and not null."""
    return params.get(key) is not None


def config_row(
    portal: Portal, line: Line, *, with_queue: bool, show_offline: bool
) -> dict[str, Any]:
    """The line's settings as the ConfigTable row (strings), with QUEUE / QUEUE_ONLINE."""
    row: dict[str, Any] = {
        "ID": str(line.id),
        "ACTIVE": _yn(line.active),
        "LINE_NAME": line.name,
        "CRM": _yn(line.crm),
        "CRM_CREATE": line.crm_create,
        "WELCOME_MESSAGE": _yn(bool(line.welcome_message)),
        "WELCOME_MESSAGE_TEXT": line.welcome_message,
        "WELCOME_BOT_ENABLE": _yn(line.welcome_bot_enable),
        "WELCOME_BOT_JOIN": line.welcome_bot_join,
        "WELCOME_BOT_ID": str(line.welcome_bot_id),
        "WELCOME_BOT_TIME": str(line.welcome_bot_time),
        "WELCOME_BOT_LEFT": line.welcome_bot_left,
        **dict.fromkeys(OTHER_BOTS, "0"),
        "VOTE_MESSAGE": _yn(line.vote_message),
        "VOTE_TIME_LIMIT": str(line.vote_time_limit),
        "VOTE_CLOSING_DELAY": _yn(line.vote_closing_delay),
        **line.config,
    }
    queue: list[str] = []
    online = False
    if with_queue:
        for user_id in line.queue:
            user = portal.get_user(user_id)
            if user is None or not user.active or (not show_offline and not user.is_online):
                continue
            queue.append(str(user_id))
            online = online or not show_offline or user.is_online
    row.update(QUEUE=queue, QUEUE_ONLINE=_yn(online))
    return row


def _config_id(params: dict[str, Any]) -> int:
    config_id = php_int(params.get("CONFIG_ID"))
    if config_id <= 0:
        raise RestError("CONFIG_ID_EMPTY", "Config ID can't be empty")
    return config_id


def _flag(params: dict[str, Any], key: str, *, default_yes: bool) -> bool:
    """`== 'N' ? 'N' : 'Y'` (default_yes) or `== 'Y' ? 'Y' : 'N'`."""
    value = params[key]
    return bool(value != "N") if default_yes else bool(value == "Y")


def apply_update(line: Line, params: dict[str, Any]) -> None:
    """`prepareFields` in update mode, for the keys the emulator plays, then the write."""
    if _given(params, "WELCOME_BOT_ENABLE"):
        line.welcome_bot_enable = params["WELCOME_BOT_ENABLE"] == "Y"
    # The checks below read the ENABLE of this call only: absent, it counts as "not Y".
    enable_in_call = params.get("WELCOME_BOT_ENABLE") == "Y"
    if _given(params, "WELCOME_BOT_JOIN"):
        line.welcome_bot_join = "first" if params["WELCOME_BOT_JOIN"] == "first" else "always"
    if _given(params, "WELCOME_BOT_ID"):
        line.welcome_bot_id = php_int(params["WELCOME_BOT_ID"]) if enable_in_call else 0
    if _given(params, "WELCOME_BOT_TIME"):
        line.welcome_bot_time = php_int(params["WELCOME_BOT_TIME"]) if enable_in_call else 600
    if _given(params, "WELCOME_BOT_LEFT"):
        close = enable_in_call and params["WELCOME_BOT_LEFT"] == "close"
        line.welcome_bot_left = "close" if close else "queue"
    if _given(params, "LINE_NAME") and params["LINE_NAME"]:
        line.name = str(params["LINE_NAME"])
    if _given(params, "ACTIVE"):
        line.active = _flag(params, "ACTIVE", default_yes=True)
    if _given(params, "CRM"):
        line.crm = _flag(params, "CRM", default_yes=True)
    if _given(params, "CRM_CREATE"):
        wanted = params["CRM_CREATE"]
        line.crm_create = wanted if wanted in CRM_CREATE else "lead"
    if _given(params, "VOTE_MESSAGE"):
        line.vote_message = _flag(params, "VOTE_MESSAGE", default_yes=True)
    if _given(params, "VOTE_TIME_LIMIT"):
        line.vote_time_limit = max(php_int(params["VOTE_TIME_LIMIT"]), 0)
    if _given(params, "VOTE_CLOSING_DELAY"):
        line.vote_closing_delay = _flag(params, "VOTE_CLOSING_DELAY", default_yes=False)
    for key in OTHER_BOTS:
        if _given(params, key):
            line.config[key] = str(php_int(params[key]))


@method("imopenlines.config.get", scope="imopenlines", keys_normalised=False)
def config_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any] | bool:
    """The line's settings (strings), or false when there is no such line."""
    config_id = _config_id(params)
    with_queue = params.get("WITH_QUEUE", "Y") == "Y"
    show_offline = params.get("SHOW_OFFLINE", "Y") == "Y"
    line = ctx.portal.lines.get(config_id)
    if line is None:
        return False
    return config_row(ctx.portal, line, with_queue=with_queue, show_offline=show_offline)


@method("imopenlines.config.update", scope="imopenlines", keys_normalised=False)
def config_update(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Change the line's settings; true, or false when the line does not exist. Only those
    who may edit lines (administrators and supervisors here) may call it."""
    config_id = _config_id(params)
    user = caller(ctx)
    if not is_head(user):
        raise RestError("CONFIG_WRONG_USER_PERMISSION", "Permission denied", 403)
    raw = params.get("PARAMS")
    fields = raw if isinstance(raw, dict) and raw else {}
    line = ctx.portal.lines.get(config_id)
    if line is None:
        return False
    apply_update(line, fields)
    return True


def _part(options: dict[str, Any], key: str) -> Any:
    value = options.get(key)
    if value is not None and not isinstance(value, dict | list):
        raise RestError("INVALID_FORMAT", f"A wrong format for the PARAMS field '{key}' is passed")
    return value


@method("imopenlines.config.list.get", scope="imopenlines", keys_normalised=False)
def config_list_get(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every line's settings: PARAMS {select, order, filter}, OPTIONS {QUEUE: Y} adds QUEUE."""
    raw = params.get("PARAMS")
    query = raw if isinstance(raw, dict) and raw else {}
    raw_options = params.get("OPTIONS")
    options = raw_options if isinstance(raw_options, dict) else {}
    select, order, flt = (_part(query, k) for k in ("select", "order", "filter"))
    portal = ctx.portal
    with_queue = str(options.get("QUEUE", "")) == "Y"
    rows = [
        config_row(portal, line, with_queue=True, show_offline=True)
        for line in sorted(portal.lines.values(), key=lambda line: line.id)
    ]
    if flt:
        rows = apply_filter(rows, dict(flt))
    if order:
        rows = apply_order(rows, dict(order))
    pick: Callable[[dict[str, Any]], dict[str, Any]] = _selector(select)
    result = []
    for row in rows:
        picked = pick({k: v for k, v in row.items() if k not in ("QUEUE", "QUEUE_ONLINE")})
        if with_queue:
            picked["QUEUE"] = row["QUEUE"]
        result.append(picked)
    return result


def _selector(select: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    fields = [
        str(f).upper() for f in (select.values() if isinstance(select, dict) else select or [])
    ]
    if not fields or "*" in fields:
        return dict
    return lambda row: {k: row[k] for k in fields if k in row}

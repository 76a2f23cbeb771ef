"""`user.get` / `user.search` (docs/bitrix24.md §7.1): employees only, prefixed filters, paging."""

from __future__ import annotations

from typing import Any

from emulator.methods._listing import apply_filter, apply_order, page
from emulator.portal import Portal
from emulator.registry import CallContext, method
from emulator.state import User
from emulator.transport import iso_date

CONTROL_KEYS = {"SORT", "ORDER", "FILTER", "ADMIN_MODE", "SELECT", "IMAGE_RESIZE", "START"}


def user_row(portal: Portal, user: User) -> dict[str, Any]:
    """A user as user.get prints it: ID as a string, ACTIVE as a bool, department ids."""
    return {
        "ID": str(user.id),
        "XML_ID": "",
        "ACTIVE": user.active,
        "NAME": user.name,
        "LAST_NAME": user.last_name,
        "SECOND_NAME": "",
        "EMAIL": user.email,
        "LAST_LOGIN": iso_date(portal.now()),
        "DATE_REGISTER": iso_date(user.date_register),
        "IS_ONLINE": "Y" if user.is_online else "N",
        "TIME_ZONE_OFFSET": "0",
        "PERSONAL_GENDER": user.gender,
        "WORK_POSITION": user.work_position,
        "UF_DEPARTMENT": list(user.department),
        "USER_TYPE": "employee",
    }


def _name_search(row: dict[str, Any], wanted: Any) -> bool:
    text = " ".join(str(row.get(k, "")) for k in ("NAME", "LAST_NAME", "EMAIL")).lower()
    return all(word in text for word in str(wanted).lower().split())


def _user_type(row: dict[str, Any], wanted: Any) -> bool:
    return str(wanted).lower() == str(row["USER_TYPE"])


def _search(ctx: CallContext, params: dict[str, Any]) -> dict[Any, Any]:
    upper = {str(k).upper(): v for k, v in params.items()}
    flt = upper.get("FILTER")
    if not isinstance(flt, dict):
        # Without FILTER the remaining top-level params are the filter.
        flt = {k: v for k, v in params.items() if str(k).upper() not in CONTROL_KEYS}
    portal = ctx.portal
    # Bots, e-mail and Open Lines (connector) users are never listed.
    rows = [
        user_row(portal, u) for u in portal.users.values() if not u.is_bot and not u.is_connector
    ]
    rows = apply_filter(
        rows, flt, {"NAME_SEARCH": _name_search, "FIND": _name_search, "USER_TYPE": _user_type}
    )
    sort = str(upper.get("SORT") or "ID").upper()
    direction = str(upper.get("ORDER") or "ASC").upper()
    rows = apply_order(rows, {sort: direction})
    return page(rows, upper.get("START"))


@method("user.get", scope="user", keys_normalised=False)
def user_get(ctx: CallContext, params: dict[str, Any]) -> dict[Any, Any]:
    """Employees matching the filter, 50 per page with total/next."""
    return _search(ctx, params)


@method("user.search", scope="user", keys_normalised=False)
def user_search(ctx: CallContext, params: dict[str, Any]) -> dict[Any, Any]:
    """The alias of user.get."""
    return _search(ctx, params)

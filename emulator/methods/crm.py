"""`crm.lead.add|get|list` (docs/bitrix24.md §7.2): leads with PHONE/EMAIL multifields."""

from __future__ import annotations

from typing import Any

from emulator.methods._common import php_int
from emulator.methods._listing import apply_filter, apply_order, page
from emulator.primitives import RestError
from emulator.registry import CallContext, method

MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM")


def _param(params: dict[str, Any], name: str) -> Any:
    """CRM handlers read `fields`/`FIELDS` alike (resolveParam checks both spellings)."""
    return params.get(name, params.get(name.upper()))


@method("crm.lead.add", scope="crm", keys_normalised=False)
def lead_add(ctx: CallContext, params: dict[str, Any]) -> int:
    """Create a lead from `fields`; the new id."""
    fields = _param(params, "fields")
    if not isinstance(fields, dict):
        raise RestError("ERROR_CORE", "The parameter 'fields' must be array.")
    lead = ctx.portal.add_lead(fields, created_by=ctx.user_id)
    return lead.id


def _row(lead_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    return {"ID": str(lead_id), **fields}


@method("crm.lead.get", scope="crm", keys_normalised=False)
def lead_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """One lead with all its fields, multifields included."""
    lead_id = php_int(_param(params, "id"))
    if lead_id <= 0:
        raise RestError("ERROR_CORE", "ID is not defined or invalid.")
    lead = ctx.portal.leads.get(lead_id)
    if lead is None:
        raise RestError("ERROR_NOT_FOUND", "Not found.", 404)
    return _row(lead.id, lead.fields)


def _select(row: dict[str, Any], select: list[str]) -> dict[str, Any]:
    """`select`: none or '*' -> every scalar field; multifields only when named."""
    wanted = [str(s).upper() for s in select]
    every = not wanted or "*" in wanted
    return {
        k: v
        for k, v in row.items()
        if k == "ID"
        or (k in MULTIFIELDS and k in wanted)
        or (k not in MULTIFIELDS and (every or k in wanted))
    }


@method("crm.lead.list", scope="crm", keys_normalised=False)
def lead_list(ctx: CallContext, params: dict[str, Any]) -> dict[Any, Any]:
    """Leads matching `filter`, sorted by `order`, projected by `select`, 50 per page."""
    flt = _param(params, "filter") or {}
    order = _param(params, "order") or {"ID": "ASC"}
    select = _param(params, "select") or []
    if isinstance(select, dict):
        select = list(select.values())
    if not isinstance(flt, dict) or not isinstance(order, dict):
        raise RestError("ERROR_CORE", "Parameters 'filter' and 'order' must be arrays.")
    rows = [_row(lead.id, lead.fields) for lead in ctx.portal.leads.values()]
    rows = apply_order(apply_filter(rows, flt), order)
    return page([_select(r, select) for r in rows], _param(params, "start"))

"""`crm.lead.add|get|list|update` (docs/bitrix24.md §7.2): leads with PHONE/EMAIL multifields.

`crm.lead.update` changes only the fields it is given. A multifield value (PHONE, EMAIL, WEB,
IM) is matched by its `ID`: with the ID of one of the lead's values it replaces that value (an
empty VALUE deletes it); without an ID it is added beside the others — the rule the REST docs give
for updating phones and e-mails (b24restdocs, api-reference/crm/universal/user-defined-fields/
user-field.md, item 3, and crm/leads/crm-lead-update.md).
"""

from __future__ import annotations

from typing import Any

from emulator.journal import current_via
from emulator.methods._common import php_int
from emulator.methods._listing import apply_filter, apply_order, page
from emulator.primitives import RestError
from emulator.registry import CallContext, method
from emulator.transport import iso_date

MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM")
# set by the portal itself; an update naming them changes nothing
READ_ONLY = frozenset({"ID", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID"})


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


@method("crm.lead.update", scope="crm", keys_normalised=False)
def lead_update(ctx: CallContext, params: dict[str, Any]) -> bool:
    """Change the named fields of one lead; multifield values by ID, new ones added."""
    lead_id = php_int(_param(params, "id"))
    if lead_id <= 0:
        raise RestError("ERROR_CORE", "ID is not defined or invalid.")
    fields = _param(params, "fields")
    if not isinstance(fields, dict):
        raise RestError("ERROR_CORE", "The parameter 'fields' must be array.")
    lead = ctx.portal.leads.get(lead_id)
    if lead is None:
        raise RestError("ERROR_NOT_FOUND", "Not found.", 404)
    changed: dict[str, Any] = {}
    for key, value in fields.items():
        key = str(key).upper()
        if key in MULTIFIELDS:
            changed[key] = _merge(ctx, key, lead.fields.get(key) or [], value)
        elif key not in READ_ONLY:
            changed[key] = value if isinstance(value, list | dict) else str(value)
    lead.fields.update(changed)
    lead.fields["DATE_MODIFY"] = iso_date(ctx.portal.now())
    ctx.portal.journal.append("lead_updated", lead_id=lead_id, fields=changed, via=current_via())
    return True


def _merge(
    ctx: CallContext, type_id: str, current: list[dict[str, Any]], value: Any
) -> list[dict[str, Any]]:
    """The lead's values of one multifield after an update with `value` (a list, or a dict keyed
    by anything, of {ID?, VALUE, VALUE_TYPE})."""
    merged = {str(item["ID"]): dict(item) for item in current}
    items = list(value.values()) if isinstance(value, dict) else list(value or [])
    for item in items:
        if not isinstance(item, dict):
            continue
        known = merged.get(str(item.get("ID", "")))
        if known is None:
            merged.update({row["ID"]: row for row in ctx.portal.multifield(type_id, [item])})
        elif not item.get("VALUE"):
            del merged[known["ID"]]
        else:
            known["VALUE"] = str(item["VALUE"])
            known["VALUE_TYPE"] = str(item.get("VALUE_TYPE", known["VALUE_TYPE"]))
    return list(merged.values())

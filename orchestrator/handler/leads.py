"""The lead step: exactly one CRM lead per session, whatever crashes and retries happen, in the
fewest calls that keep that guarantee.

The machine asks for the lead once the portal has closed the session (docs/design.md §3). Order
(docs/bitrix24.md §5.16, §7.2):
1. only when an earlier try of this step may have run (a retry: the worker died after its add,
   or the add's outcome was unknown), look up the lead it made (`crm.lead.list` by
   ORIGINATOR_ID + ORIGIN_ID); a first try has nothing to find;
2. the chat's own CRM binding (`imopenlines.dialog.get`): a lead the line made (its CRM_CREATE)
   or an operator made in the chat is the session's lead — completed, not doubled;
3. else `crm.lead.add` with the collected data and ORIGINATOR_ID/ORIGIN_ID (what step 1 finds).
`imopenlines.crm.lead.create` is never tried here: it works only for the session's operator while
the session is open, and after the close it always answers ERROR_USER_NOT_OPERATOR or a closed
session — a call known to fail, which cost every dialog one call before.
An OutcomeUnknown on the add is followed by the lookup; if it finds nothing the add did not
happen, and the error goes up so the runner retries the step (from step 1).

A lead we did not make (the line's own, an operator's) was made from the chat's client profile,
without what the bot collected. So it is completed: `crm.lead.get`, then one `crm.lead.update`
with only the collected fields it lacks — NAME when empty or different, each e-mail and phone as
a new multifield value when not among the lead's (docs/bitrix24.md §7.2: a value without an ID is
added, nothing the lead holds is touched). Reading first makes a retry after a crash write
nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.models import Lead
from orchestrator.dialog.effects import CreateLead
from orchestrator.errors import OutcomeUnknown
from orchestrator.observe import metrics

__all__ = [
    "COLLECTED_FIELDS",
    "chat_lead_binding",
    "complete_lead",
    "ensure_lead",
    "find_own_lead",
    "missing_fields",
]

log = structlog.get_logger(__name__)

# What the bot collects from the client; every other field of a lead it did not make is the
# line's or an operator's, and stays as it is.
COLLECTED_FIELDS = ("NAME", "EMAIL", "PHONE")


async def find_own_lead(api: PortalApi, effect: CreateLead) -> int | None:
    """The lead we created for this session earlier, if any (oldest first)."""
    page = await api.crm_lead_list(
        filter={"ORIGINATOR_ID": effect.originator_id, "ORIGIN_ID": effect.origin_id}, select=["ID"]
    )
    return min((lead.id for lead in page.items), default=None)


async def chat_lead_binding(api: PortalApi, chat_id: int) -> int | None:
    """The lead the chat is bound to (ENTITY_DATA_2 `LEAD|<id>|...`), if any."""
    dialog = await api.dialog_get(chat_id=chat_id)
    extra: dict[str, Any] = dialog.model_extra or {}
    parts = str(extra.get("entity_data_2") or "").split("|")
    for kind, value in zip(parts[::2], parts[1::2], strict=False):
        if kind == "LEAD" and value.isdigit() and int(value) > 0:
            return int(value)
    return None


async def ensure_lead(api: PortalApi, effect: CreateLead, *, retried: bool) -> int | None:
    """The session's lead id: found, or created once; either way carrying the collected data.
    `retried`: an earlier try of this step may have run (its lead may exist)."""
    if retried:
        found = await find_own_lead(api, effect)  # made by crm.lead.add: it carries the fields
        if found is not None:
            _count(api, "found_existing")
            return found
    bound = await chat_lead_binding(api, effect.chat_id)
    if bound is not None:
        await complete_lead(api, bound, effect)
        _count(api, "found_existing")
        return bound
    try:
        lead_id = await api.crm_lead_add(_fields(effect))
    except OutcomeUnknown:
        found = await find_own_lead(api, effect)
        if found is not None:
            log.info("lead_found_after_unknown_outcome", lead_id=found)
            _count(api, "found_existing")
            return found
        raise  # it did not happen: the runner's retry starts over from the lookups
    log.info("lead_added", lead_id=lead_id)
    _count(api, "created")
    return lead_id


async def complete_lead(api: PortalApi, lead_id: int, effect: CreateLead) -> None:
    """Write into a lead we did not make the collected fields it lacks (none: no call)."""
    if not any(effect.fields.get(key) for key in COLLECTED_FIELDS):
        return  # nothing collected: no read either
    changes = missing_fields(await api.crm_lead_get(lead_id), effect.fields)
    if changes:
        await api.crm_lead_update(lead_id, changes)
        log.info("lead_completed", lead_id=lead_id, fields=sorted(changes))
        metrics.LEADS_COMPLETED.labels(member_id=api.member_id).inc()


def missing_fields(lead: Lead, collected: Mapping[str, Any]) -> dict[str, Any]:
    """The crm.lead.update `fields` that bring `collected` (NAME, and EMAIL/PHONE as lists of
    {VALUE, VALUE_TYPE}) into `lead`: a changed NAME, and the multifield values it lacks."""
    changes: dict[str, Any] = {}
    name = str(collected.get("NAME") or "").strip()
    if name and name != (lead.name or "").strip():
        changes["NAME"] = name
    for key, held in (("EMAIL", lead.email), ("PHONE", lead.phone)):
        have = {_same(key, v.value) for v in held}
        new = [v for v in collected.get(key) or [] if _same(key, v.get("VALUE", "")) not in have]
        if new:
            changes[key] = [
                {"VALUE": v["VALUE"], "VALUE_TYPE": v.get("VALUE_TYPE", "WORK")} for v in new
            ]
    return changes


def _same(key: str, value: object) -> str:
    """A multifield value as compared: e-mails ignore case, phones keep only + and digits."""
    text = str(value).strip()
    if key == "EMAIL":
        return text.casefold()
    return "".join(c for c in text if c.isdigit() or c == "+")


def _count(api: PortalApi, outcome: str) -> None:
    metrics.LEADS.labels(member_id=api.member_id, outcome=outcome).inc()


def _fields(effect: CreateLead) -> dict[str, Any]:
    return {**effect.fields, "ORIGINATOR_ID": effect.originator_id, "ORIGIN_ID": effect.origin_id}

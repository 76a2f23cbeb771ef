"""The lead step: exactly one CRM lead per session, whatever crashes and retries happen.

Order (docs/bitrix24.md §5.16, §7.2; docs/design.md §3):
1. look up a lead we made for the session (`crm.lead.list` by ORIGINATOR_ID + ORIGIN_ID);
2. else the chat's own CRM binding (the line's CRM_CREATE, or an earlier
   `imopenlines.crm.lead.create`) is the session's lead;
3. else `imopenlines.crm.lead.create` (answers `true`, no id: read the chat's binding after it);
   it works only for the session's operator while the session is open, so on
   ERROR_USER_NOT_OPERATOR (or a closed session) fall back to `crm.lead.add` with the collected
   data and ORIGINATOR_ID/ORIGIN_ID, which step 1 finds on any later try.
An OutcomeUnknown on a create is followed by the lookups again before anything else; if they
find nothing the create did not happen, and the error goes up so the runner retries the step.

A lead we did not make with `crm.lead.add` (the line's own, or the portal's from
`imopenlines.crm.lead.create`) was made from the chat's client profile, without what the bot
collected. So it is completed: `crm.lead.get`, then one `crm.lead.update` with only the collected
fields it lacks — NAME when empty or different, each e-mail and phone as a new multifield value
when not among the lead's (docs/bitrix24.md §7.2: a value without an ID is added, nothing the lead
holds is touched). Reading first makes a retry after a crash write nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.models import Lead
from orchestrator.dialog.effects import CreateLead
from orchestrator.errors import MethodError, OutcomeUnknown
from orchestrator.observe import metrics

__all__ = [
    "COLLECTED_FIELDS",
    "FALLBACK_CODES",
    "chat_lead_binding",
    "complete_lead",
    "ensure_lead",
    "find_own_lead",
    "missing_fields",
]

log = structlog.get_logger(__name__)

# imopenlines.crm.lead.create refusals after which crm.lead.add is the way (§5.16).
FALLBACK_CODES = frozenset(
    {
        "ERROR_USER_NOT_OPERATOR",
        "IMOL_CHAT_ERROR_ANSWER_NOT_LOAD_SESSION",  # the session is closed already
        "IMOL_CHAT_ERROR_NOT_LOAD_DATA",
        "IMOL_CHAT_ERROR_NOT_LOAD_CRM",
    }
)

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


async def _existing(api: PortalApi, effect: CreateLead) -> int | None:
    found = await find_own_lead(api, effect)  # made by crm.lead.add: it carries the fields
    if found is None:
        found = await chat_lead_binding(api, effect.chat_id)
        if found is not None:
            await complete_lead(api, found, effect)
    return found


async def ensure_lead(api: PortalApi, effect: CreateLead) -> int | None:
    """The session's lead id: found, or created once; either way carrying the collected data."""
    found = await _existing(api, effect)
    if found is not None:
        _count(api, "found_existing")
        return found
    try:
        return await _create(api, effect)
    except OutcomeUnknown:
        found = await _existing(api, effect)
        if found is not None:
            log.info("lead_found_after_unknown_outcome", lead_id=found)
            _count(api, "found_existing")
            return found
        raise  # it did not happen: the runner's retry starts over from the lookups


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


async def _create(api: PortalApi, effect: CreateLead) -> int | None:
    try:
        await api.crm_lead_create(effect.chat_id)
    except MethodError as exc:
        if exc.code not in FALLBACK_CODES:
            raise
        log.info("lead_fallback_to_crm_lead_add", code=exc.code)
        lead_id = await api.crm_lead_add(_fields(effect))
        _count(api, "fallback")
        return lead_id
    bound = await chat_lead_binding(api, effect.chat_id)
    if bound is None:
        # true without a binding: the portal made nothing (no CRM on the line); make it ourselves
        bound = await api.crm_lead_add(_fields(effect))
    else:
        await complete_lead(api, bound, effect)  # the portal made it from the client's profile
    _count(api, "created")
    return bound


def _fields(effect: CreateLead) -> dict[str, Any]:
    return {**effect.fields, "ORIGINATOR_ID": effect.originator_id, "ORIGIN_ID": effect.origin_id}

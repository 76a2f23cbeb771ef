"""`crm.lead.*`, `user.get|search` and `event.bind|get|unbind` (docs/bitrix24.md §7)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.portal import Portal
from emulator.primitives import RestError
from emulator.registry import METHODS
from tests.emulator._domain import ALL_SCOPES, EVENT_URL, call, listing, make_portal


def _error(portal: Portal, name: str, params: dict[str, Any], **kw: Any) -> RestError:
    with pytest.raises(RestError) as err:
        call(portal, name, params, **kw)
    return err.value


# ---- crm ----------------------------------------------------------------------------------------


def test_lead_add_and_get_with_multifields() -> None:
    """crm.lead.add returns the id; crm.lead.get shows fields and PHONE/EMAIL with ids."""
    portal, _ = make_portal()
    lead_id = call(
        portal,
        "crm.lead.add",
        {
            "fields": {
                "TITLE": "Order",
                "NAME": "Jane",
                "SOURCE_ID": "WEB",
                "ORIGINATOR_ID": "bot",
                "ORIGIN_ID": "c-1",
                "PHONE": [{"VALUE": "+100", "VALUE_TYPE": "WORK"}],
                "EMAIL": {"0": {"VALUE": "j@x.io", "VALUE_TYPE": "HOME"}},
            }
        },
    )
    lead = call(portal, "crm.lead.get", {"id": lead_id})
    assert lead["ID"] == str(lead_id)
    assert (lead["TITLE"], lead["ORIGIN_ID"], lead["STATUS_ID"]) == ("Order", "c-1", "NEW")
    assert lead["ASSIGNED_BY_ID"] == str(portal.admin_user_id)
    assert lead["PHONE"][0]["VALUE"] == "+100"
    assert lead["PHONE"][0]["TYPE_ID"] == "PHONE"
    assert lead["EMAIL"][0]["VALUE_TYPE"] == "HOME"


def test_lead_errors() -> None:
    """add without fields, get without id or of an unknown lead fail with their codes."""
    portal, _ = make_portal()
    assert _error(portal, "crm.lead.add", {}).code == "ERROR_CORE"
    assert _error(portal, "crm.lead.get", {}).code == "ERROR_CORE"
    err = _error(portal, "crm.lead.get", {"id": 999})
    assert (err.code, err.status) == ("ERROR_NOT_FOUND", 404)


def test_lead_update_changes_named_fields_and_merges_multifields_by_id() -> None:
    """crm.lead.update: only the named fields change; a multifield value with an existing ID
    replaces it, an empty VALUE with an ID deletes it, a value without an ID is added."""
    portal, _ = make_portal()
    lead_id = call(
        portal,
        "crm.lead.add",
        {
            "fields": {
                "TITLE": "Chat",
                "NAME": "Boris",
                "PHONE": [{"VALUE": "+100", "VALUE_TYPE": "WORK"}],
                "EMAIL": [{"VALUE": "old@x.io"}, {"VALUE": "gone@x.io"}],
            }
        },
    )
    before = call(portal, "crm.lead.get", {"id": lead_id})
    old, gone = (e["ID"] for e in before["EMAIL"])
    assert call(
        portal,
        "crm.lead.update",
        {
            "id": lead_id,
            "fields": {
                "NAME": "Boris Petrov",
                "EMAIL": [
                    {"ID": old, "VALUE": "new@x.io", "VALUE_TYPE": "HOME"},
                    {"ID": gone, "VALUE": ""},
                ],
                "PHONE": [{"VALUE": "+200", "VALUE_TYPE": "MOBILE"}],
                "DATE_CREATE": "2000-01-01",
            },
        },
    )
    after = call(portal, "crm.lead.get", {"id": lead_id})
    assert (after["TITLE"], after["NAME"]) == ("Chat", "Boris Petrov")
    assert after["DATE_CREATE"] == before["DATE_CREATE"]
    assert [(e["ID"], e["VALUE"], e["VALUE_TYPE"]) for e in after["EMAIL"]] == [
        (old, "new@x.io", "HOME")
    ]
    assert [(p["VALUE"], p["VALUE_TYPE"]) for p in after["PHONE"]] == [
        ("+100", "WORK"),
        ("+200", "MOBILE"),
    ]
    assert after["PHONE"][1]["ID"] not in {p["ID"] for p in before["PHONE"]}
    [entry] = portal.journal.entries("lead_updated")
    assert entry["lead_id"] == lead_id
    assert set(entry["fields"]) == {"NAME", "EMAIL", "PHONE"}


def test_lead_update_errors() -> None:
    """update without a valid id, of an unknown lead, or without fields fails like get and add."""
    portal, _ = make_portal()
    lead_id = call(portal, "crm.lead.add", {"fields": {"TITLE": "x"}})
    assert _error(portal, "crm.lead.update", {"fields": {}}).code == "ERROR_CORE"
    err = _error(portal, "crm.lead.update", {"id": 999, "fields": {"NAME": "y"}})
    assert (err.code, err.status) == ("ERROR_NOT_FOUND", 404)
    assert _error(portal, "crm.lead.update", {"id": lead_id}).code == "ERROR_CORE"


def test_lead_list_filters_select_order_and_pages() -> None:
    """crm.lead.list: filters on ORIGINATOR_ID/ORIGIN_ID/TITLE/SOURCE_ID, select, order, paging."""
    portal, _ = make_portal()
    for i in range(120):
        call(
            portal,
            "crm.lead.add",
            {
                "fields": {
                    "TITLE": f"Lead {i}",
                    "SOURCE_ID": "WEB" if i % 2 else "CALL",
                    "ORIGINATOR_ID": "orch",
                    "ORIGIN_ID": f"o{i}",
                    "ASSIGNED_BY_ID": 2 + i % 3,
                    "PHONE": [{"VALUE": f"+{i}"}],
                }
            },
        )
    rows, total, nxt = listing(call(portal, "crm.lead.list", {"filter": {"ORIGINATOR_ID": "orch"}}))
    assert (len(rows), total, nxt) == (50, 120, 50)
    rows, total, nxt = listing(
        call(portal, "crm.lead.list", {"filter": {"ORIGINATOR_ID": "orch"}, "start": 100})
    )
    assert (len(rows), total, nxt) == (20, 120, None)
    rows, _, _ = listing(
        call(
            portal,
            "crm.lead.list",
            {"filter": {"ORIGIN_ID": "o7"}, "select": ["ID", "TITLE", "PHONE"]},
        )
    )
    assert rows == [{"ID": rows[0]["ID"], "TITLE": "Lead 7", "PHONE": rows[0]["PHONE"]}]
    rows, total, _ = listing(
        call(
            portal,
            "crm.lead.list",
            {
                "filter": {"%TITLE": "Lead 1", "SOURCE_ID": "WEB", "ASSIGNED_BY_ID": 3},
                "order": {"ID": "DESC"},
                "select": ["ID"],
            },
        )
    )
    assert total == len(rows) > 0
    assert [int(r["ID"]) for r in rows] == sorted((int(r["ID"]) for r in rows), reverse=True)
    rows, _, _ = listing(call(portal, "crm.lead.list", {"filter": {">=ID": 119}}))
    assert "PHONE" not in rows[0]  # multifields only when selected


# ---- users --------------------------------------------------------------------------------------


def test_user_get_lists_employees_only() -> None:
    """user.get excludes bots and Open Lines connector users."""
    portal, _ = make_portal()
    client = portal.client_message(1, "Hello")["user_id"]
    rows, total, _ = listing(call(portal, "user.get", {}))
    ids = {int(r["ID"]) for r in rows}
    assert ids == {1, 2, 3, 4, 5}
    assert total == 5
    assert client not in ids
    assert rows[0]["ACTIVE"] is True


def test_user_get_filters() -> None:
    """FILTER with prefixes, top-level filter keys, NAME_SEARCH, sort and order."""
    portal, _ = make_portal()
    rows, _, _ = listing(call(portal, "user.get", {"FILTER": {">=ID": 3, "!ID": 4}}))
    assert [r["ID"] for r in rows] == ["3", "5"]
    rows, _, _ = listing(call(portal, "user.get", {"LAST_NAME": "Smirnov"}))
    assert [r["NAME"] for r in rows] == ["Ivan"]
    rows, _, _ = listing(call(portal, "user.get", {"FILTER": {"%EMAIL": "ANNA@"}}))
    assert [r["ID"] for r in rows] == ["4"]
    rows, _, _ = listing(call(portal, "user.search", {"FILTER": {"NAME_SEARCH": "olga pet"}}))
    assert [r["ID"] for r in rows] == ["2"]
    rows, _, _ = listing(
        call(portal, "user.get", {"sort": "ID", "order": "DESC", "FILTER": {"ACTIVE": True}})
    )
    assert [r["ID"] for r in rows] == ["5", "4", "3", "2", "1"]


def test_user_get_pages_by_fifty() -> None:
    """More than 50 employees: `next` 50, then the rest."""
    portal, _ = make_portal()
    for i in range(60):
        portal.add_user(f"Extra{i}", "User", role="operator")
    rows, total, nxt = listing(call(portal, "user.get", {}))
    assert (len(rows), total, nxt) == (50, 65, 50)
    rows, _, nxt = listing(call(portal, "user.get", {"start": 50}))
    assert (len(rows), nxt) == (15, None)


# ---- events -------------------------------------------------------------------------------------


def test_event_methods_are_oauth_only() -> None:
    """event.* accept only OAuth auth (a webhook gets WRONG_AUTH_TYPE from the platform)."""
    for name in ("event.bind", "event.unbind", "event.get"):
        assert METHODS[name].auth == frozenset({"oauth"})
        assert METHODS[name].keys_normalised


def test_event_bind_get_unbind() -> None:
    """bind adds a handler (name case-insensitive), get lists it, unbind removes it (count)."""
    portal, _ = make_portal(event_url=None)
    assert (
        call(portal, "event.bind", {"event": "onSessionStart", "handler": "http://h.test/x"})
        is True
    )
    assert call(portal, "event.get", {}) == [
        {"event": "ONSESSIONSTART", "handler": "http://h.test/x", "auth_type": "0", "offline": 0}
    ]
    assert call(portal, "event.unbind", {"EVENT": "OnSessionStart"}) == {"count": 1}
    assert call(portal, "event.get", {}) == []


def test_event_bind_errors() -> None:
    """Unknown event or missing scope: ERROR_EVENT_NOT_FOUND; duplicate: ERROR_CORE."""
    portal, _ = make_portal()
    assert (
        _error(portal, "event.bind", {"event": "ONNOSUCH", "handler": EVENT_URL}).code
        == "ERROR_EVENT_NOT_FOUND"
    )
    assert (
        _error(
            portal,
            "event.bind",
            {"event": "ONCRMLEADADD", "handler": EVENT_URL},
            scopes=ALL_SCOPES - {"crm"},
        ).code
        == "ERROR_EVENT_NOT_FOUND"
    )
    assert (
        _error(portal, "event.bind", {"event": "ONSESSIONSTART", "handler": EVENT_URL}).code
        == "ERROR_CORE"
    )
    err = _error(portal, "event.bind", {"event": "ONSESSIONSTART"})
    assert (err.code, err.extra) == ("ERROR_ARGUMENT", {"argument": "HANDLER"})


def test_bound_handler_receives_the_event_once() -> None:
    """A handler bound with event.bind gets OnSessionStart once per new session."""
    portal, sink = make_portal(event_url=None)
    call(portal, "event.bind", {"event": "ONSESSIONSTART", "handler": "http://h.test/x"})
    portal.client_message(1, "Hello")
    assert [(url, p["event"]) for url, p in sink.posts] == [("http://h.test/x", "ONSESSIONSTART")]

"""`imbot.v2.Bot.*` and `Revision.get`: the rules of docs/bitrix24-bots-v2.md §1.3-§1.7 and §2."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.bots_v2 import TOKEN_LENGTH_GATE, V2_EVENTS
from emulator.primitives import RestError
from tests.emulator._domain import call, make_portal
from tests.emulator._v2 import HOOK_URL, TOKEN, register, v2, v2_error

OWNER_ONLY = {"moduleId", "eventMode", "countMessage", "countCommand", "countChat", "countUser"}


def test_register_webhook_token_owner_is_custom_plus_token_and_shared_with_v1() -> None:
    """The owner key of a webhook-token bot is "custom" + botToken: the same key a v1 bot
    registered with CLIENT_ID=<token> has, and the v1 bot row is shared (v1 sees the bot)."""
    portal, _ = make_portal()
    result = register(portal)
    bot = portal.bots[result["bot"]["id"]]
    assert bot.app_id == "custom" + TOKEN
    assert portal.users[bot.id].is_bot
    assert result["bot"]["isSupportOpenline"] is True  # type=openline forces it
    assert result["bot"]["eventMode"] == "fetch"  # the default mode
    assert "appId" not in result["bot"]
    assert result["users"][0]["id"] == bot.id


def test_register_fields_bottoken_only_for_register_and_top_level_variants() -> None:
    """fields.botToken identifies the caller on register only; top-level BOT_TOKEN, clientId and
    CLIENT_ID are read too; without any → BOT_TOKEN_NOT_SPECIFIED (400)."""
    portal, _ = make_portal()
    made = call(
        portal,
        "imbot.v2.Bot.register",
        {"fields": {"code": "a", "botToken": "tok-a", "properties": {"name": "A"}}},
        webhook=True,
    )
    bot_id = made["bot"]["id"]
    assert portal.bots[bot_id].app_id == "customtok-a"
    for key in ("BOT_TOKEN", "clientId", "CLIENT_ID"):
        got = call(portal, "imbot.v2.Bot.get", {key: "tok-a", "botId": bot_id}, webhook=True)
        assert set(got["bot"]) >= OWNER_ONLY, key
    with pytest.raises(RestError) as err:
        call(
            portal,
            "imbot.v2.Bot.get",
            {"fields": {"botToken": "tok-a"}, "botId": bot_id},
            webhook=True,
        )
    assert (err.value.code, err.value.status) == ("BOT_TOKEN_NOT_SPECIFIED", 400)


def test_oauth_client_id_wins_over_a_bottoken() -> None:
    """An OAuth app owns its bots by client id; a botToken it passes is ignored."""
    portal, _ = make_portal()
    result = register(portal, token=None)
    assert portal.bots[result["bot"]["id"]].app_id == portal.app_client_id
    got = call(portal, "imbot.v2.Bot.get", {"botId": result["bot"]["id"], "botToken": "x"})
    assert "eventMode" in got["bot"]


def test_register_is_idempotent_by_code_for_its_owner_and_taken_for_others() -> None:
    """The same code again returns the stored bot unchanged; another owner gets
    BOT_CODE_ALREADY_TAKEN."""
    portal, _ = make_portal()
    first = register(portal)
    again = register(portal, eventMode="webhook", webhookUrl=HOOK_URL)
    assert again["bot"]["id"] == first["bot"]["id"]
    assert again["bot"]["eventMode"] == "fetch"  # nothing was updated
    assert not portal.bots_v2.subscriptions
    err = v2_error(
        portal,
        "imbot.v2.Bot.register",
        {"fields": {"code": "acme_ol_bot", "properties": {"name": "X"}}},
        token="other",
    )
    assert (err.code, err.status) == ("BOT_CODE_ALREADY_TAKEN", 400)
    assert len([e for e in portal.journal.entries("bot_registered") if e.get("api")]) == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"code": ""}, "BOT_CODE_REQUIRED"),
        ({"properties": {}}, "BOT_PROPERTIES_REQUIRED"),
        ({"eventMode": "push"}, "BOT_INVALID_EVENT_MODE"),
        ({"eventMode": "webhook"}, "BOT_WEBHOOK_URL_REQUIRED"),
        ({"type": "robot"}, "BOT_INVALID_TYPE"),
        ({"eventMode": "webhook", "webhookUrl": "ftp://x.example/h"}, "BOT_INVALID_CALLBACK"),
        ({"eventMode": "webhook", "webhookUrl": "http://localhost/h"}, "BOT_INVALID_CALLBACK"),
    ],
)
def test_register_validation(fields: dict[str, Any], code: str) -> None:
    portal, _ = make_portal()
    with pytest.raises(RestError) as err:
        register(portal, **fields)
    assert (err.value.code, err.value.status) == (code, 400)


def test_token_longer_than_40_is_rejected_on_register_after_the_gate_only() -> None:
    """From 2026-08-06 (portal clock) register refuses a 41-char token; before it, it does not."""
    portal, _ = make_portal()
    long_token = "x" * 41
    portal.bots_v2.settings.token_length_from = portal.now() + 3600  # the gate is still ahead
    register(portal, "early", token=long_token)
    portal.bots_v2.settings.token_length_from = TOKEN_LENGTH_GATE
    with pytest.raises(RestError) as err:
        register(portal, "late", token="y" * 41)
    assert (err.value.code, err.value.status) == ("BOT_TOKEN_INVALID_LENGTH", 400)
    register(portal, "fine", token="z" * 40)


def test_ownership_errors() -> None:
    """Bot-scoped calls: botId required, the bot must exist and be the caller's."""
    portal, _ = make_portal()
    bot_id = register(portal)["bot"]["id"]
    assert v2_error(portal, "imbot.v2.Bot.update", {"fields": {}}).code == "BOT_ID_REQUIRED"
    assert v2_error(portal, "imbot.v2.Bot.update", {"botId": 999}).code == "BOT_NOT_FOUND"
    err = v2_error(portal, "imbot.v2.Bot.update", {"botId": bot_id}, token="intruder")
    assert (err.code, err.status) == ("BOT_OWNERSHIP_ERROR", 400)
    assert v2_error(portal, "imbot.v2.Bot.update", {"botId": bot_id}, token=None).code == (
        "BOT_OWNERSHIP_ERROR"
    )


def test_rotation_stops_the_old_token_at_once_and_collision_fails() -> None:
    portal, _ = make_portal()
    bot_id = register(portal, eventMode="webhook", webhookUrl=HOOK_URL)["bot"]["id"]
    other = register(portal, "other", token="taken-token")["bot"]["id"]
    err = v2_error(
        portal, "imbot.v2.Bot.update", {"botId": bot_id, "fields": {"botToken": "taken-token"}}
    )
    assert (err.code, err.status) == ("BOT_TOKEN_ROTATION_FAILED", 400)
    err = v2_error(
        portal, "imbot.v2.Bot.update", {"botId": bot_id, "fields": {"botToken": "n" * 41}}
    )
    assert err.code == "BOT_TOKEN_INVALID_LENGTH"
    v2(portal, "imbot.v2.Bot.update", {"botId": bot_id, "fields": {"botToken": "new-token"}})
    err = v2_error(portal, "imbot.v2.Bot.update", {"botId": bot_id, "fields": {}})
    assert err.code == "BOT_OWNERSHIP_ERROR"  # the old token stopped working
    got = v2(portal, "imbot.v2.Bot.update", {"botId": bot_id, "fields": {}}, token="new-token")
    assert got["bot"]["id"] == bot_id
    owners = {s.owner for s in portal.bots_v2.subscriptions.values()}
    assert owners == {"customnew-token"}  # subscriptions re-bound to the new token
    assert portal.bots[other].app_id == "customtaken-token"
    # An empty or all-spaces new token is ignored.
    v2(
        portal,
        "imbot.v2.Bot.update",
        {"botId": bot_id, "fields": {"botToken": "  "}},
        token="new-token",
    )
    assert portal.bots[bot_id].app_id == "customnew-token"


def _subs(portal: Any) -> list[tuple[str, str]]:
    return sorted((s.event, s.url) for s in portal.bots_v2.subscriptions.values())


def test_subscription_table_of_bot_update() -> None:
    """webhook register: eight; URL change: eight new for the new URL; webhook→fetch: none;
    fetch→webhook: eight for the URL; other fields: unchanged."""
    portal, _ = make_portal()
    bot_id = register(portal, eventMode="webhook", webhookUrl=HOOK_URL)["bot"]["id"]
    assert _subs(portal) == sorted((e, HOOK_URL) for e in V2_EVENTS)
    first_ids = set(portal.bots_v2.subscriptions)
    update = {"botId": bot_id}
    v2(portal, "imbot.v2.Bot.update", {**update, "fields": {"isHidden": True}})
    assert set(portal.bots_v2.subscriptions) == first_ids
    new_url = "https://new.example.test/hook"
    v2(portal, "imbot.v2.Bot.update", {**update, "fields": {"webhookUrl": new_url}})
    assert _subs(portal) == sorted((e, new_url) for e in V2_EVENTS)
    assert not first_ids & set(portal.bots_v2.subscriptions)
    v2(portal, "imbot.v2.Bot.update", {**update, "fields": {"eventMode": "fetch"}})
    assert _subs(portal) == []
    v2(
        portal,
        "imbot.v2.Bot.update",
        {**update, "fields": {"eventMode": "webhook", "webhookUrl": HOOK_URL}},
    )
    assert _subs(portal) == sorted((e, HOOK_URL) for e in V2_EVENTS)
    err = v2_error(portal, "imbot.v2.Bot.update", {**update, "fields": {"webhookUrl": "nope"}})
    assert err.code == "BOT_INVALID_CALLBACK"
    portal.bots_v2.settings.invalid_callback_on_update = "ignore"
    v2(portal, "imbot.v2.Bot.update", {**update, "fields": {"webhookUrl": "nope"}})
    assert _subs(portal) == sorted((e, HOOK_URL) for e in V2_EVENTS)


def test_unregister_removes_bot_and_subscriptions() -> None:
    portal, _ = make_portal()
    bot_id = register(portal, eventMode="webhook", webhookUrl=HOOK_URL)["bot"]["id"]
    assert v2(portal, "imbot.v2.Bot.unregister", {"botId": bot_id}) == {"result": True}
    assert bot_id not in portal.bots
    assert not portal.users[bot_id].active
    assert not portal.bots_v2.subscriptions
    (entry,) = [e for e in portal.journal.entries("bot_unregistered") if e["bot_id"] == bot_id]
    assert entry["api"] == "v2"


def test_list_only_the_callers_bots_and_has_next_page_on_a_full_page() -> None:
    portal, _ = make_portal()
    for n in range(3):
        register(portal, f"mine{n}", type="bot")
    register(portal, "theirs", token="someone-else")
    two = v2(portal, "imbot.v2.Bot.list", {"limit": 2})
    assert [b["code"] for b in two["bots"]] == ["mine0", "mine1"]
    assert two["hasNextPage"] is True
    last = v2(portal, "imbot.v2.Bot.list", {"limit": 1, "offset": 2})
    assert [b["code"] for b in last["bots"]] == ["mine2"]
    assert last["hasNextPage"] is True  # exactly full, though nothing follows
    rest = v2(portal, "imbot.v2.Bot.list", {"limit": 5})
    assert (len(rest["bots"]), rest["hasNextPage"]) == (3, False)
    assert all(set(b) >= OWNER_ONLY and "appId" not in b for b in rest["bots"])
    assert v2(portal, "imbot.v2.Bot.list", {"filter": {"type": "nonsense"}})["bots"] == []
    portal.bots_v2.settings.unknown_type_filter = "ignore"
    assert len(v2(portal, "imbot.v2.Bot.list", {"filter": {"type": "nonsense"}})["bots"]) == 3
    assert v2(portal, "imbot.v2.Bot.list", {"filter": {"type": "openline"}})["bots"] == []


def test_get_owner_vs_brief_format_and_by_code() -> None:
    portal, _ = make_portal()
    bot_id = register(portal)["bot"]["id"]
    mine = v2(portal, "imbot.v2.Bot.get", {"code": "acme_ol_bot"})
    assert mine["bot"]["id"] == bot_id
    assert set(mine["bot"]) >= OWNER_ONLY
    theirs = v2(portal, "imbot.v2.Bot.get", {"botId": bot_id}, token="stranger")
    assert not OWNER_ONLY & set(theirs["bot"])
    assert theirs["bot"]["code"] == "acme_ol_bot"
    assert v2_error(portal, "imbot.v2.Bot.get", {}).code == "PARAMS_REQUIRED"
    assert v2_error(portal, "imbot.v2.Bot.get", {"code": "nope"}).code == "BOT_NOT_FOUND"
    portal.bots_v2.settings.emit_app_id = True
    assert v2(portal, "imbot.v2.Bot.get", {"botId": bot_id})["bot"]["appId"] == "custom" + TOKEN


def test_bot_limit_per_owner() -> None:
    portal, _ = make_portal()
    portal.bots_v2.settings.bot_limit = 2
    register(portal, "one")
    register(portal, "two")
    with pytest.raises(RestError) as err:
        register(portal, "three")
    assert err.value.code == "BOT_LIMIT_EXCEEDED"
    register(portal, "three", token="another-owner")


def test_revision_get_needs_no_bot() -> None:
    portal, _ = make_portal()
    assert call(portal, "imbot.v2.Revision.get", {}, webhook=True)["rest"] >= 33

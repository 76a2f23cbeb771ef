"""The portal's journal (`GET /_emulator/journal`): every change a whole Open Lines dialog makes,
in order, with who made it; paging; the per-kind counters; and planting entries (a test tool)."""

from __future__ import annotations

from typing import Any

import aiohttp

from emulator.server import RunningEmulator
from tests.emulator._journal import control, emulator_with_receiver, entries, journal, rest

BOT = 6  # the seeded open-line welcome bot
OPERATOR = 2


def _project(entry: dict[str, Any]) -> tuple[Any, ...]:
    """What the dialog test pins of each entry: kind plus the fields that tell changes apart."""
    kind = entry["kind"]
    if kind == "session":
        return kind, entry["status"], entry["reason"], entry["operator_id"], entry["closed"]
    if kind == "message":
        return kind, entry["author"], entry["via"], entry["to_client"], entry["text"]
    if kind == "lead_created":
        return kind, entry["via"]
    if kind == "crm_binding":
        return kind, entry["entity"]
    if kind == "client_vote":
        return kind, entry["vote"]
    if kind == "head_vote":
        return kind, entry["rating"], entry["comment"]
    return (kind,)


async def _dialog(http: aiohttp.ClientSession, emu: RunningEmulator) -> dict[str, Any]:
    """Client message -> bot message -> handoff -> operator message -> finish -> client vote ->
    head vote -> lead, each step through the surface that plays it."""
    first = await control(http, emu, "client-message", {"line_id": 1, "text": "Hello"})
    chat = first["chat_id"]
    steps = [
        await rest(
            http,
            emu,
            "imbot.message.add",
            {"BOT_ID": BOT, "DIALOG_ID": f"chat{chat}", "MESSAGE": "How can I help?"},
            oauth=True,
        ),
        await rest(http, emu, "imopenlines.bot.session.operator", {"CHAT_ID": chat}),
    ]
    op = {"chat_id": chat, "user_id": OPERATOR}
    await control(http, emu, "operator-message", {**op, "text": "Olga here"})
    await control(http, emu, "operator-finish", op)
    await control(http, emu, "client-vote", {"chat_id": chat, "vote": "like"})
    vote = {"SESSION_ID": first["session_id"], "RATING": 5, "COMMENT": "well done"}
    steps.append(await rest(http, emu, "imopenlines.session.head.vote", vote))
    lead = {
        "TITLE": "Chat 1",
        "NAME": "Ann",
        "EMAIL": [{"VALUE": "ann@example.com", "VALUE_TYPE": "WORK"}],
        "PHONE": [{"VALUE": "+100200", "VALUE_TYPE": "WORK"}],
        "ORIGINATOR_ID": "openlines",
        "ORIGIN_ID": f"chat-{chat}",
    }
    steps.append(await rest(http, emu, "crm.lead.add", {"fields": lead}))
    assert [status for status, _ in steps] == [200] * 4, steps
    return {**first, "bot_message_id": steps[0][1]["result"], "lead_id": steps[3][1]["result"]}


async def test_journal_records_a_whole_dialog_in_order() -> None:
    """Every change of the dialog lands once, in order, with kind, who (`via`) and why."""
    async with emulator_with_receiver() as emu, aiohttp.ClientSession() as http:
        dialog = await _dialog(http, emu)
        await emu.settle()
        body = await journal(http, emu)
    log = body["entries"]
    assert body["total"] == len(log)
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert all(isinstance(e["at"], float) for e in log)
    changes = [_project(e) for e in log if e["kind"] != "event_posted"]
    assert changes == [
        ("bot_registered",),  # the seed
        ("session", 0, "start", 0, False),
        ("message", "system", "client", False, "Conversation #1 started"),
        ("lead_created", "line"),  # the line's own CRM_CREATE
        ("crm_binding", "LEAD"),
        ("session", 0, "welcome_bot", BOT, False),
        ("message", "client", "client", False, "Hello"),
        ("session", 20, "client_message", BOT, False),
        ("message", "bot", "imbot.message.add", True, "How can I help?"),
        ("session", 40, "bot_message", BOT, False),
        (
            "message",
            "system",
            "imopenlines.bot.session.operator",
            False,
            "The bot session has ended",
        ),
        ("session", 5, "queue", 0, False),
        ("message", "system", "operator", False, "Olga Petrova picked conversation"),
        ("session", 10, "answer", OPERATOR, False),
        ("message", "operator", "operator", True, "Olga here"),
        ("session", 40, "operator_message", OPERATOR, False),
        ("message", "system", "operator", True, "Please rate the quality of service"),
        ("session", 50, "vote_wait", OPERATOR, False),
        ("client_vote", "like"),
        ("message", "system", "client", False, "The conversation is closed"),
        ("session", 60, "client_vote", OPERATOR, True),
        ("head_vote", 5, "well done"),
        ("lead_created", "crm.lead.add"),
    ]
    chat, session = dialog["chat_id"], dialog["session_id"]
    bot_message = next(e for e in log if e["kind"] == "message" and e["author"] == "bot")
    assert bot_message | {"seq": 0, "at": 0} == {
        "seq": 0,
        "at": 0,
        "kind": "message",
        "chat_id": chat,
        "session_id": session,
        "message_id": dialog["bot_message_id"],
        "author_id": BOT,
        "author": "bot",
        "bot_id": BOT,
        "text": "How can I help?",
        "via": "imbot.message.add",
        "to_client": True,
    }
    sessions = [e for e in log if e["kind"] == "session"]
    assert [e["previous"] for e in sessions] == [None, 0, 0, 20, 40, 5, 10, 40, 50]
    assert {(e["chat_id"], e["session_id"]) for e in sessions} == {(chat, session)}
    leads = [e for e in log if e["kind"] == "lead_created"]
    assert (leads[0]["chat_id"], leads[0]["session_id"]) == (chat, session)
    binding = next(e for e in log if e["kind"] == "crm_binding")
    assert binding["entity_id"] == leads[0]["lead_id"]
    added = leads[1]
    assert added["lead_id"] == dialog["lead_id"]
    assert added["fields"]["ORIGINATOR_ID"] == "openlines"
    assert added["fields"]["ORIGIN_ID"] == f"chat-{chat}"
    assert added["fields"]["EMAIL"][0]["VALUE"] == "ann@example.com"
    assert added["fields"]["PHONE"][0]["VALUE"] == "+100200"
    assert "chat_id" not in added


async def test_every_event_delivery_is_journaled() -> None:
    """event_posted: one entry per delivery the receiver answered, each occurrence once."""
    async with emulator_with_receiver() as emu, aiohttp.ClientSession() as http:
        dialog = await _dialog(http, emu)
        await emu.settle()
        posted = await entries(http, emu, "event_posted")
        deliveries = emu.deliveries()
    assert [e["name"] for e in posted] == [d["event"] for d in deliveries]
    assert all((e["status"], e["ok"]) == (200, True) for e in posted)
    names = {e["name"] for e in posted}
    assert {"ONAPPINSTALL", "ONSESSIONSTART", "ONIMBOTMESSAGEADD", "ONSESSIONFINISH"} <= names
    assert {"ONOPENLINEMESSAGEADD", "ONIMBOTJOINCHAT"} <= names
    dedups = [e["dedup"] for e in posted if e["dedup"] is not None]
    assert len(dedups) == len(set(dedups)) == len(posted) - 1  # all but ONAPPINSTALL
    assert all(e["chat_id"] == dialog["chat_id"] for e in posted if e["name"] != "ONAPPINSTALL")


async def test_a_failed_delivery_is_journaled_as_not_ok() -> None:
    """An event whose receiver is gone: status null, ok false, the error kept."""
    gone = emulator_with_receiver(event_url="http://127.0.0.1:9/gone")
    async with gone as emu, aiohttp.ClientSession() as http:
        await control(http, emu, "client-message", {"line_id": 1, "text": "Hi"})
        await emu.settle()
        posted = await entries(http, emu, "event_posted")
    assert posted
    assert all(e["status"] is None and e["ok"] is False and e["error"] for e in posted)


async def test_since_and_limit_page_through_the_journal() -> None:
    """`since` is exclusive, `limit` caps a page, `next` continues, `total` is the length."""
    async with emulator_with_receiver() as emu, aiohttp.ClientSession() as http:
        await _dialog(http, emu)
        await emu.settle()
        whole = await journal(http, emu)
        pages, since = [], 0
        while True:
            page = await journal(http, emu, since=since, limit=7)
            assert page["total"] == whole["total"]
            assert len(page["entries"]) <= 7
            if not page["entries"]:
                assert page["next"] == since
                break
            assert page["entries"][0]["seq"] == since + 1
            pages.extend(page["entries"])
            since = page["next"]
        tail = await journal(http, emu, since=whole["total"] - 2)
        beyond = await journal(http, emu, since=whole["total"] + 5)
        none = await journal(http, emu, limit=0)
        async with http.get(f"{emu.url}/_emulator/journal", params={"since": "x"}) as resp:
            bad = resp.status, await resp.json()
    assert pages == whole["entries"]
    assert [e["seq"] for e in tail["entries"]] == [whole["total"] - 1, whole["total"]]
    assert (beyond["entries"], beyond["next"]) == ([], whole["total"])
    assert (none["entries"], none["next"], none["total"]) == ([], 0, whole["total"])
    assert (bad[0], bad[1]["error"]) == (400, "BAD_REQUEST")


async def test_counters_count_journal_entries_by_kind() -> None:
    """GET counters: `journal` {kind: n} and `faults_after_write`."""
    async with emulator_with_receiver() as emu, aiohttp.ClientSession() as http:
        await _dialog(http, emu)
        await emu.settle()
        log = await entries(http, emu)
        async with http.get(f"{emu.url}/_emulator/counters") as resp:
            counters = await resp.json()
    by_kind: dict[str, int] = {}
    for entry in log:
        by_kind[entry["kind"]] = by_kind.get(entry["kind"], 0) + 1
    assert counters["journal"] == by_kind
    assert counters["faults_after_write"] == 0


async def test_bot_and_message_edits_are_journaled() -> None:
    """A webhook bot: registered (and re-registered), a message, its edit and deletion, gone."""
    bot = {
        "CODE": "helper",
        "CLIENT_ID": "c1",
        "PROPERTIES": {"NAME": "Helper"},
        "EVENT_HANDLER": "http://127.0.0.1:9/bot",
    }
    async with emulator_with_receiver() as emu, aiohttp.ClientSession() as http:
        _, registered = await rest(http, emu, "imbot.register", bot)
        bot_id = registered["result"]
        await rest(http, emu, "imbot.register", bot)
        auth = {"BOT_ID": bot_id, "CLIENT_ID": "c1"}
        _, sent = await rest(
            http, emu, "imbot.message.add", {**auth, "DIALOG_ID": "1", "MESSAGE": "a"}
        )
        edit = {**auth, "MESSAGE_ID": sent["result"]}
        await rest(http, emu, "imbot.message.update", {**edit, "MESSAGE": "b"})
        await rest(http, emu, "imbot.message.delete", edit)
        await rest(http, emu, "imbot.unregister", auth)
        log = [e for e in await entries(http, emu) if e.get("via", "").startswith("imbot.")]
    assert [(e["kind"], e.get("new")) for e in log] == [
        ("bot_registered", True),
        ("bot_registered", False),
        ("message", None),
        ("message_updated", None),
        ("message_deleted", None),
        ("bot_unregistered", None),
    ]
    assert {e["bot_id"] for e in log if "bot" in e["kind"]} == {bot_id}
    assert log[0]["code"] == "helper"
    assert log[0]["app_id"] == "customc1"
    assert (log[2]["author"], log[2]["to_client"], log[2]["session_id"]) == ("bot", False, 0)
    assert (log[3]["message_id"], log[3]["text"]) == (sent["result"], "b")
    assert log[4]["message_id"] == sent["result"]


async def test_planting_a_message_shows_in_journal_and_history() -> None:
    """A planted second copy of a bot message: in the journal and in the session's history."""
    async with emulator_with_receiver() as emu, aiohttp.ClientSession() as http:
        dialog = await _dialog(http, emu)
        # A new session of the same chat, for the copy to land in.
        again = await control(
            http,
            emu,
            "client-message",
            {"line_id": 1, "text": "Again", "user_code": dialog["user_code"]},
        )
        bot_message = next(e for e in await entries(http, emu, "message") if e["author"] == "bot")
        copy = {k: v for k, v in bot_message.items() if k not in ("seq", "at")}
        planted = (await control(http, emu, "journal/plant", copy))["entry"]
        status, history = await rest(
            http, emu, "imopenlines.session.history.get", {"SESSION_ID": again["session_id"]}
        )
        log = await entries(http, emu)
    assert again["chat_id"] == dialog["chat_id"]
    assert again["session_id"] != dialog["session_id"]
    assert planted == log[planted["seq"] - 1]
    assert planted["planted"] is True
    assert planted["message_id"] != bot_message["message_id"]
    assert planted["session_id"] == again["session_id"]
    for field in ("kind", "chat_id", "author", "author_id", "bot_id", "text", "via", "to_client"):
        assert planted[field] == bot_message[field], field
    copies = [e for e in log if e["kind"] == "message" and e["text"] == "How can I help?"]
    assert len(copies) == 2
    assert status == 200
    assert history["result"]["message"][str(planted["message_id"])]["text"] == "How can I help?"


async def test_planting_other_kinds_only_journals_them() -> None:
    """A planted session close stays in the journal; the portal's session is untouched; an
    unknown kind or a message without a chat is refused."""
    async with emulator_with_receiver() as emu, aiohttp.ClientSession() as http:
        first = await control(http, emu, "client-message", {"line_id": 1, "text": "Hi"})
        closed = {
            "kind": "session",
            "chat_id": first["chat_id"],
            "session_id": first["session_id"],
            "status": 60,
            "previous": 20,
            "operator_id": 0,
            "closed": True,
            "reason": "close",
            "seq": 999,
        }
        planted = (await control(http, emu, "journal/plant", closed))["entry"]
        async with http.get(f"{emu.url}/_emulator/state") as resp:
            state = await resp.json()
        refused = []
        for body in ({"kind": "nonsense"}, {"kind": "message", "text": "x"}):
            async with http.post(f"{emu.url}/_emulator/journal/plant", json=body) as resp:
                refused.append(resp.status)
        log = await entries(http, emu)
    assert planted == log[planted["seq"] - 1]
    assert planted["seq"] != 999
    assert planted["planted"] is True
    assert {k: planted[k] for k in closed if k != "seq"} == {
        k: v for k, v in closed.items() if k != "seq"
    }
    assert state["sessions"][0]["closed"] is False
    assert refused == [400, 400]

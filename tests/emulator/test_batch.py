"""`batch` as CRestProvider::methodsBatch runs it (docs/bitrix24.md §9)."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from emulator.batch import substitute
from emulator.server import RunningEmulator
from tests.emulator._platform import CRM_ONLY, ECHO, FAIL, LISTING, call, control

SECTIONS = {"result", "result_error", "result_total", "result_next", "result_time"}


def batch_url(emu: RunningEmulator) -> str:
    return f"{emu.credentials['webhook_url']}batch"


def test_reference_substitution_whole_value_and_inside_a_string() -> None:
    """A whole-value reference yields the value itself; inside a string only its text form;
    a missing path stops at the last level that exists."""
    acc = {
        "result": {"a": {"ID": 7, "LIST": [1, 2], "FLAG": False}},
        "next": {"a": 50},
        "total": {},
        "time": {},
        "error": {},
    }
    assert substitute("$result[a][LIST]", acc) == [1, 2]
    assert substitute("$result[a][ID]", acc) == 7
    assert substitute("id=$result[a][ID] ok", acc) == "id=7 ok"
    assert substitute("x $result[a][FLAG] y", acc) == "x  y"
    assert substitute("$next[a]", acc) == 50
    assert substitute("$result[a][NOPE]", acc) == {"ID": 7, "LIST": [1, 2], "FLAG": False}
    assert substitute("no reference $5", acc) == "no reference $5"


async def test_response_shape_with_empty_sections_as_lists(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """The answer is {"result": {five sections}, "time"}; empty sections are `[]`."""
    status, body = await call(http, batch_url(emu), json={"cmd": {"a": f"{ECHO}?x=1"}})
    assert status == 200
    assert set(body) == {"result", "time"}
    result = body["result"]
    assert set(result) == SECTIONS
    assert result["result"] == {"a": {"params": {"x": "1"}, "user_id": 1, "auth_type": "webhook"}}
    assert result["result_error"] == []
    assert result["result_total"] == []
    assert result["result_next"] == []
    assert set(result["result_time"]["a"]) >= {
        "start",
        "finish",
        "duration",
        "processing",
        "operating",
        "operating_reset_at",
    }


async def test_sub_errors_do_not_fail_the_batch(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """Sub-call errors land in result_error with their envelope; the batch answers 200."""
    cmd = {"ok": ECHO, "bad": FAIL, "missing": "no.such.method", "list": LISTING}
    status, body = await call(http, batch_url(emu), json={"cmd": cmd})
    assert status == 200
    result = body["result"]
    assert sorted(result["result"]) == ["list", "ok"]
    assert result["result_error"]["bad"] == {
        "error": "ERROR_ARGUMENT",
        "error_description": "Argument 'CHAT_ID' is null or empty",
        "argument": "CHAT_ID",
    }
    assert result["result_error"]["missing"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert result["result_total"] == {"list": 120}
    assert result["result_next"] == {"list": 50}


async def test_halt_stops_at_the_first_error(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """With halt=1 nothing after the first failing command runs; halt=0 runs everything."""
    cmd = {"a": ECHO, "b": FAIL, "c": ECHO}
    _, halted = await call(http, batch_url(emu), json={"halt": 1, "cmd": cmd})
    assert list(halted["result"]["result"]) == ["a"]
    assert list(halted["result"]["result_error"]) == ["b"]
    _, full = await call(http, batch_url(emu), json={"HALT": "0", "CMD": cmd})
    assert list(full["result"]["result"]) == ["a", "c"]


async def test_51st_command_is_length_exceeded(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """At most 50 commands run; each one beyond gets ERROR_BATCH_LENGTH_EXCEEDED."""
    cmd = [f"{ECHO}?n={i}" for i in range(52)]
    status, body = await call(http, batch_url(emu), json={"cmd": cmd})
    assert status == 200
    result = body["result"]
    assert isinstance(result["result"], list)
    assert len(result["result"]) == 50
    assert result["result"][49]["params"] == {"n": "49"}
    assert result["result_error"] == {
        "50": {
            "error": "ERROR_BATCH_LENGTH_EXCEEDED",
            "error_description": "Max batch length exceeded",
        },
        "51": {
            "error": "ERROR_BATCH_LENGTH_EXCEEDED",
            "error_description": "Max batch length exceeded",
        },
    }


async def test_nested_batch_is_not_allowed(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """batch inside batch is refused with ERROR_BATCH_METHOD_NOT_ALLOWED."""
    _, body = await call(http, batch_url(emu), json={"cmd": {"inner": "batch?cmd[x]=profile"}})
    assert body["result"]["result_error"]["inner"] == {
        "error": "ERROR_BATCH_METHOD_NOT_ALLOWED",
        "error_description": "Method is not allowed for batch usage",
    }


async def test_references_feed_later_commands(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """`$result[key][...]` passes a value (or a whole array) from an earlier command; `$next`
    and `$total` work the same way."""
    cmd = {
        "first": f"{ECHO}?fields[ID]=42&fields[TAGS][]=a&fields[TAGS][]=b",
        "whole": f"{ECHO}?tags=$result[first][params][fields][TAGS]",
        "text": f"{ECHO}?title=" + quote("Lead #$result[first][params][fields][ID]"),
        "page": LISTING,
        "paging": f"{ECHO}?start=$next[page]&total=$total[page]",
    }
    _, body = await call(http, batch_url(emu), json={"cmd": cmd})
    result = body["result"]["result"]
    assert result["whole"]["params"] == {"tags": ["a", "b"]}
    assert result["text"]["params"] == {"title": "Lead #42"}
    assert result["paging"]["params"] == {"start": 50, "total": 120}


async def test_form_encoded_batch_with_double_encoded_commands(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """In form transport `cmd[key]` values are URL-encoded query strings themselves."""
    inner = "fields[TITLE]=" + quote("a&b", safe="")
    form = f"halt=0&cmd[x]={quote(ECHO + '?' + inner, safe='')}"
    status, body = await call(
        http,
        batch_url(emu),
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    assert body["result"]["result"]["x"]["params"] == {"fields": {"TITLE": "a&b"}}


async def test_batch_is_one_request_for_the_bucket(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A batch of 50 commands adds one unit to the leaky bucket."""
    cmd = {str(i): ECHO for i in range(50)}
    await call(http, batch_url(emu), json={"cmd": cmd})
    assert emu.portals[0].bucket.level == 1
    assert emu.portals[0].counters()["methods"][ECHO]["calls"] == 50


async def test_sub_calls_keep_the_callers_auth_and_scope(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """Each command runs with the caller's auth and its own scope check."""
    _, made = await control(http, emu.url, "webhooks", {"scopes": ["user"]})
    cmd = {"ok": ECHO, "crm": CRM_ONLY}
    _, body = await call(http, made["webhook_url"] + "batch", json={"cmd": cmd})
    assert body["result"]["result"]["ok"]["auth_type"] == "webhook"
    assert body["result"]["result_error"]["crm"]["error"] == "insufficient_scope"
    token = emu.credentials["access_token"]
    _, via_app = await call(
        http,
        emu.credentials["client_endpoint"] + "batch",
        json={"auth": token, "cmd": {"ok": ECHO}},
    )
    assert via_app["result"]["result"]["ok"]["auth_type"] == "oauth"


async def test_non_string_commands_are_skipped(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A command that is not a string is silently ignored."""
    _, body = await call(http, batch_url(emu), json={"cmd": {"a": ECHO, "b": {"x": 1}}})
    assert list(body["result"]["result"]) == ["a"]
    assert body["result"]["result_error"] == []

"""Transport as the real portal speaks it: URL forms, encodings, envelopes, auth and the error
matrix (docs/bitrix24.md §1)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from emulator.server import EmulatorConfig, RunningEmulator, run_emulator
from emulator.transport import http_build_query, parse_str
from tests.emulator._platform import (
    CRM_ONLY,
    ECHO,
    FAIL,
    LISTING,
    OAUTH_ONLY,
    UPPER,
    call,
    control,
    hook,
    platform_methods,
)


def rest(emu: RunningEmulator, method: str) -> str:
    return f"{emu.credentials['client_endpoint']}{method}"


# --- PHP encodings (pure) --------------------------------------------------------------------


def test_parse_str_nests_brackets_appends_lists_and_mangles_dots() -> None:
    """parse_str nests `a[b]`, appends `a[]`, keeps strings, and turns '.' in names into '_'."""
    parsed = parse_str(
        "fields[TITLE]=Hi+there&fields[PHONE][0][VALUE]=%2B7&ids[]=1&ids[]=2&a.b=1&empty=&solo"
    )
    assert parsed == {
        "fields": {"TITLE": "Hi there", "PHONE": [{"VALUE": "+7"}]},
        "ids": ["1", "2"],
        "a_b": "1",
        "empty": "",
        "solo": "",
    }


def test_parse_str_later_value_wins_and_non_sequential_keys_stay_a_map() -> None:
    """A repeated scalar keeps the last value; keys 0,2 are not a list."""
    assert parse_str("x=1&x=2&m[0]=a&m[2]=b") == {"x": "2", "m": {"0": "a", "2": "b"}}


def test_http_build_query_round_trips_through_parse_str() -> None:
    """What http_build_query writes, parse_str reads back as strings."""
    encoded = http_build_query({"data": {"PARAMS": {"MESSAGE": "a&b=c [x]"}, "IDS": [3, 4]}})
    assert "data%5BPARAMS%5D%5BMESSAGE%5D=a%26b%3Dc+%5Bx%5D" in encoded
    assert parse_str(encoded) == {"data": {"PARAMS": {"MESSAGE": "a&b=c [x]"}, "IDS": ["3", "4"]}}


# --- envelopes ------------------------------------------------------------------------------


async def test_success_envelope_has_result_and_numeric_time(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A success answer is {"result", "time"} with float seconds, ISO dates and operating*."""
    status, body = await call(http, hook(emu, ECHO), json={"x": 1})
    assert status == 200
    assert set(body) == {"result", "time"}
    assert body["result"]["params"] == {"x": 1}
    t = body["time"]
    for key in ("start", "finish", "duration", "processing", "operating"):
        assert isinstance(t[key], int | float), key
    assert isinstance(t["operating_reset_at"], int)
    assert t["finish"] >= t["start"]
    assert t["date_start"].endswith("+00:00")
    assert "T" in t["date_start"]


async def test_total_and_next_are_lifted_out_of_the_result(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A list handler's total/next become top-level keys; the result is a plain list."""
    status, body = await call(http, hook(emu, LISTING), json={})
    assert status == 200
    assert body["total"] == 120
    assert body["next"] == 50
    assert isinstance(body["result"], list)
    assert len(body["result"]) == 50
    _, last = await call(http, hook(emu, LISTING), json={"start": 100})
    assert last["total"] == 120
    assert "next" not in last
    assert len(last["result"]) == 20


async def test_error_envelope_keeps_argument_extra(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A handler's RestError is {"error", "error_description", "argument"} with its status."""
    status, body = await call(http, hook(emu, FAIL), json={})
    assert status == 400
    assert body == {
        "error": "ERROR_ARGUMENT",
        "argument": "CHAT_ID",
        "error_description": "Argument 'CHAT_ID' is null or empty",
    }


# --- request decoding -----------------------------------------------------------------------


async def test_form_body_decodes_php_brackets(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A form body nests `fields[TITLE]` and `a[]` like PHP; every scalar is a string."""
    body = "fields[TITLE]=Lead&fields[OPENED]=Y&a[]=1&a[]=2&n=5"
    status, answer = await call(
        http,
        hook(emu, ECHO),
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    assert answer["result"]["params"] == {
        "fields": {"TITLE": "Lead", "OPENED": "Y"},
        "a": ["1", "2"],
        "n": "5",
    }


async def test_query_params_merge_with_post_and_post_wins(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """GET query params are read too; a POST value replaces a same-named query value."""
    status, answer = await call(http, hook(emu, ECHO) + "?x=1&y=query", json={"y": "post"})
    assert status == 200
    assert answer["result"]["params"] == {"x": "1", "y": "post"}
    _, got = await call(http, hook(emu, ECHO) + "?q[a]=1", method="GET")
    assert got["result"]["params"] == {"q": {"a": "1"}}


async def test_bad_json_body_leaves_only_query_params(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A JSON decode failure is swallowed: the call runs with the query params alone."""
    status, answer = await call(
        http,
        hook(emu, ECHO) + "?k=v",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert status == 200
    assert answer["result"]["params"] == {"k": "v"}


async def test_method_names_are_case_insensitive_with_optional_json_suffix(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """`PlatformTest.ECHO.json` reaches the same handler as `platformtest.echo`."""
    status, answer = await call(http, hook(emu, "PlatformTest.ECHO.json"), json={"z": 1})
    assert status == 200
    assert answer["result"]["params"] == {"z": 1}


async def test_key_normalisation_follows_the_method_spec(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """Methods with keys_normalised see upper-case top-level keys; others see them as sent."""
    _, upper = await call(http, hook(emu, UPPER), json={"chat_id": 5, "Fields": {"a": 1}})
    assert upper["result"]["params"] == {"CHAT_ID": 5, "FIELDS": {"a": 1}}
    _, plain = await call(http, hook(emu, ECHO), json={"chat_id": 5})
    assert plain["result"]["params"] == {"chat_id": 5}


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("place", ["bearer", "auth", "access_token"])
async def test_oauth_token_is_accepted_in_each_place(
    emu: RunningEmulator, http: aiohttp.ClientSession, place: str
) -> None:
    """The access token works as a Bearer header, `auth` or `access_token`, and is stripped."""
    token = emu.credentials["access_token"]
    kwargs: dict[str, Any] = {"json": {"x": 1}}
    if place == "bearer":
        kwargs["headers"] = {"Authorization": f"Bearer {token}"}
    else:
        kwargs["json"][place] = token
    status, answer = await call(http, rest(emu, ECHO), **kwargs)
    assert status == 200
    assert answer["result"]["params"] == {"x": 1}
    assert answer["result"]["auth_type"] == "oauth"


async def test_bearer_header_is_looked_up_before_the_auth_param(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """With a valid Bearer header, a garbage `auth` param does not matter (§1.1 order)."""
    token = emu.credentials["access_token"]
    status, _ = await call(
        http,
        rest(emu, ECHO),
        json={"auth": "garbage"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 200
    status, body = await call(
        http, rest(emu, ECHO), json={"auth": token}, headers={"Authorization": "Bearer garbage"}
    )
    assert (status, body["error"]) == (401, "invalid_token")


async def test_webhook_runs_as_its_owner(emu: RunningEmulator, http: aiohttp.ClientSession) -> None:
    """A webhook call carries the webhook owner's user id and the webhook auth type."""
    _, answer = await call(http, hook(emu, ECHO), json={})
    assert answer["result"]["auth_type"] == "webhook"
    assert answer["result"]["user_id"] == emu.portals[0].portal.admin_user_id


async def test_auth_error_matrix(emu: RunningEmulator, http: aiohttp.ClientSession) -> None:
    """Missing, unknown and wrong credentials get the portal's codes and statuses (§1.5)."""
    creds = emu.credentials
    user, code = creds["webhook_url"].rstrip("/").split("/")[-2:]
    cases = [
        (rest(emu, ECHO), {}, 401, "NO_AUTH_FOUND", "Wrong authorization data"),
        (rest(emu, ECHO), {"auth": "nope"}, 401, "invalid_token", None),
        (
            f"{emu.url}/rest/{user}/wrongcode/{ECHO}",
            {},
            401,
            "INVALID_CREDENTIALS",
            "Invalid request credentials",
        ),
        (f"{emu.url}/rest/999/{code}/{ECHO}", {}, 401, "INVALID_CREDENTIALS", None),
        (hook(emu, "no.such.method"), {}, 404, "ERROR_METHOD_NOT_FOUND", "Method not found!"),
        (hook(emu, OAUTH_ONLY), {}, 403, "WRONG_AUTH_TYPE", None),
    ]
    for url, body, want_status, want_code, want_text in cases:
        status, answer = await call(http, url, json=body)
        assert (status, answer["error"]) == (want_status, want_code), url
        if want_text:
            assert answer["error_description"] == want_text


async def test_oauth_only_method_works_with_a_token(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A method limited to OAuth (like event.*) accepts the app's token."""
    status, _ = await call(
        http, rest(emu, OAUTH_ONLY), json={"auth": emu.credentials["access_token"]}
    )
    assert status == 200


async def test_event_bind_over_webhook_is_wrong_auth_type(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """The portal's event.* methods refuse webhook auth with 403 WRONG_AUTH_TYPE."""
    status, answer = await call(http, hook(emu, "event.get"), json={})
    assert (status, answer["error"]) == (403, "WRONG_AUTH_TYPE")


async def test_insufficient_scope_for_a_webhook_without_the_scope(
    emu: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    """A webhook created without `crm` cannot call a crm method: 401 insufficient_scope."""
    _, made = await control(http, emu.url, "webhooks", {"scopes": ["user"]})
    status, answer = await call(http, made["webhook_url"] + CRM_ONLY, json={})
    assert (status, answer["error"]) == (401, "insufficient_scope")
    status, _ = await call(http, made["webhook_url"] + ECHO, json={})
    assert status == 200


async def test_auth_error_status_is_configurable() -> None:
    """With auth_error_status=403 (what the docs list) scope and credential errors use it."""
    with platform_methods():
        config = EmulatorConfig(frozen_clock=True, auth_error_status=403)
        async with run_emulator(config) as emu, aiohttp.ClientSession() as http:
            status, answer = await call(http, f"{emu.url}/rest/1/badcode/{ECHO}", json={})
            assert (status, answer["error"]) == (403, "INVALID_CREDENTIALS")

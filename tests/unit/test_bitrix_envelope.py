"""The envelope parser, error classification by code, PHP encoding and batch splitting."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote

import pytest

from orchestrator.bitrix.batch import encode_commands, parse_batch
from orchestrator.bitrix.encoding import build_query, encode_command, flatten
from orchestrator.bitrix.envelope import Envelope, as_int, parse_response
from orchestrator.errors import (
    AccessDenied,
    InvalidCredentials,
    MethodError,
    OperationTimeLimit,
    QueryLimitExceeded,
    ServerError,
    TokenExpired,
)


def _body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_success_envelope_lifts_total_next_and_operating() -> None:
    """total/next arrive as top-level ints (even as strings) and the time block is exposed."""
    env = parse_response(
        200,
        _body(
            {
                "result": [{"ID": "1"}],
                "total": "120",
                "next": 50,
                "time": {"operating": 1.5, "operating_reset_at": 1767226200, "processing": 0.2},
            }
        ),
    )
    assert env.result == [{"ID": "1"}]
    assert (env.total, env.next) == (120, 50)
    assert (env.operating, env.operating_reset_at, env.processing) == (1.5, 1767226200.0, 0.2)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (503, "QUERY_LIMIT_EXCEEDED", QueryLimitExceeded),
        (429, "OPERATION_TIME_LIMIT", OperationTimeLimit),
        (401, "expired_token", TokenExpired),
        (401, "invalid_token", InvalidCredentials),
        (401, "NO_AUTH_FOUND", InvalidCredentials),
        (401, "INVALID_CREDENTIALS", InvalidCredentials),
        # The portal answers 401 where its docs say 403: the code decides, not the status.
        (401, "insufficient_scope", AccessDenied),
        (403, "WRONG_AUTH_TYPE", AccessDenied),
        (401, "ACCESS_DENIED", AccessDenied),
        (400, "CHAT_ID_EMPTY", MethodError),
        (400, "", MethodError),
        (500, "INTERNAL_SERVER_ERROR", ServerError),
        (500, "ERROR_CORE", ServerError),
        (400, "ERROR_CORE", MethodError),
        # imbot.v2 answers every business error 400 (docs/bitrix24-bots-v2.md "Owner and token")
        (400, "BOT_NOT_FOUND", MethodError),
        (400, "BOT_OWNERSHIP_ERROR", MethodError),
        (400, "BOT_TOKEN_NOT_SPECIFIED", MethodError),
        (400, "BOT_CODE_ALREADY_TAKEN", MethodError),
    ],
)
def test_errors_are_classified_by_code(status: int, code: str, cls: type[Exception]) -> None:
    """Each error code maps to its class in the one exception tree, whatever the HTTP status."""
    with pytest.raises(cls) as caught:
        parse_response(status, _body({"error": code, "error_description": "d"}), "m.x")
    assert caught.type is cls
    assert getattr(caught.value, "code", None) == code


def test_rate_limit_errors_carry_retry_after() -> None:
    """Throttle answers tell the caller how long the same call must wait."""
    with pytest.raises(QueryLimitExceeded) as caught:
        parse_response(503, _body({"error": "QUERY_LIMIT_EXCEEDED"}))
    assert caught.value.retry_after > 0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (502, b"<html><body>Bad gateway</body></html>"),
        (200, b"<!DOCTYPE html>maintenance"),
        (200, b"not json at all"),
        (200, b"[1, 2]"),
        (500, b'{"result": true}'),
        (200, b'{"time": {}}'),
    ],
)
def test_html_and_non_envelope_bodies_are_server_errors(status: int, body: bytes) -> None:
    """Anything that is not the REST envelope is a (transient) ServerError."""
    with pytest.raises(ServerError):
        parse_response(status, body)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        ("1763", 1763),
        ("", None),
        (None, None),
        ("chat5", None),
        (True, None),
    ],
)
def test_ids_accept_int_or_numeric_string(value: object, expected: int | None) -> None:
    """Raw DB ids come as strings; as_int turns them into ints and refuses the rest."""
    assert as_int(value) == expected


def test_php_bracket_encoding_of_nested_params() -> None:
    """Nested dicts and lists become PHP brackets; None is dropped; booleans become 1/0."""
    pairs = flatten({"fields": {"TITLE": "x", "PHONE": [{"VALUE": "1"}]}, "A": None, "B": True})
    assert pairs == [("fields[TITLE]", "x"), ("fields[PHONE][0][VALUE]", "1"), ("B", "1")]
    query = build_query({"PROPERTIES": {"NAME": "Bot & Co"}})
    assert parse_qsl(query) == [("PROPERTIES[NAME]", "Bot & Co")]


def test_batch_command_is_method_and_query() -> None:
    """A batch command reads `method?query`; references survive the encoding."""
    cmd = encode_command("crm.lead.get", {"id": "$result[lead]"})
    assert cmd.startswith("crm.lead.get?")
    assert unquote(cmd.split("?", 1)[1]) == "id=$result[lead]"
    bare = "imopenlines.session.mode.pinAll"
    assert encode_command(bare, {}) == bare


def test_batch_longer_than_fifty_is_refused_locally() -> None:
    """More than 50 commands never reach the portal."""
    with pytest.raises(ValueError):
        encode_commands({f"k{i}": ("user.get", {}) for i in range(51)})


def test_batch_answer_splits_into_per_command_results_and_errors() -> None:
    """Each key gets its envelope (total/next kept) or its classified error; halted keys fail."""
    env = Envelope(
        result={
            "result": {"users": [{"ID": "1"}], "dlg": {"id": 9}},
            "result_error": {"hist": {"error": "ACCESS_DENIED", "error_description": "no"}},
            "result_total": {"users": 120},
            "result_next": {"users": "50"},
            "result_time": {"dlg": {"operating": 0.3, "operating_reset_at": 1}},
        }
    )
    out = parse_batch(env, ["users", "dlg", "hist", "never"])
    assert out["dlg"] == {"id": 9}
    assert (out.envelope("users").total, out.envelope("users").next) == (120, 50)
    assert out.envelope("dlg").operating == 0.3
    with pytest.raises(AccessDenied):
        out["hist"]
    with pytest.raises(MethodError):
        out["never"]
    assert not out.ok


def test_batch_answer_with_php_empty_sections() -> None:
    """Empty sections arrive as [] (PHP); a batch of successes parses all the same."""
    env = Envelope(
        result={
            "result": {"a": True},
            "result_error": [],
            "result_total": [],
            "result_next": [],
            "result_time": [],
        }
    )
    out = parse_batch(env, ["a"])
    assert out.ok
    assert out["a"] is True

"""Fuzzing the ingress's payload parser: whatever the bytes, `decode_form` and `parse_event`
either return or raise InvalidEvent with a 4xx status — never any other exception (which the
ingress would turn into a 500)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import InvalidEvent
from orchestrator.events.formdata import MAX_DEPTH, decode_form, encode_form
from orchestrator.events.models import parse_event
from orchestrator.ingress.intake import parse_body
from tests.fuzz_strategies import content_types, nested_dicts, php_forms, real_events

T = TypeVar("T")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _or_refusal(call: Callable[[], T]) -> tuple[T | None, int | None]:
    """(result, None), or (None, the refusal's status) when it raised InvalidEvent."""
    try:
        return call(), None
    except InvalidEvent as exc:
        return None, exc.status


def _decode_or_refuse(body: bytes, content_type: str) -> dict[str, Any] | None:
    decoded, status = _or_refusal(lambda: decode_form(body, content_type))
    assert status is None or 400 <= status < 500
    return decoded


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@FUZZ
@given(st.binary(max_size=3000), content_types)
def test_decode_form_on_arbitrary_bytes_returns_a_dict_or_refuses_with_4xx(
    body: bytes, content_type: str
) -> None:
    """Random bytes under any content type: a dict of str keys, or InvalidEvent (4xx)."""
    decoded = _decode_or_refuse(body, content_type)
    assert decoded is None or all(isinstance(k, str) for k in decoded)


@FUZZ
@given(php_forms())
def test_decode_form_on_odd_bracket_forms_never_nests_past_the_limit(body: bytes) -> None:
    """Odd keys (unbalanced brackets, deep nesting, NULs), bad percent-escapes and huge values
    decode to a dict no deeper than MAX_DEPTH, or are refused with a 4xx."""
    decoded = _decode_or_refuse(body, "application/x-www-form-urlencoded")
    assert decoded is None or _depth(decoded) <= MAX_DEPTH + 1


@FUZZ
@given(nested_dicts)
def test_parse_event_on_arbitrary_payloads_returns_an_event_or_refuses_with_4xx(
    payload: dict[str, Any],
) -> None:
    """Any JSON-shaped payload: a validated event, or InvalidEvent (4xx)."""
    _, status = _or_refusal(lambda: parse_event(payload))
    assert status is None or 400 <= status < 500


@FUZZ
@given(real_events("m-fuzz", "token-fuzz"))
def test_fuzzed_genuine_events_parse_or_refuse_and_keep_their_portal(
    payload: dict[str, Any],
) -> None:
    """Genuine events with fuzzed fields, through the form encoding: an event of the portal that
    sent it (member_id and token untouched by decoding), or InvalidEvent (4xx)."""
    parsed, status = _or_refusal(
        lambda: parse_body(encode_form(payload), "application/x-www-form-urlencoded")
    )
    if parsed is None:
        assert status is not None
        assert 400 <= status < 500
    else:
        assert parsed[1].member_id == "m-fuzz"

"""Hypothesis strategies for what an attacker (or a broken proxy) can post to the ingress:
arbitrary bytes, PHP-bracket forms with odd keys and huge or badly encoded values, JSON of any
shape, genuine events with fuzzed fields, and any content type."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

from hypothesis import strategies as st

from orchestrator.events.formdata import encode_form

__all__ = ["bodies", "content_types", "json_values", "nested_dicts", "php_forms", "real_events"]

_KEY_CHARS = st.sampled_from(list("abcXYZ019_-. []%&=+;\x00\u00e9\u4e2d"))
_SEGMENT = st.text(_KEY_CHARS, max_size=6)
_BAD_ESCAPES = st.sampled_from(["%ff", "%fe%ff", "%c3", "%e2%82", "%ed%a0%80", "%", "%zz", "%0"])


@st.composite
def _form_key(draw: st.DrawFn) -> str:
    """A base name and 0..20 bracket segments, sometimes unbalanced."""
    name = draw(_SEGMENT)
    segments = draw(st.lists(_SEGMENT, max_size=20))
    key = name + "".join(f"[{s}]" for s in segments)
    if draw(st.booleans()):
        key += draw(st.sampled_from(["[", "]", "[[", "][", "[]"]))
    return key


_VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=0, max_value=400_000).map(lambda n: "v" * n),  # up to over the limit
    _BAD_ESCAPES,
)


@st.composite
def php_forms(draw: st.DrawFn) -> bytes:
    """`k[a][b]=v&...` bodies: random keys and values, some escapes raw (bad UTF-8 included)."""
    pairs = draw(st.lists(st.tuples(_form_key(), _VALUES), max_size=30))
    parts = []
    for key, value in pairs:
        raw = draw(st.booleans())  # raw: leave escapes as drawn (they may be invalid)
        parts.append(f"{key}={value}" if raw else f"{quote_plus(key)}={quote_plus(value)}")
    return "&".join(parts).encode()


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)
nested_dicts: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(max_size=10), json_values, max_size=8
)

_EVENT_NAMES = st.sampled_from(
    [
        "ONIMBOTMESSAGEADD",
        "ONIMBOTJOINCHAT",
        "ONIMOPENLINESSESSIONSTART",
        "ONSESSIONFINISH",
        "ONAPPINSTALL",
        "onimbotmessageadd",
        "",
    ]
)


@st.composite
def real_events(draw: st.DrawFn, member: str, token: str) -> dict[str, Any]:
    """A genuine-looking message event of `member`, its fields and structure fuzzed."""
    chat = draw(st.one_of(st.integers(-5, 10**12), st.text(max_size=12)))
    payload: dict[str, Any] = {
        "event": draw(_EVENT_NAMES),
        "event_handler_id": "41",
        "ts": draw(st.one_of(st.integers(-1, 2**40).map(str), st.text(max_size=5))),
        "data": {
            "BOT": {"77": {"BOT_ID": "77", "BOT_CODE": "support"}},
            "PARAMS": {
                "MESSAGE": draw(st.text(max_size=200)),
                "MESSAGE_ID": str(draw(st.integers(-3, 10**9))),
                "CHAT_ID": str(chat),
                "DIALOG_ID": f"chat{chat}",
                "MESSAGE_TYPE": draw(st.sampled_from(["L", "P", "C", ""])),
                "CHAT_ENTITY_TYPE": "LINES",
                "FROM_USER_ID": "4567",
            },
        },
        "auth": {"domain": "acme.bitrix24.com", "member_id": member, "application_token": token},
    }
    extra = draw(nested_dicts)
    if draw(st.booleans()) and extra:
        payload["data"]["PARAMS"].update(extra)
    return payload


content_types = st.one_of(
    st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "application/json",
            "application/vnd.api+json",
            "",
            "text/plain",
            "multipart/form-data; boundary=xyz",
            "APPLICATION/JSON",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)


def bodies(member: str, token: str) -> st.SearchStrategy[tuple[bytes, str]]:
    """(body, content type) pairs, from noise to nearly valid events."""
    as_form = "application/x-www-form-urlencoded"
    return st.one_of(
        st.tuples(st.binary(max_size=2000), content_types),
        st.tuples(php_forms(), st.just(as_form) | content_types),
        st.tuples(
            json_values.map(lambda v: json.dumps(v).encode()),
            st.just("application/json") | content_types,
        ),
        st.tuples(real_events(member, token).map(encode_form), st.just(as_form)),
        st.tuples(real_events(member, "not-the-token").map(encode_form), st.just(as_form)),
    )

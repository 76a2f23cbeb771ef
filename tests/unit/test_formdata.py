"""decode_form: PHP bracket forms and JSON bodies into nested dicts; garbage into InvalidEvent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import InvalidEvent
from orchestrator.events.formdata import MAX_DEPTH, decode_form, encode_form

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a=1", {"a": "1"}),
        (b"a=", {"a": ""}),
        (b"a=1&a=2", {"a": "2"}),
        (b"a[]=1&a[]=2", {"a": ["1", "2"]}),
        (b"a[0]=x&a[2]=y", {"a": {"0": "x", "2": "y"}}),
        (b"a[2]=x&a[]=y", {"a": {"2": "x", "3": "y"}}),
        (b"data[BOT][77][BOT_ID]=77", {"data": {"BOT": {"77": {"BOT_ID": "77"}}}}),
        (
            b"data%5BPARAMS%5D%5BMESSAGE%5D=Need+help%21&auth[member_id]=m1",
            {"data": {"PARAMS": {"MESSAGE": "Need help!"}}, "auth": {"member_id": "m1"}},
        ),
        (b"msg=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82", {"msg": "Привет"}),
        (b"a=1&a[b]=2", {"a": {"b": "2"}}),
        (b"a[b]=2&a=1", {"a": "1"}),
        (b"a[b=1", {"a_b": "1"}),
        (b"a[b]c=1", {"a": {"b": "1"}}),
        (b"[x]=1&=2&b=3", {"b": "3"}),
        (b"", {}),
    ],
)
def test_form_decodes_like_php(body: bytes, expected: dict[str, Any]) -> None:
    """Bracket keys, appends, overwrites and PHP's odd cases build the dict PHP would build."""
    assert decode_form(body, FORM) == expected


def test_content_type_parameters_and_case_are_ignored() -> None:
    """A charset parameter or upper case in the media type does not change the decoding."""
    assert decode_form(b"a=1", "Application/X-WWW-Form-Urlencoded; charset=UTF-8") == {"a": "1"}


def test_json_object_body_is_returned_as_is() -> None:
    """A JSON object body comes back decoded, lists and numbers untouched."""
    body = json.dumps({"event": "X", "data": {"a": [1, 2]}}).encode()
    assert decode_form(body, "application/json") == {"event": "X", "data": {"a": [1, 2]}}


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"a=\xff", FORM, "UTF-8"),
        (b"a=%ff", FORM, "UTF-8"),
        (b"[1, 2]", "application/json", "object"),
        (b"{bad", "application/json", "JSON"),
        (b"\xff", "application/json", "UTF-8"),
        (b"a" + b"[x]" * (MAX_DEPTH + 1) + b"=1", FORM, "deeper"),
        (b"[" * 50 + b"]" * 50, "application/json", "object"),
        (b'{"a":' * 20 + b"1" + b"}" * 20, "application/json", "deeper"),
        (b"&".join(b"k%d=1" % i for i in range(1001)), FORM, "too many"),
    ],
)
def test_undecodable_bodies_are_refused_with_400(
    body: bytes, content_type: str, fragment: str
) -> None:
    """Bad UTF-8, bad or non-object JSON, absurd nesting and too many fields give a 400."""
    with pytest.raises(InvalidEvent) as info:
        decode_form(body, content_type)
    assert info.value.status == 400
    assert fragment in info.value.reason


def test_unknown_content_type_is_refused_with_415() -> None:
    """A body that is neither a form nor JSON is refused as unsupported media."""
    with pytest.raises(InvalidEvent) as info:
        decode_form(b"<xml/>", "text/xml")
    assert info.value.status == 415


def test_json_with_too_many_fields_is_refused() -> None:
    """The field limit applies to JSON bodies too (counted by leaves)."""
    body = json.dumps({f"k{i}": 1 for i in range(20)}).encode()
    with pytest.raises(InvalidEvent):
        decode_form(body, "application/json", max_fields=10)


_keys = st.text(
    alphabet=st.characters(blacklist_characters="[]", blacklist_categories=["Cs"]), min_size=1
).filter(lambda k: not k.isdigit())
_scalars = st.text(alphabet=st.characters(blacklist_categories=["Cs"]))
_trees = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4),
        st.dictionaries(_keys, children, min_size=1, max_size=4),
    ),
    max_leaves=25,
)
_payloads = st.dictionaries(_keys, _trees, max_size=6)


@settings(max_examples=200, deadline=None)
@given(_payloads)
def test_encode_then_decode_round_trips(payload: dict[str, Any]) -> None:
    """http_build_query then decode_form gives back the same nested structure."""
    assert decode_form(encode_form(payload), FORM) == payload


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([FORM, "application/json", "", "text/plain"]))
def test_garbage_never_raises_anything_but_invalid_event(body: bytes, content_type: str) -> None:
    """Whatever the bytes, decoding returns a dict or raises InvalidEvent, nothing else."""
    try:
        result: object = decode_form(body, content_type)
    except InvalidEvent as exc:
        result = exc.status
    assert isinstance(result, dict) or 400 <= int(str(result)) < 500


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab[]=&+x0", max_size=80))
def test_bracket_soup_never_crashes(text: str) -> None:
    """Malformed bracket keys decode to some dict (PHP's tolerance), never an exception."""
    assert isinstance(decode_form(text.encode(), FORM), dict)

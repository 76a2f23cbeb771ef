"""Request bodies -> nested dicts, the way PHP's `parse_str` (and `json_decode`) would build them.

Bitrix24 posts events with `http_build_query`, so a body reads
`event=ONIMBOTMESSAGEADD&data[BOT][77][BOT_ID]=77&data[PARAMS][MESSAGE]=hi&auth[member_id]=m1`.
`decode_form` rebuilds `{"event": ..., "data": {"BOT": {"77": {...}}, "PARAMS": {...}}, ...}`.

PHP arrays are ordered maps; we return dicts with string keys, except that a map whose keys are
exactly "0".."n-1" in order becomes a list, as `json_encode` would render it (so `a[]=1&a[]=2`,
`a[0]=1&a[1]=2` and the JSON body `{"a": ["1", "2"]}` all decode alike). Unlike PHP we keep dots
and spaces in top-level names (PHP turns them into `_`): no Bitrix24 key has them, and mangling
would only lose information. `encode_form` is the inverse (PHP's `http_build_query`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from yarl import query_to_pairs

from orchestrator.errors import InvalidEvent

__all__ = ["MAX_DEPTH", "MAX_FIELDS", "decode_form", "encode_form"]

# A message ATTACH already reaches 10 levels
# (data[PARAMS][PARAMS][ATTACH][0][BLOCKS][0][GRID][0][NAME]) and Bitrix24 never re-delivers
# a refused event, so leave headroom; PHP itself allows 64.
MAX_DEPTH = 16
MAX_FIELDS = 1000  # PHP's max_input_vars default; a bot event carries well under 100

_FORM = "application/x-www-form-urlencoded"
_REPLACEMENT = "\ufffd"  # what a bad percent-encoded UTF-8 sequence decodes to, leniently


def decode_form(
    body: bytes, content_type: str, *, max_depth: int = MAX_DEPTH, max_fields: int = MAX_FIELDS
) -> dict[str, Any]:
    """Decode a PHP-bracket form or a JSON object body; raise InvalidEvent otherwise."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("", _FORM):
        return _decode_urlencoded(body, max_depth, max_fields)
    if media == "application/json" or media.endswith("+json"):
        return _decode_json(body, max_depth, max_fields)
    raise InvalidEvent(f"unsupported content type {media!r}", status=415)


def _decode_urlencoded(body: bytes, max_depth: int, max_fields: int) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"body is not valid UTF-8: {exc.reason}") from exc
    root: dict[str, Any] = {}
    for key, value in _pairs(text, max_fields):
        path = _split_key(key)
        if not path:
            continue  # PHP drops pairs with an empty base name
        if len(path) > max_depth:
            raise InvalidEvent(f"field {key[:80]!r} nests deeper than {max_depth} levels")
        _assign(root, path, value)
    # the top level stays an object even when its keys are 0..n-1
    return {key: _listify(value) for key, value in root.items()}


def _pairs(text: str, max_fields: int) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True, errors="strict")`, via yarl's C unquoter.

    yarl decodes exactly as parse_qsl does with its default errors="replace"; so only a body
    whose decoded text holds U+FFFD can differ, and that one is decoded again strictly.
    """
    try:
        pairs = query_to_pairs(text, max_fields=max_fields)
        if any(_REPLACEMENT in key or _REPLACEMENT in value for key, value in pairs):
            pairs = parse_qsl(
                text, keep_blank_values=True, errors="strict", max_num_fields=max_fields
            )
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"body is not valid UTF-8: {exc.reason}") from exc
    except ValueError as exc:  # the max_fields guard
        raise InvalidEvent(f"too many fields (more than {max_fields})") from exc
    return pairs


def _split_key(key: str) -> list[str | None]:
    """Split `a[b][]` into ["a", "b", None] (None = append) following php_register_variable."""
    bracket = key.find("[")
    if bracket <= 0:
        return [key] if bracket < 0 and key else []
    inner = key[bracket + 1 : -1]
    # the usual well-formed `a[b][c]` (every "]" but the last opens the next "["): one split
    if key[-1] == "]" and inner.count("]") == inner.count("]["):
        fast: list[str | None] = [key[:bracket]]
        fast.extend([segment or None for segment in inner.split("][")])
        return fast
    close = key.find("]", bracket)
    if close < 0:
        # an unmatched "[" in the base name becomes "_" and the rest is literal (PHP does this)
        return [key[:bracket] + "_" + key[bracket + 1 :]]
    path: list[str | None] = [key[:bracket]]
    pos = bracket
    while pos < len(key) and key[pos] == "[":
        close = key.find("]", pos)
        if close < 0:
            break  # PHP ignores a trailing unmatched segment
        segment = key[pos + 1 : close]
        path.append(segment if segment else None)
        pos = close + 1
    return path


def _assign(root: dict[str, Any], path: list[str | None], value: str) -> None:
    """Store `value` at `path`, replacing scalars in the way (the later pair wins, as in PHP)."""
    node = root
    for i, segment in enumerate(path):
        key = _next_index(node) if segment is None else segment
        if i == len(path) - 1:
            node[key] = value
            return
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child


def _next_index(node: dict[str, Any]) -> str:
    """PHP appends at (largest integer key + 1), or 0."""
    ints = [int(k) for k in node if _is_php_int(k)]
    return str(max(ints) + 1 if ints else 0)


def _is_php_int(key: str) -> bool:
    return key == "0" or (key.isdigit() and key.isascii() and not key.startswith("0"))


def _listify(value: Any) -> Any:
    """Turn maps keyed exactly "0".."n-1" into lists, recursively (json_encode's rule)."""
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v) if isinstance(v, dict) else v for k, v in value.items()}
    if "0" in converted and list(converted) == [str(i) for i in range(len(converted))]:
        return list(converted.values())
    return converted


def _decode_json(body: bytes, max_depth: int, max_fields: int) -> dict[str, Any]:
    try:
        decoded = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"body is not valid UTF-8: {exc.reason}") from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(f"body is not valid JSON: {str(exc)[:120]}") from exc
    if not isinstance(decoded, dict):
        raise InvalidEvent(f"JSON body must be an object, not {type(decoded).__name__}")
    leaves = _check_shape(decoded, 0, max_depth)
    if leaves > max_fields:
        raise InvalidEvent(f"too many fields (more than {max_fields})")
    return decoded


def _check_shape(value: Any, depth: int, max_depth: int) -> int:
    """Count leaves; raise when containers nest deeper than `max_depth`."""
    if isinstance(value, dict | list):
        if depth >= max_depth:
            raise InvalidEvent(f"body nests deeper than {max_depth} levels")
        items = value.values() if isinstance(value, dict) else value
        return sum(_check_shape(item, depth + 1, max_depth) for item in items)
    return 1


def encode_form(payload: Mapping[str, Any]) -> bytes:
    """Encode like PHP's http_build_query: bracket keys, lists indexed, empty containers dropped."""
    pairs: list[tuple[str, str]] = []
    for key, value in payload.items():
        _flatten(str(key), value, pairs)
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs).encode("ascii")


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}[{key}]", item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _flatten(f"{prefix}[{index}]", item, out)
    elif value is None:
        return  # http_build_query skips nulls
    elif isinstance(value, bool):
        out.append((prefix, "1" if value else "0"))
    else:
        out.append((prefix, str(value)))

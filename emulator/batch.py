"""`batch`, as CRestProvider::methodsBatch runs it: up to 50 `"method?query"` commands, each a
sub-call with the caller's auth, `$result[key][field]` back-references, optional `halt`
[docs/bitrix24.md §9]."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from emulator.transport import parse_str, php_array, php_truthy

BATCH_MAX_LENGTH = 50
NOT_ALLOWED = frozenset({"batch", "download", "upload"})
SECTIONS = ("result", "next", "total", "time", "error")

SubCall = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]

_REFERENCE = re.compile(r"\$(" + "|".join(SECTIONS) + r")(\S*)", re.IGNORECASE)
_PATH_KEY = re.compile(r"\[([^\]]+)\]")


def _step(node: Any, key: str) -> tuple[bool, Any]:
    """PHP `isset($node[$key])` and the value behind it."""
    if isinstance(node, dict):
        value = node.get(key)
        return value is not None, value
    if isinstance(node, list) and re.fullmatch(r"0|[1-9]\d*", key) and int(key) < len(node):
        value = node[int(key)]
        return value is not None, value
    return False, None


def _as_php_string(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else ""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return "Array"  # what PHP's str_replace makes of an array
    return str(value)


def substitute(value: str, acc: dict[str, dict[str, Any]]) -> Any:
    """Resolve `$result[key][field]...` references in one parameter value.

    A value that is exactly one reference becomes the referenced value itself (even an array);
    inside a longer string the reference is replaced by its string form. A missing path stops
    at the last level that exists.
    """
    for match in _REFERENCE.finditer(value):
        keys = _PATH_KEY.findall(match.group(2))
        if not keys:
            continue
        node: Any = acc.get(match.group(1))
        for key in keys:
            found, child = _step(node, key)
            if not found:
                break
            node = child
        if match.group(0) == value:
            return node
        value = value.replace(match.group(0), _as_php_string(node))
    return value


def _resolve(params: Any, acc: dict[str, dict[str, Any]]) -> Any:
    if isinstance(params, dict):
        return {k: _resolve(v, acc) for k, v in params.items()}
    if isinstance(params, list):
        return [_resolve(v, acc) for v in params]
    return substitute(params, acc) if isinstance(params, str) else params


def parse_command(call: str, acc: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """`"method?a=1&b[c]=$result[x][ID]"` -> (method, params with references resolved)."""
    method, _, query = call.partition("?")
    query = query.partition("#")[0]
    params = _resolve(parse_str(query), acc) if query else {}
    return method, params


def _error(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description}


async def _run_one(call: str, acc: dict[str, dict[str, Any]], sub_call: SubCall) -> dict[str, Any]:
    method, params = parse_command(call, acc)
    if method.lower() in NOT_ALLOWED:
        return _error("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
    return await sub_call(method, params)


async def run_batch(params: dict[str, Any], sub_call: SubCall) -> dict[str, Any]:
    """Run the commands of a batch request (keys already upper-cased); the `result` value."""
    halt = php_truthy(params.get("HALT"))
    acc: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    cmd = params.get("CMD")
    items = (
        list(cmd.items())
        if isinstance(cmd, dict)
        else list(enumerate(cmd))
        if isinstance(cmd, list)
        else []
    )
    for count, (key, call) in enumerate(items):
        if count >= BATCH_MAX_LENGTH:
            res = _error("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
        elif not isinstance(call, str):
            continue  # non-string commands are skipped silently
        else:
            res = await _run_one(call, acc, sub_call)
        if "error" in res:
            acc["error"][str(key)] = res
            if halt:
                break
            continue
        for section in ("result", "next", "total", "time"):
            if section in res:
                acc[section][str(key)] = res[section]
    return {
        "result": php_array(acc["result"]) if acc["result"] else [],
        "result_error": php_array(acc["error"]) if acc["error"] else [],
        "result_total": php_array(acc["total"]) if acc["total"] else [],
        "result_next": php_array(acc["next"]) if acc["next"] else [],
        "result_time": php_array(acc["time"]) if acc["time"] else [],
    }

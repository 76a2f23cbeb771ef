"""Bitrix list semantics shared by user.get and crm.lead.list: prefixed filters, order, select
and `start` paging by 50 with `total`/`next`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.methods._common import php_int

PAGE = 50
# Longest prefixes first so '>=' is not read as '>'.
PREFIXES = ("!=%", "!%=", "!%", "=%", "%=", "!@", ">=", "<=", "!=", "%", "@", "=", ">", "<", "!")


def split_key(key: str) -> tuple[str, str]:
    """'>=ID' -> ('>=', 'ID')."""
    for prefix in PREFIXES:
        if key.startswith(prefix):
            return prefix, key[len(prefix) :]
    return "", key


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list | tuple) else [value]


def _compare(left: Any, right: Any) -> int:
    """Numbers compare as numbers, everything else as case-insensitive text."""
    try:
        a, b = float(left), float(right)
    except (TypeError, ValueError):
        a, b = str(left).lower(), str(right).lower()  # type: ignore[assignment]
    return (a > b) - (a < b)


def _equal(value: Any, wanted: Any) -> bool:
    if isinstance(value, list):
        return any(_equal(v, wanted) for v in value)
    if isinstance(value, bool):
        return value == (str(wanted).upper() in ("Y", "TRUE", "1"))
    return _compare(value, wanted) == 0


def _like(value: Any, wanted: Any, how: str) -> bool:
    text, part = str(value).lower(), str(wanted).lower()
    if how == "=%":
        return text.startswith(part)
    if how == "%=":
        return text.endswith(part)
    return part in text


def matches(row: dict[str, Any], prefix: str, field: str, wanted: Any) -> bool:
    """One filter condition against a row (absent fields count as empty)."""
    value = row.get(field, "")
    negate = prefix.startswith("!") and prefix != "!"
    core = prefix.lstrip("!") if negate else prefix
    if prefix == "!":
        return not any(_equal(value, w) for w in _as_list(wanted))
    if core in ("", "=", "@"):
        result = any(_equal(value, w) for w in _as_list(wanted))
    elif core in ("%", "=%", "%="):
        result = _like(value, wanted, core)
    else:
        cmp = _compare(value, wanted)
        result = {">": cmp > 0, ">=": cmp >= 0, "<": cmp < 0, "<=": cmp <= 0}[core]
    return not result if negate else result


def apply_filter(
    rows: list[dict[str, Any]],
    flt: dict[str, Any],
    special: dict[str, Callable[[dict[str, Any], Any], bool]] | None = None,
) -> list[dict[str, Any]]:
    """Rows matching every condition; `special` handles pseudo-fields (e.g. NAME_SEARCH)."""
    special = special or {}
    out = []
    for row in rows:
        ok = True
        for key, wanted in flt.items():
            prefix, field = split_key(str(key))
            field = field.upper()
            if field in special:
                ok = special[field](row, wanted)
            else:
                ok = matches(row, prefix, field, wanted)
            if not ok:
                break
        if ok:
            out.append(row)
    return out


def apply_order(rows: list[dict[str, Any]], order: dict[str, Any]) -> list[dict[str, Any]]:
    """Stable multi-key sort, last key first."""
    for field, direction in reversed(list(order.items())):
        name = str(field).upper()

        def key(row: dict[str, Any], name: str = name) -> tuple[int, float, str]:
            return _sort_key(row.get(name, ""))

        rows = sorted(rows, key=key, reverse=str(direction).upper() == "DESC")
    return rows


def _sort_key(value: Any) -> tuple[int, float, str]:
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value).lower())


def page(rows: list[Any], start: Any) -> dict[Any, Any]:
    """A page of 50 from `start` as a PHP array (keys 0..n-1) plus `total` and, when more rows
    remain, `next` -- the platform lifts those two to the top of the envelope (§1.3)."""
    offset = max(php_int(start), 0)
    chunk = rows[offset : offset + PAGE]
    result: dict[Any, Any] = dict(enumerate(chunk))
    result["total"] = len(rows)
    if offset + PAGE < len(rows):
        result["next"] = offset + PAGE
    return result

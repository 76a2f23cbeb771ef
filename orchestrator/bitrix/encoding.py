"""PHP `http_build_query` encoding: nested params as `a[b][0]=x`, the form batch commands use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode


def _scalar(value: Any) -> str:
    # PHP renders true/false as 1/0; Bitrix Y/N flags are passed as strings by the wrappers.
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def flatten(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(bracketed key, value) pairs in PHP's order; None is dropped, as PHP does."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend(flatten(value, name))
        elif isinstance(value, list | tuple):
            pairs.extend(flatten({str(i): v for i, v in enumerate(value)}, name))
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def build_query(params: Mapping[str, Any]) -> str:
    """`params` as a PHP-style query string (brackets percent-encoded, like http_build_query)."""
    return urlencode(flatten(params))


def encode_command(method: str, params: Mapping[str, Any]) -> str:
    """One batch command: `method?query`, with nested params in PHP bracket form."""
    query = build_query(params)
    return f"{method}?{query}" if query else method

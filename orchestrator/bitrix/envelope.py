"""The REST envelope: parse a portal answer into `Envelope` or raise the classified `PortalError`.

The portal's HTTP statuses disagree with its docs (docs/bitrix24.md §1.5), so the `error` code alone
decides the exception class; the status only separates 5xx answers with no usable code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import (
    AccessDenied,
    InvalidCredentials,
    MethodError,
    OperationTimeLimit,
    PortalError,
    QueryLimitExceeded,
    ServerError,
    TokenExpired,
)

QUERY_LIMIT = "QUERY_LIMIT_EXCEEDED"
OPERATION_LIMIT = "OPERATION_TIME_LIMIT"
EXPIRED_TOKEN = "expired_token"

# error code -> class; codes not listed are the method's own errors (MethodError).
_INVALID_CREDENTIALS = frozenset(
    {
        "invalid_token",
        "NO_AUTH_FOUND",
        "INVALID_CREDENTIALS",
        "authorization_error",
        "APPLICATION_NOT_FOUND",
        "INVALID_REQUEST",
        "invalid_grant",
    }
)
_ACCESS_DENIED = frozenset(
    {
        "ACCESS_DENIED",
        "insufficient_scope",
        "WRONG_AUTH_TYPE",
        "user_access_error",
        "WRONG_LICENSE",
        "PORTAL_DELETED",
        "METHOD_CONFIRM_WAITING",
        "METHOD_CONFIRM_DENIED",
        # A manual hold on the app; waiting seconds will not lift it, so it is not RateLimited.
        "OVERLOAD_LIMIT",
    }
)
_SERVER = frozenset({"INTERNAL_SERVER_ERROR", "ERROR_UNEXPECTED_ANSWER", "WRONG_ENCODING"})

# Retry hints for the two throttles: the bucket drains one slot per 0.5 s on the standard plan;
# the operating budget moves in 60 s buckets (docs/bitrix24.md §2).
_QUERY_LIMIT_RETRY_S = 1.0
_OPERATION_LIMIT_RETRY_S = 60.0


@dataclass(frozen=True)
class Envelope:
    """One successful answer: the `result` plus the list paging and timing fields."""

    result: Any
    total: int | None = None
    next: int | None = None
    time: dict[str, Any] = field(default_factory=dict)

    @property
    def operating(self) -> float | None:
        """Seconds of the method's operating budget used so far (None when not reported)."""
        return _float_or_none(self.time.get("operating"))

    @property
    def operating_reset_at(self) -> float | None:
        """Unix time when the oldest operating bucket expires (None when not reported)."""
        return _float_or_none(self.time.get("operating_reset_at"))

    @property
    def processing(self) -> float:
        """Handler wall time the portal reported, seconds."""
        return _float_or_none(self.time.get("processing")) or 0.0


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def as_int(value: Any) -> int | None:
    """An id as int: the portal sends raw DB values, so numeric strings are common."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify(
    code: str,
    description: str = "",
    *,
    status: int | None = None,
    method: str | None = None,
    payload: dict[str, Any] | None = None,
) -> PortalError:
    """The exception for an error envelope, chosen by its `error` code."""
    kw: dict[str, Any] = {"status": status, "method": method, "payload": payload}
    if code == QUERY_LIMIT:
        return QueryLimitExceeded(code, description, retry_after=_QUERY_LIMIT_RETRY_S, **kw)
    if code == OPERATION_LIMIT:
        return OperationTimeLimit(code, description, retry_after=_OPERATION_LIMIT_RETRY_S, **kw)
    if code == EXPIRED_TOKEN:
        return TokenExpired(code, description, **kw)
    if code in _INVALID_CREDENTIALS:
        return InvalidCredentials(code, description, **kw)
    if code in _ACCESS_DENIED:
        return AccessDenied(code, description, **kw)
    if code in _SERVER or (code == "ERROR_CORE" and (status or 0) >= 500):
        return ServerError(code, description, **kw)
    return MethodError(code, description, **kw)


def error_from_body(body: dict[str, Any], *, status: int | None, method: str | None) -> PortalError:
    """The exception for a decoded body that carries an `error` key."""
    return classify(
        str(body.get("error") or ""),
        str(body.get("error_description") or ""),
        status=status,
        method=method,
        payload=body,
    )


def envelope_from_body(body: dict[str, Any]) -> Envelope:
    """An `Envelope` from a decoded success body."""
    time = body.get("time")
    return Envelope(
        result=body.get("result"),
        total=as_int(body.get("total")),
        next=as_int(body.get("next")),
        time=time if isinstance(time, dict) else {},
    )


def parse_response(status: int, body: bytes, method: str | None = None) -> Envelope:
    """Decode an HTTP answer; raise the classified `PortalError` for anything but a success."""
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        decoded = None
    if not isinstance(decoded, dict):
        # HTML error pages from the front layer, proxies and truncated bodies land here.
        snippet = body[:200].decode("utf-8", "replace")
        raise ServerError(
            "INVALID_RESPONSE", f"not a REST envelope: {snippet!r}", status=status, method=method
        )
    if "error" in decoded:
        raise error_from_body(decoded, status=status, method=method)
    if status >= 500 or "result" not in decoded:
        raise ServerError(
            "INVALID_RESPONSE",
            "answer without result",
            status=status,
            method=method,
            payload=decoded,
        )
    return envelope_from_body(decoded)

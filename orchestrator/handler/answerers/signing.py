"""The signature of our requests to a contact center's answerer service (docs/answerers.md).

    X-Answerer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

The timestamp is inside the signed text, so a captured request cannot be replayed later than the
service's tolerance, and the body cannot be changed without the secret. A service checks it with
`verify` (or the same few lines in its own language); the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["HEADER", "TOLERANCE_S", "sign", "verify"]

HEADER = "X-Answerer-Signature"
TOLERANCE_S = 300


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for `body`, signed now (or at `timestamp`)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={_mac(secret, at, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """Whether `header` signs `body` with `secret`, within `tolerance_s` of now."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        at = int(parts["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - at) > tolerance_s:
        return False
    return hmac.compare_digest(parts.get("v1", ""), _mac(secret, at, body))

"""HTTP transport on aiohttp: one `ClientSession` per process, bounded connections and timeouts.

The seam is `Transport.post_json` / `Transport.get_json`: the rest of the client never touches
aiohttp, and every network failure leaves here as `TransportError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from orchestrator.errors import TransportError


@dataclass(frozen=True)
class RawResponse:
    """An HTTP answer as read off the wire."""

    status: int
    body: bytes


class Transport:
    """Owns the process's aiohttp session; open once, share, close once."""

    def __init__(self, *, timeout_s: float = 30.0, max_connections: int = 32) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the session (idempotent)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)

    async def close(self) -> None:
        """Close the session and its connections (idempotent)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open session; using a closed transport is a programming error."""
        if self._session is None:
            raise RuntimeError("Transport is not open")
        return self._session

    async def post_json(self, url: str, payload: dict[str, Any]) -> RawResponse:
        """POST a JSON body; return status and raw body, or raise TransportError."""
        return await self._send("POST", url, json=payload)

    async def get_json(self, url: str, params: dict[str, str]) -> RawResponse:
        """GET with query params (the OAuth token endpoint is a GET)."""
        return await self._send("GET", url, params=params)

    async def _send(self, verb: str, url: str, **kw: Any) -> RawResponse:
        try:
            async with self.session.request(verb, url, **kw) as resp:
                return RawResponse(resp.status, await resp.read())
        except TimeoutError as exc:
            raise TransportError(f"timeout after {self._timeout.total}s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

"""The `http` answerer: the contact center's own service decides (docs/answerers.md).

We POST the request as JSON with `X-Answerer-Signature` (signing.py), `Idempotency-Key` (the
question's effect id: the same on every try of the same turn, so a service may answer a repeat
from its cache) and read one action back. A try is repeated only when the request never reached
the service (the connection was refused or could not be made); a timeout, an error status or a
broken answer is the caller's failure to handle, since the service may have worked on it.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from orchestrator.dialog.answerer_config import HttpAnswerer
from orchestrator.handler.answerers.errors import AnswererFailed
from orchestrator.handler.answerers.signing import HEADER, sign

__all__ = ["ANSWER_MAX_BYTES", "HttpAnswererClient"]

ANSWER_MAX_BYTES = 64 * 1024  # an action is a few hundred bytes; more is not an answer


class HttpAnswererClient:
    """Asks one service; `answer` returns the raw JSON it answered (validated by the caller)."""

    kind = "http"

    def __init__(self, session: aiohttp.ClientSession, config: HttpAnswerer, secret: str) -> None:
        self.session = session
        self.config = config
        self.secret = secret

    async def answer(self, request: dict[str, Any], key: str) -> Any:
        """One action's JSON for `request`; AnswererFailed when there is none."""
        body = json.dumps(request, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            HEADER: sign(self.secret, body),
        }
        tries = 0
        while True:
            tries += 1
            try:
                return await self._post(body, headers)
            except aiohttp.ClientConnectorError as exc:
                # nothing was sent: safe to try again
                if tries > self.config.retries:
                    raise AnswererFailed("error", f"cannot connect: {exc}") from exc
            except aiohttp.ClientError as exc:
                raise AnswererFailed("error", f"{type(exc).__name__}: {exc}") from exc

    async def _post(self, body: bytes, headers: dict[str, str]) -> Any:
        async with self.session.post(self.config.url, data=body, headers=headers) as resp:
            if resp.status != 200:
                raise AnswererFailed("error", f"HTTP {resp.status}")
            raw = await resp.content.read(ANSWER_MAX_BYTES + 1)
        if len(raw) > ANSWER_MAX_BYTES:
            raise AnswererFailed("invalid", "answer too large")
        try:
            return json.loads(raw)
        except ValueError:
            raise AnswererFailed("invalid", "answer is not JSON") from None

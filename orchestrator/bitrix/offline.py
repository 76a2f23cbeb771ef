"""`event.offline.get|clear|error|list`, typed: reading the app's offline event queue.

The queue is per app and `auth_connector` (docs/bitrix24-offline-events.md §1); these methods
are OAuth + administrator only, so on a webhook portal they are `WRONG_AUTH_TYPE`. Two ways to
read (§1.5): `clear=1` takes rows and deletes them in the same call — a lost answer is a lost
batch — and `clear=0` reserves them under a `process_id` to be confirmed by `clear` (or turned
into error rows by `error`) once what they say is stored; `clear=0` needs the licence feature
`rest_offline_extended` (`feature.get`, on `PortalApi`). Retry safety: orchestrator/bitrix/retry.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.bitrix.bot_v2 import PortalCaller
from orchestrator.bitrix.models import Page, page_of
from orchestrator.bitrix.models_v2 import OfflineBatch, OfflineListRow

__all__ = ["OFFLINE_EXTENDED", "OfflineApi"]

# The licence feature that allows clear=0 (reserve, then confirm).
OFFLINE_EXTENDED = "rest_offline_extended"


def _params(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


class OfflineApi:
    """The calling app's offline queue on one portal (optionally one `auth_connector`'s)."""

    def __init__(self, portal: PortalCaller, *, auth_connector: str | None = None) -> None:
        self.portal = portal
        self.auth_connector = auth_connector

    async def get(
        self,
        *,
        clear: bool = False,
        process_id: str | None = None,
        limit: int | None = None,
        error: bool = False,
        filter: Mapping[str, Any] | None = None,
        order: Mapping[str, str] | None = None,
    ) -> OfflineBatch:
        """`event.offline.get`. Default `clear=False`: reserve up to `limit` free rows under a new
        process id (or, with `process_id`, re-read that batch after a crash)."""
        params = _params(
            clear=int(clear),
            process_id=process_id,
            limit=limit,
            error=1 if error else None,
            filter=dict(filter) if filter else None,
            order=dict(order) if order else None,
            auth_connector=self.auth_connector,
        )
        env = await self.portal.call("event.offline.get", params)
        return OfflineBatch.model_validate(env.result or {})

    async def clear(
        self,
        process_id: str,
        *,
        ids: Sequence[int] | None = None,
        message_ids: Sequence[str] | None = None,
    ) -> bool:
        """`event.offline.clear`: confirm (delete) a process's rows — all, or those ids; message
        ids win over ids. True even when nothing matched."""
        params = _params(
            process_id=process_id,
            id=list(ids) if ids is not None else None,
            message_id=list(message_ids) if message_ids is not None else None,
            auth_connector=self.auth_connector,
        )
        return bool((await self.portal.call("event.offline.clear", params)).result)

    async def error(self, process_id: str, message_ids: Sequence[str]) -> bool:
        """`event.offline.error`: turn this process's rows of those objects into free error rows
        (read later with `error=True`); every other copy of the objects is deleted."""
        params = _params(
            process_id=process_id, message_id=list(message_ids), auth_connector=self.auth_connector
        )
        return bool((await self.portal.call("event.offline.error", params)).result)

    async def list(
        self,
        *,
        filter: Mapping[str, Any] | None = None,
        order: Mapping[str, str] | None = None,
        start: int | None = None,
    ) -> Page[OfflineListRow]:
        """`event.offline.list`: a read-only page of 50 rows with their state; its `next` is the
        `start` of the next page (None on the last)."""
        params = _params(
            filter=dict(filter) if filter else None,
            order=dict(order) if order else None,
            start=start,
            auth_connector=self.auth_connector,
        )
        return page_of(await self.portal.call("event.offline.list", params), OfflineListRow)

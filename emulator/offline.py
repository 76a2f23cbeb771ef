"""The portal's offline-event queue (`b_rest_event_offline`): what an app bound with
`event.bind {event_type: "offline"}` gets instead of a POST, and the `onOfflineEvent` push that
tells it there is something to fetch.

The rules, all from rest/lib/eventoffline.php and rest/lib/event/provideroffline.php:

* A row is `ID, TIMESTAMP_X, MESSAGE_ID, APP_ID, EVENT_NAME, EVENT_DATA, EVENT_ADDITIONAL,
  PROCESS_ID ('' = free), CONNECTOR_ID, ERROR`. `MESSAGE_ID = md5(EVENT_NAME|json(data))`.
* Writing is an upsert keyed by (MESSAGE_ID, APP_ID, CONNECTOR_ID, PROCESS_ID): the same event
  about the same object collapses into the free row and refreshes its TIMESTAMP_X (and data);
  while that row is reserved the repeat makes a second, free row. The key has no ERROR, so a
  repeat of an event whose free row is an error row refreshes the error row and stays an error.
* A change made through REST by the bound app with the binding's own `auth_connector` is not
  written (self-suppression, emulator.offline_context).
* `event.offline.get` reserves free rows under a new 32-char process id, reads a process's rows,
  and (clear=1) deletes the whole process; `event.offline.clear` deletes a process's rows (all,
  or by ID / MESSAGE_ID); `event.offline.error` deletes every other non-error row of those
  MESSAGE_IDs and turns the process's row into a free error row.
* An agent deletes rows whose TIMESTAMP_X is older than the retention (30 days by the docs; the
  code's constant is 2952000 s).
* At the end of a request that wrote rows for an app, every online `onOfflineEvent` handler of
  that app is called unless suppressed: within `minTimeout` seconds (default 1) of its last call
  it is skipped, not delayed; `minTimeout: 0` allows one notification per request.

Every write, reservation, clear and error mark is journaled (`offline_queued`,
`offline_reserved`, `offline_cleared`, `offline_error`) so a proof can count what the portal
offered. The REST parsing lives in emulator.methods.events_offline; this module is the table.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from emulator import payloads
from emulator.journal import Journal, current_via
from emulator.offline_context import RequestScope, current_caller, current_scope
from emulator.offline_row import OfflineRow, message_id
from emulator.primitives import EventSink
from emulator.state import EventBinding

ON_OFFLINE_EVENT = "ONOFFLINEEVENT"
DEFAULT_MIN_TIMEOUT = 1  # seconds (OFFLINE_EVENT_DEFAULT_TIMEOUT)
RETENTION_S = 30 * 86_400.0  # the docs' "30 days"
CODE_RETENTION_S = 2_952_000.0  # PROCESS_ID_LIFETIME of the server code (about 34.2 days)


class OfflinePortal(payloads.PortalView, Protocol):
    """What the queue reads of its portal: the bindings, where pushes go, its journal, clock."""

    @property
    def bindings(self) -> Mapping[int, EventBinding]: ...

    @property
    def sink(self) -> EventSink: ...

    @property
    def journal(self) -> Journal: ...

    @property
    def admin_user_id(self) -> int: ...

    @property
    def event_counts(self) -> Counter[str]: ...

    def now(self) -> float: ...


Where = Callable[[OfflineRow], bool]
Order = list[tuple[str, bool]]  # (column, descending)


class OfflineQueue:
    """The offline rows of every app of one portal, and its `onOfflineEvent` notifier."""

    def __init__(self, portal: OfflinePortal, retention_s: float = RETENTION_S) -> None:
        self._portal = portal
        self.retention_s = retention_s
        self.rows: dict[int, OfflineRow] = {}
        self._last_id = 0
        self._pending_apps: set[str] = set()
        # (handler binding id, minTimeout) -> when its last notification was sent
        self._sent_at: dict[tuple[int, int], float] = {}
        self._notices = 0

    # ---- writing ------------------------------------------------------------------------------

    def write(self, binding: EventBinding, data: Any, *, chat_id: int = 0) -> OfflineRow | None:
        """Record one event for an offline binding (the row, or None when self-suppressed)."""
        caller = current_caller()
        if caller.client_id == binding.app_id and caller.connector == binding.connector_id:
            return None
        now = float(int(self._portal.now()))  # a DATETIME column: whole seconds
        mid = message_id(binding.event, data)
        additional = {"user_id": caller.user_id}
        row = next(
            (
                r
                for r in self.rows.values()
                if (r.message_id, r.app_id, r.connector_id, r.process_id)
                == (mid, binding.app_id, binding.connector_id, "")
            ),
            None,
        )
        new = row is None
        if row is None:
            self._last_id += 1
            row = OfflineRow(
                self._last_id, now, mid, binding.app_id, binding.event, data, additional
            )
            row.connector_id = binding.connector_id
            self.rows[row.id] = row
        else:
            row.timestamp, row.event_data, row.event_additional = now, data, additional
        self._portal.journal.append(
            "offline_queued",
            row_id=row.id,
            name=row.event_name,
            message_id=mid,
            app_id=row.app_id,
            connector_id=row.connector_id,
            new=new,
            error=row.error,
            via=current_via(),
            **({"chat_id": chat_id} if chat_id else {}),
        )
        self._pending_apps.add(binding.app_id)
        scope = current_scope()
        if scope is not None:
            scope.defer(self)
        else:
            self.flush(RequestScope())
        return row

    # ---- reading and confirming ---------------------------------------------------------------

    def select(
        self,
        app_id: str,
        connector: str,
        *,
        process_id: str | None = None,
        error: int | None = None,
        where: Where | None = None,
        order: Order | None = None,
    ) -> list[OfflineRow]:
        """The app's rows of one connector queue that match, ordered (ties by ID)."""
        rows = [
            r
            for r in self.rows.values()
            if r.app_id == app_id
            and r.connector_id == connector
            and (process_id is None or r.process_id == process_id)
            and (error is None or r.error == error)
            and (where is None or where(r))
        ]
        rows.sort(key=lambda r: r.id)
        for column, descending in reversed(order or []):
            rows.sort(key=_column_key(column), reverse=descending)
        return rows

    def reserve(
        self,
        app_id: str,
        connector: str,
        *,
        error: int,
        where: Where | None,
        order: Order,
        limit: int,
    ) -> str:
        """Stamp up to `limit` free rows with a new process id (`markEvents`); the id."""
        process_id = secrets.token_hex(16)  # 32 characters, as Random::getString(32)
        free = self.select(app_id, connector, process_id="", error=error, where=where, order=order)
        chosen = free[:limit]
        for row in chosen:
            row.process_id = process_id
        if chosen:
            self._journal("offline_reserved", chosen, app_id, connector, process_id, error=error)
        return process_id

    def clear(
        self,
        app_id: str,
        connector: str,
        process_id: str,
        *,
        ids: Iterable[int] | None = None,
        message_ids: Iterable[str] | None = None,
        reason: str,
    ) -> list[OfflineRow]:
        """Delete the rows of a process (all, or those IDs / MESSAGE_IDs); the rows deleted."""
        id_set = None if ids is None else set(ids)
        mid_set = None if message_ids is None else set(message_ids)
        gone = [
            r
            for r in self.select(app_id, connector, process_id=process_id)
            if (id_set is None or r.id in id_set) and (mid_set is None or r.message_id in mid_set)
        ]
        self._delete(gone, app_id, connector, process_id, reason)
        return gone

    def mark_error(
        self, app_id: str, connector: str, process_id: str, message_ids: Iterable[str]
    ) -> None:
        """`markError`: per MESSAGE_ID, delete every other non-error row (free or reserved by
        anyone), and turn this process's row into a free error row (an error row already free
        for that object is replaced: the key allows one)."""
        wanted = set(message_ids)
        rows = [r for r in self.select(app_id, connector) if r.message_id in wanted]
        others = [r for r in rows if r.error == 0 and r.process_id != process_id]
        self._delete(others, app_id, connector, process_id, "error")
        marked = [r for r in rows if r.error == 0 and r.process_id == process_id]
        marked_ids = {r.message_id for r in marked}
        stale = [
            r for r in rows if r.error == 1 and r.process_id == "" and r.message_id in marked_ids
        ]
        self._delete(stale, app_id, connector, process_id, "error")
        for row in marked:
            row.error, row.process_id = 1, ""
        if marked:
            self._journal("offline_error", marked, app_id, connector, process_id)

    def purge(self) -> int:
        """The retention agent: delete rows last written before now - retention; how many."""
        limit = self._portal.now() - self.retention_s
        old = [r for r in self.rows.values() if r.timestamp < limit]
        for row in old:
            del self.rows[row.id]
        if old:
            self._portal.journal.append(
                "offline_cleared",
                process_id="",
                row_ids=[r.id for r in old],
                message_ids=[r.message_id for r in old],
                app_id="",
                connector_id="",
                reason="purge",
                via=current_via(),
            )
        return len(old)

    def _delete(
        self, rows: list[OfflineRow], app_id: str, connector: str, process_id: str, reason: str
    ) -> None:
        for row in rows:
            del self.rows[row.id]
        if rows:
            self._journal("offline_cleared", rows, app_id, connector, process_id, reason=reason)

    def _journal(
        self,
        kind: str,
        rows: list[OfflineRow],
        app_id: str,
        connector: str,
        process_id: str,
        **extra: Any,
    ) -> None:
        self._portal.journal.append(
            kind,
            process_id=process_id,
            row_ids=[r.id for r in rows],
            message_ids=[r.message_id for r in rows],
            app_id=app_id,
            connector_id=connector,
            **extra,
            via=current_via(),
        )

    # ---- onOfflineEvent -----------------------------------------------------------------------

    def flush(self, scope: RequestScope) -> None:
        """End of a request: call the `onOfflineEvent` handlers of the apps that got rows."""
        apps, self._pending_apps = self._pending_apps, set()
        if not apps:
            return
        portal = self._portal
        for binding in sorted(portal.bindings.values(), key=lambda b: b.id):
            if binding.event != ON_OFFLINE_EVENT or not binding.handler:
                continue
            if binding.app_id not in apps or not self._may_notify(binding, scope):
                continue
            self._notify(binding)

    def _may_notify(self, binding: EventBinding, scope: RequestScope) -> bool:
        """`checkSendTime`: a positive minTimeout lets one notification per handler through
        per that many seconds (the rest are dropped); 0 or less, one per request."""
        timeout = int(binding.options.get("minTimeout", DEFAULT_MIN_TIMEOUT))
        if timeout <= 0:
            if scope.zero_timeout_sent:
                return False
            scope.zero_timeout_sent = True
            return True
        now = self._portal.now()
        last = self._sent_at.get((binding.id, timeout))
        if last is not None and now < last + timeout:
            return False
        self._sent_at[(binding.id, timeout)] = now
        return True

    def _notify(self, binding: EventBinding) -> None:
        """POST ONOFFLINEEVENT: empty data, and an auth block with tokens and refresh_token."""
        portal = self._portal
        user_id = binding.auth_type or current_caller().user_id or portal.admin_user_id
        auth = payloads.event_auth(portal, portal.identity.application_token)
        if portal.token_issuer is not None:
            auth.update(portal.token_issuer(user_id, binding.app_id))
        auth["user_id"] = str(user_id)
        payload = payloads.envelope(ON_OFFLINE_EVENT, binding.id, {}, portal.now(), auth)
        self._notices += 1
        portal.event_counts[ON_OFFLINE_EVENT] += 1
        note = {"dedup": f"{ON_OFFLINE_EVENT}:{binding.id}:notice:{self._notices}"}
        portal.sink.post(binding.handler, payload, note)

    def describe(self) -> list[dict[str, Any]]:
        """Every row with its state, for the control API."""
        return [
            {**r.rest(with_state=True), "APP_ID": r.app_id, "CONNECTOR_ID": r.connector_id}
            for r in sorted(self.rows.values(), key=lambda r: r.id)
        ]


def _column_key(column: str) -> Callable[[OfflineRow], tuple[int, float, str]]:
    """A sort key over one column: numbers as numbers, text case-insensitively."""

    def key(row: OfflineRow) -> tuple[int, float, str]:
        value = row.fields()[column]
        if isinstance(value, int | float):
            return (0, float(value), "")
        return (1, 0.0, str(value).lower())

    return key

"""One row of the portal's offline-event queue (`b_rest_event_offline`) and how its MESSAGE_ID is
made: md5 of the event name, "|" and the event's data as the portal's JSON encoder writes it
(rest/lib/eventoffline.php `getMessageId`, main/lib/web/json.php). The table and its rules are
emulator.offline."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def php_json(value: Any) -> str:
    """`Bitrix\\Main\\Web\\Json::encode` with its default options, as PHP sees our data: compact,
    unicode kept, `/` escaped, < > & ' " as \\u003C-style escapes, and a dict that PHP would
    hold as a list (empty, or keys 0..n-1) written as a JSON list."""
    if isinstance(value, dict):
        if list(value) == [str(i) for i in range(len(value))] or list(value) == list(
            range(len(value))
        ):
            return php_json(list(value.values()))
        items = (f"{_php_string(str(k))}:{php_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(php_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _php_string(value)
    return json.dumps(value)


def _php_string(text: str) -> str:
    # Inside a JSON string every '"' carries its own backslash, so '\\"' only ever matches one.
    body = json.dumps(text, ensure_ascii=False)[1:-1]
    for char, escape in (
        ("<", "\\u003C"),
        (">", "\\u003E"),
        ("&", "\\u0026"),
        ("'", "\\u0027"),
        ('\\"', "\\u0022"),
        ("/", "\\/"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        body = body.replace(char, escape)
    return f'"{body}"'


def message_id(event_name: str, data: Any) -> str:
    """MESSAGE_ID: md5 of the upper-case event name, "|" and the JSON of its data."""
    return hashlib.md5(f"{event_name}|{php_json(data)}".encode()).hexdigest()


def rest_date(ts: float) -> str:
    """TIMESTAMP_X as the REST API prints dates (ISO-8601 with offset, whole seconds)."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


@dataclass
class OfflineRow:
    """One row of the queue; `timestamp` is the portal clock of its last write."""

    id: int
    timestamp: float
    message_id: str
    app_id: str
    event_name: str
    event_data: Any
    event_additional: dict[str, Any]
    process_id: str = ""
    connector_id: str = ""
    error: int = 0

    def fields(self) -> dict[str, Any]:
        """The columns a filter or an order reads (TIMESTAMP_X as a number)."""
        return {
            "ID": self.id,
            "TIMESTAMP_X": self.timestamp,
            "EVENT_NAME": self.event_name,
            "MESSAGE_ID": self.message_id,
            "PROCESS_ID": self.process_id,
            "ERROR": self.error,
        }

    def rest(self, *, with_state: bool) -> dict[str, Any]:
        """The row as the REST API returns it (DB strings); `with_state` adds PROCESS_ID and
        ERROR, as event.offline.list shows them. EVENT_ADDITIONAL keeps only `user_id`."""
        row: dict[str, Any] = {
            "ID": str(self.id),
            "TIMESTAMP_X": rest_date(self.timestamp),
            "EVENT_NAME": self.event_name,
            "EVENT_DATA": self.event_data,
            "EVENT_ADDITIONAL": {"user_id": str(self.event_additional.get("user_id", 0))},
            "MESSAGE_ID": self.message_id,
        }
        if with_state:
            row.update(PROCESS_ID=self.process_id, ERROR=str(self.error))
        return row

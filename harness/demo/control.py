"""Talking to the emulator as the demo's people do: its control API over HTTP for actions
(clients write and vote, operators answer and finish, time moves), and a cheap in-process view
of the portal's messages and sessions for the actors' waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp

__all__ = ["ControlError", "EmulatorControl", "PortalView", "SessionView"]


class ControlError(Exception):
    """The control API refused an action (the portal's error code is in the message)."""


class EmulatorControl:
    """The `/_emulator/` routes, one method each."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, member_id: str | None = None
    ) -> None:
        self.http = http
        self.base = f"{base_url.rstrip('/')}/_emulator"
        self.member_id = member_id  # which portal; None: the emulator's first

    async def _call(self, verb: str, route: str, body: dict[str, Any] | None = None) -> Any:
        params = {"member_id": self.member_id} if self.member_id else None
        url = f"{self.base}/{route}"
        async with self.http.request(verb, url, json=body, params=params) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise ControlError(f"{route}: HTTP {response.status} {data}")
            return data

    async def client_message(
        self, line_id: int, text: str, *, user_code: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """A client writes into a line (the first message opens chat and session)."""
        body: dict[str, Any] = {"line_id": line_id, "text": text}
        if user_code:
            body["user_code"] = user_code
        if name:
            body["name"] = name
        result: dict[str, Any] = await self._call("POST", "client-message", body)
        return result

    async def operator_answer(self, chat_id: int, user_id: int) -> Any:
        """An operator takes a queued dialog."""
        return await self._call("POST", "operator-answer", {"chat_id": chat_id, "user_id": user_id})

    async def operator_message(self, chat_id: int, user_id: int, text: str) -> Any:
        """An operator writes to the client."""
        return await self._call(
            "POST", "operator-message", {"chat_id": chat_id, "user_id": user_id, "text": text}
        )

    async def operator_finish(self, chat_id: int, user_id: int) -> Any:
        """An operator finishes the dialog."""
        return await self._call("POST", "operator-finish", {"chat_id": chat_id, "user_id": user_id})

    async def client_press(self, chat_id: int, message_id: int, label: str) -> Any:
        """The client presses a keyboard button of a bot message, by its label."""
        body = {"chat_id": chat_id, "message_id": message_id, "label": label}
        return await self._call("POST", "client-press", body)

    async def client_edit(self, chat_id: int, message_id: int, text: str) -> Any:
        """The client edits its own message."""
        body = {"chat_id": chat_id, "message_id": message_id, "text": text}
        return await self._call("POST", "client-edit", body)

    async def client_delete(self, chat_id: int, message_id: int) -> Any:
        """The client deletes its own message."""
        return await self._call(
            "POST", "client-delete", {"chat_id": chat_id, "message_id": message_id}
        )

    async def client_vote(self, chat_id: int, vote: str) -> Any:
        """The client rates the dialog: like or dislike."""
        return await self._call("POST", "client-vote", {"chat_id": chat_id, "vote": vote})

    async def advance_time(self, seconds: float) -> Any:
        """Move the portal's clock and fire its due timers."""
        return await self._call("POST", "advance-time", {"seconds": seconds})

    async def state(self) -> dict[str, Any]:
        """The portal's whole state."""
        result: dict[str, Any] = await self._call("GET", "state")
        return result

    async def journal(self, since: int = 0) -> dict[str, Any]:
        """The portal's journal of state changes after `since` (`entries`, `next`, `total`)."""
        params = {"since": str(since)}
        if self.member_id:
            params["member_id"] = self.member_id
        async with self.http.get(f"{self.base}/journal", params=params) as response:
            data: dict[str, Any] = await response.json(content_type=None)
            if response.status >= 400:
                raise ControlError(f"journal: HTTP {response.status} {data}")
            return data

    async def plant(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append an entry to the portal's journal as if the portal had made that change (a
        test tool: a planted `message` is also shown in the chat)."""
        result: dict[str, Any] = await self._call("POST", "journal/plant", entry)
        return result

    async def counters(self) -> dict[str, Any]:
        """REST calls, 503s and 429s per method."""
        result: dict[str, Any] = await self._call("GET", "counters")
        return result

    async def faults(self, plan: dict[str, Any]) -> Any:
        """Replace the fault plan (error_rate, latency_ms, timeout_rate, html_rate, seed)."""
        return await self._call("POST", "faults", plan)

    async def clear_faults(self) -> Any:
        """Remove every fault."""
        return await self._call("DELETE", "faults")

    async def install(self) -> Any:
        """Re-send ONAPPINSTALL to the configured event URL."""
        return await self._call("POST", "install", {})

    async def expire_tokens(self) -> Any:
        """Expire every live access token of the portal (refresh tokens stay valid)."""
        return await self._call("POST", "expire-tokens", {})


@dataclass
class SessionView:
    """What an actor needs to know about a chat's current session."""

    session_id: int
    status: int
    closed: bool
    wait_vote: bool
    wait_answer: bool
    operator_id: int
    operator_is_bot: bool


@dataclass
class PortalView:
    """Incremental, read-only index of an in-process emulated portal (no HTTP, no snapshot)."""

    portal: Any  # emulator.portal.Portal: the demo owns the emulator it reads
    _cursor: int = 0
    _to_client: dict[int, list[str]] = field(default_factory=dict)

    def _refresh(self) -> None:
        # message ids are handed out 1, 2, 3...: only the new ones are read
        messages = self.portal.messages
        while (message := messages.get(self._cursor + 1)) is not None:
            self._cursor += 1
            if message.author_id in self.portal.bots and not message.system:
                self._to_client.setdefault(message.chat_id, []).append(message.text)

    def bot_texts(self, chat_id: int) -> list[str]:
        """What our bot wrote in the chat so far (the portal's notices excluded)."""
        self._refresh()
        return list(self._to_client.get(chat_id, []))

    def button_message(self, chat_id: int, label: str) -> int | None:
        """The newest message of the chat with a live button `label`, if any."""
        found = None
        for message in self.portal.messages.values():
            if message.chat_id != chat_id or message.deleted:
                continue
            for button in message.params.get("KEYBOARD") or []:
                if button.get("TEXT") == label and button.get("DISABLED") != "Y":
                    found = max(found or 0, int(message.id))
        return found

    def last_client_message(self, chat_id: int) -> int:
        """The id of the client's newest message in the chat."""
        chat = self.portal.get_chat(chat_id)
        return max(
            int(m.id)
            for m in self.portal.messages.values()
            if m.chat_id == chat_id and m.author_id == chat.client_id
        )

    def session(self, chat_id: int) -> SessionView | None:
        """The chat's open session, else its latest one."""
        chat = self.portal.get_chat(chat_id)
        if chat is None:
            return None
        s = self.portal.open_session(chat) or self.portal.latest_session(chat)
        if s is None:
            return None
        return SessionView(
            s.id,
            int(s.status),
            s.closed,
            s.wait_vote,
            s.wait_answer,
            s.operator_id,
            s.operator_is_bot,
        )

    def queued_chats(self) -> list[int]:
        """Chats whose open session waits in a queue for a human."""
        return sorted(
            s.chat_id
            for s in self.portal.sessions.values()
            if not s.closed and s.wait_answer and not s.operator_id
        )

    def operators(self, line_id: int) -> list[int]:
        """The user ids in a line's queue."""
        return list(self.portal.lines[line_id].queue)

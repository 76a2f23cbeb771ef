"""One emulated Bitrix24 portal: its store (emulator.store) plus the domain actions the control
API calls and the timers. Session transitions live in emulator.lifecycle; messages in
emulator.messaging; event shapes in emulator.payloads; REST handlers in emulator.methods; the
journal's test hook in emulator.planting; the state dump in emulator.snapshot."""

from __future__ import annotations

from typing import Any

from emulator import client_actions, closing, events_v2, lifecycle, messaging, planting, snapshot
from emulator.primitives import RestError
from emulator.state import Bot, Chat, Session, User
from emulator.store import PortalStore


class Portal(PortalStore):
    """All state of one portal plus the actions that change it."""

    # ---- domain actions (control API) ------------------------------------------------------

    def client_message(
        self, line_id: int, text: str, user_code: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """A client writes into a line; the first message of a user code opens everything."""
        return messaging.client_message(self, line_id, text, user_code, name)

    def operator_answer(self, chat_id: int, user_id: int) -> dict[str, Any]:
        """An operator takes the dialog (Chat::answer)."""
        session = self._control_session(chat_id)
        lifecycle.answer(self, session, self._control_user(user_id), check_responsible=True)
        return {"chat_id": chat_id, "session_id": session.id, "status": session.status}

    def operator_message(self, chat_id: int, user_id: int, text: str) -> dict[str, Any]:
        """An operator writes to the client from the operator chat."""
        chat = self._control_chat(chat_id)
        message = messaging.staff_message(self, chat, self._control_user(user_id), text)
        return {"message_id": message.id}

    def operator_finish(self, chat_id: int, user_id: int) -> dict[str, Any]:
        """An operator finishes the dialog (Session::finish)."""
        session = self._control_session(chat_id)
        self._control_user(user_id)
        closing.finish(self, session, "operator_finish")
        return {"chat_id": chat_id, "session_id": session.id, "status": session.status}

    def client_vote(self, chat_id: int, vote: str) -> dict[str, Any]:
        """The client rates the dialog from the widget: like -> 5, dislike -> 1."""
        if vote not in ("like", "dislike"):
            raise RestError("WRONG_VOTE", "vote must be 'like' or 'dislike'")
        chat = self._control_chat(chat_id)
        session = self.open_session(chat) or self.latest_session(chat)
        if session is None:
            raise RestError("SESSION_NOT_FOUND", "The chat has no session")
        closing.client_vote(self, session, vote)
        return {
            "chat_id": chat_id,
            "session_id": session.id,
            "status": session.status,
            "vote": session.vote,
        }

    def client_command(self, chat_id: int, message_id: int, command: str) -> dict[str, Any]:
        """The client clicks a COMMAND keyboard button of a v2 bot's message."""
        return events_v2.keyboard_command(self, chat_id, message_id, command)

    def client_press(self, chat_id: int, message_id: int, label: str) -> dict[str, Any]:
        """The client presses a keyboard button by its label (emulator.client_actions)."""
        return client_actions.client_press(self, chat_id, message_id, label)

    def client_edit(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        """The client edits its own message."""
        return client_actions.client_edit(self, chat_id, message_id, text)

    def client_delete(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """The client deletes its own message."""
        return client_actions.client_delete(self, chat_id, message_id)

    def emit_bot_event(
        self, bot: Bot, event: str, data: dict[str, Any], *, chat_id: int, ref: str
    ) -> None:
        """As the portal fires both families from one code path, a bot registered through
        imbot.v2 gets the event's ONIMBOTV2* twin instead (emulator.events_v2)."""
        if bot.api == "v2":
            events_v2.route_v1_event(self, bot, event, data, chat_id=chat_id, ref=ref)
            return
        super().emit_bot_event(bot, event, data, chat_id=chat_id, ref=ref)

    def plant(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A test tool: append `entry` to the journal as if the portal had made that change
        (a `message` is also added to its chat); the entry as recorded."""
        return planting.plant(self, entry)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data, for tests and GET /_emulator/state."""
        return snapshot.snapshot(self)

    def tick(self) -> None:
        """Fire due timers: welcome-bot timeout and vote time limit; purge old offline rows."""
        closing.tick(self)
        self.offline.purge()

    def _control_chat(self, chat_id: int) -> Chat:
        chat = self.get_chat(int(chat_id))
        if chat is None or chat.entity_type != "LINES":
            raise RestError("CHAT_NOT_FOUND", f"No open-line chat {chat_id}", 404)
        return chat

    def _control_session(self, chat_id: int) -> Session:
        session = self.open_session(self._control_chat(chat_id))
        if session is None:
            raise RestError("IMOL_CHAT_ERROR_ANSWER_NOT_LOAD_SESSION", "Cannot load session")
        return session

    def _control_user(self, user_id: int) -> User:
        user = self.get_user(int(user_id))
        if user is None or user.is_bot or user.is_connector or not user.active:
            raise RestError("USER_NOT_FOUND", f"No active employee {user_id}", 404)
        return user

"""A client of the demo's support line, as the end-to-end tests drive one: typing into the widget,
reading the bot's replies, and the portal's own records of its session and lead."""

from __future__ import annotations

from typing import Any

from harness.demo.portal_setup import SUPPORT_LINE
from harness.demo.stack import Stack
from orchestrator.dialog.evaluation import ORIGINATOR_ID
from orchestrator.dialog.state import DialogState, DialogStatus
from tests.e2e.conftest import dialog_state, eventually

TIMEOUT_S = 30.0  # each path must settle well within this


class Client:
    """One client of line 1 typing into the widget and reading the bot's replies."""

    def __init__(self, stack: Stack, name: str = "Anna Smith", line: int = SUPPORT_LINE) -> None:
        self.stack = stack
        self.name = name
        self.line = line
        self.chat_id = 0
        self.user_code: str | None = None
        self.sent: list[int] = []  # the ids of the client's messages, in order

    async def say(self, text: str, *, expect: str | None = None) -> None:
        """Write; with `expect`, wait until the bot has written that text since."""
        before = len(self.texts())
        answer = await self.stack.control.client_message(
            self.line, text, user_code=self.user_code, name=self.name
        )
        self.chat_id, self.user_code = int(answer["chat_id"]), str(answer["user_code"])
        self.sent.append(int(answer["message_id"]))
        await self._expect(before, expect)

    async def press(self, label: str, *, expect: str | None = None) -> None:
        """Press the newest live button labelled `label` under one of the bot's messages."""
        before = len(self.texts())

        def message_with_it() -> int | None:
            for message in reversed(messages(self)):
                for button in message.params.get("KEYBOARD") or []:
                    if button.get("TEXT") == label and button.get("DISABLED") != "Y":
                        return int(message.id)
            return None

        async def offered() -> bool:
            return message_with_it() is not None

        await eventually(offered, TIMEOUT_S)
        await self.stack.control.client_press(self.chat_id, message_with_it() or 0, label)
        await self._expect(before, expect)

    async def edit(self, message_id: int, text: str, *, expect: str | None = None) -> None:
        """Change one of the client's messages."""
        before = len(self.texts())
        await self.stack.control.client_edit(self.chat_id, message_id, text)
        await self._expect(before, expect)

    async def delete(self, message_id: int, *, expect: str | None = None) -> None:
        """Delete one of the client's messages."""
        before = len(self.texts())
        await self.stack.control.client_delete(self.chat_id, message_id)
        await self._expect(before, expect)

    async def _expect(self, before: int, expect: str | None) -> None:
        if expect is None:
            return

        async def replied() -> bool:
            return expect in self.texts()[before:]

        await eventually(replied, TIMEOUT_S)

    def texts(self) -> list[str]:
        """What our bot wrote in the chat (notes to the operator included)."""
        return self.stack.view.bot_texts(self.chat_id) if self.chat_id else []

    def session(self) -> Any:
        portal: Any = self.stack.emu.portals[0].portal
        chat = portal.get_chat(self.chat_id)
        return portal.open_session(chat) or portal.latest_session(chat)

    async def queued(self) -> None:
        """Wait until the portal has the dialog in a queue, waiting for a human."""

        async def waiting() -> bool:
            s = self.session()
            return not s.closed and s.wait_answer and not s.operator_id

        await eventually(waiting, TIMEOUT_S)

    async def state(self, *statuses: DialogStatus) -> DialogState:
        """Our committed state, once it is in one of `statuses`."""

        async def reached() -> bool:
            st = await dialog_state(self.stack, self.chat_id)
            return st is not None and st.status in statuses

        await eventually(reached, TIMEOUT_S)
        st = await dialog_state(self.stack, self.chat_id)
        assert st is not None
        return st


async def operator_closes(client: Client, operator_id: int, *, vote: str | None = "like") -> None:
    """The operator (already answering, or taking it now) writes and finishes; the client
    rates when the portal asks."""
    control = client.stack.control
    if client.session().operator_id != operator_id:
        await control.operator_answer(client.chat_id, operator_id)
    await control.operator_message(client.chat_id, operator_id, "Hello! How can I help?")
    await control.operator_finish(client.chat_id, operator_id)
    if vote is not None and client.session().wait_vote:
        await control.client_vote(client.chat_id, vote)
    else:  # the portal closes an unrated dialog when its vote wait runs out
        await control.advance_time(10_000)


def calls(stack: Stack, method: str) -> int:
    return int(stack.emu.portals[0].method_counters.get(method, {}).get("calls", 0))


def messages(client: Client) -> list[Any]:
    portal = client.stack.emu.portals[0].portal
    return sorted(
        (m for m in portal.messages.values() if m.chat_id == client.chat_id), key=lambda m: m.id
    )


def our_leads(client: Client) -> list[Any]:
    portal = client.stack.emu.portals[0].portal
    session = client.session()
    origin = f"{client.stack.member_id}:{client.chat_id}:{session.id}"
    return [
        lead
        for lead in portal.leads.values()
        if lead.fields.get("ORIGIN_ID") == origin
        and lead.fields.get("ORIGINATOR_ID") == ORIGINATOR_ID
    ]


async def ends_with_one_lead(client: Client) -> DialogState:
    st = await client.state(DialogStatus.LEAD, DialogStatus.FAILED)
    assert st.status is DialogStatus.LEAD
    assert [lead.id for lead in our_leads(client)] == [st.lead_id]
    return st

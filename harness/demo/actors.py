"""Simulated people: clients with different habits, a pool of operators, and the portal clock.

Clients talk through the emulator's control API and wait for our bot's replies the way a person
would (by reading the chat); operators take what waits in a queue, write and finish; clients rate
the dialog when the portal asks. A client that went quiet never rates: the demo moves the portal's
clock past the vote wait so the portal closes such dialogs by itself.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from harness.demo.control import ControlError, EmulatorControl, PortalView, SessionView
from harness.demo.portal_setup import (
    AFTER_HOURS_LINE,
    ASSISTANT_LINE,
    CONFIRM_YES,
    SUPPORT_LINE,
    VOTE_WAIT_S,
)

__all__ = [
    "DEMO_MIX",
    "MIX",
    "Actors",
    "ClientRun",
    "Persona",
    "client_name",
    "client_runs",
    "persona_for",
]

log = structlog.get_logger(__name__)


class Persona(StrEnum):
    """How a simulated client behaves."""

    DATA = "give contact data"
    OPERATOR = "ask for an operator at once"
    FAQ = "ask a FAQ, then for a human"
    SILENT = "fall silent"
    AFTER_HOURS = "write after hours"
    BUTTONS = "use the buttons"
    EDITOR = "correct a typo in their e-mail"
    ASSISTED = "ask the contact center's assistant"


# Out of every 10 clients (`bench e2e`: the same dialogs run after run).
MIX = (
    [Persona.DATA] * 4
    + [Persona.OPERATOR] * 2
    + [Persona.FAQ, Persona.SILENT, Persona.SILENT, Persona.AFTER_HOURS]
)
# The demo's: out of every 13, three clients of the assistant desk too (line 3: buttons, edits,
# the contact center's answerer).
DEMO_MIX = [*MIX, Persona.BUTTONS, Persona.EDITOR, Persona.ASSISTED]


# A reply is looked for every 10 ms during its first 300 ms (a light load's replies come in
# then), every `poll_s` after: fine enough to measure them, cheap at saturation.
FINE_POLL_S = 0.01
FINE_FOR_S = 0.3

_FIRST = ("Anna", "Boris", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas")
_LAST = ("Smith", "Ivanova", "Rossi", "Novak", "Keller", "Silva", "Tanaka", "Moreau")


def client_name(index: int) -> str:
    """A name the scenario's name field accepts (letters only)."""
    return f"{_FIRST[index % len(_FIRST)]} {_LAST[(index // len(_FIRST)) % len(_LAST)]}"


def persona_for(index: int, mix: list[Persona] = MIX) -> Persona:
    """The persona of the `index`-th client (a fixed mix, so runs compare)."""
    return mix[index % len(mix)]


def client_runs(count: int, mix: list[Persona] = MIX) -> list[ClientRun]:
    """`count` clients, personas mixed."""
    return [ClientRun(index, persona_for(index, mix)) for index in range(count)]


@dataclass
class ClientRun:
    """One client's dialog as the demo saw it."""

    index: int
    persona: Persona = Persona.DATA
    chat_id: int = 0
    error: str | None = None


@dataclass
class Actors:
    """Everyone the demo plays, sharing the control API, the portal view and the step timings."""

    control: EmulatorControl
    view: PortalView
    wait_s: float = 90.0  # a person gives up on a reply after this (a bound, not a target)
    poll_s: float = 0.1
    step_s: list[float] = field(default_factory=list)  # client message -> bot reply
    press_s: list[float] = field(default_factory=list)  # button press -> bot reply
    reply_at: list[float] = field(default_factory=list)  # when each of step_s came (monotonic)
    quiet: set[int] = field(default_factory=set)  # chats whose client will never vote
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    async def _until(self, what: str, check: Callable[[], bool], *, fine: bool = False) -> None:
        """Wait until `check()`; `fine`: look every FINE_POLL_S for the first FINE_FOR_S (a
        reply's latency is measured by this wait, so its resolution is the poll's)."""
        started = time.monotonic()
        deadline = started + self.wait_s
        while not check():
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"waited {self.wait_s:.0f} s for {what}")
            close = fine and now - started < FINE_FOR_S
            await asyncio.sleep(FINE_POLL_S if close else self.poll_s)

    def _session(self, chat_id: int) -> SessionView | None:
        return self.view.session(chat_id)

    # --- clients -----------------------------------------------------------------------------

    async def _say(
        self, run: ClientRun, text: str, *, line: int = SUPPORT_LINE, expect_reply: bool = True
    ) -> None:
        """Write, then (as a person would) wait until the bot answered."""
        before = len(self.view.bot_texts(run.chat_id)) if run.chat_id else 0
        sent = time.monotonic()
        if run.chat_id:
            await self.control.client_message(line, text, user_code=self._code(run))
        else:
            answer = await self.control.client_message(line, text, name=client_name(run.index))
            run.chat_id = int(answer["chat_id"])
        if expect_reply:
            await self._until(
                "the bot's reply",
                lambda: len(self.view.bot_texts(run.chat_id)) > before,
                fine=True,
            )
            replied = time.monotonic()
            self.step_s.append(replied - sent)
            self.reply_at.append(replied)

    def _code(self, run: ClientRun) -> str:
        chat = self.view.portal.get_chat(run.chat_id)
        return str(chat.entity_id)

    async def client(self, run: ClientRun) -> None:
        """Play one client from the first message to the closed session (filling in `run`)."""
        try:
            await _SCRIPTS[run.persona](self, run)
            await self._until(
                "the session to close",
                lambda: (s := self._session(run.chat_id)) is not None and s.closed,
            )
        except (TimeoutError, ControlError) as exc:
            run.error = str(exc)
            log.warning("demo_client_stuck", index=run.index, persona=run.persona, error=run.error)

    async def _give_data(self, run: ClientRun, line: int, *, confirm: bool = False) -> None:
        await self._say(run, client_name(run.index), line=line)
        await self._say(run, f"client{run.index}@example.com", line=line)
        phone = f"+1 555 01{run.index % 100:02d} {1000 + run.index}"
        await self._say(run, phone, line=line, expect_reply=confirm)

    async def _vote_when_asked(self, run: ClientRun, vote: str) -> None:
        await self._until(
            "the vote request or the close",
            lambda: (s := self._session(run.chat_id)) is not None and (s.wait_vote or s.closed),
        )
        session = self._session(run.chat_id)
        if session is not None and not session.closed:
            await self.control.client_vote(run.chat_id, vote)

    async def _data(self, run: ClientRun) -> None:
        await self._say(run, "Hi, I have a question about my order")
        await self._give_data(run, SUPPORT_LINE)
        await self._vote_when_asked(run, "like" if run.index % 3 else "dislike")

    async def _operator(self, run: ClientRun) -> None:
        await self._say(run, "I need an operator, please")
        await self._vote_when_asked(run, "like")

    async def _faq(self, run: ClientRun) -> None:
        await self._say(run, "What is the price of delivery?")
        await self._say(run, "Thanks. Can I talk to a human?", expect_reply=False)
        await self._vote_when_asked(run, "like")

    async def _silent(self, run: ClientRun) -> None:
        await self._say(run, "Hello?")
        self.quiet.add(run.chat_id)

    async def _after_hours(self, run: ClientRun) -> None:
        await self._say(run, "Hi, are you there?", line=AFTER_HOURS_LINE)
        await self._give_data(run, AFTER_HOURS_LINE)
        await self._vote_when_asked(run, "like")

    async def _press(self, run: ClientRun, label: str, *, expect_reply: bool = True) -> None:
        """Press the newest live button `label` under one of the bot's messages, once it shows;
        then wait for the bot, as a person would (its latency apart from the typed replies')."""
        message_id = 0

        def shown() -> bool:
            nonlocal message_id
            message_id = self.view.button_message(run.chat_id, label) or 0
            return bool(message_id)

        await self._until(f"the button {label!r}", shown)
        before = len(self.view.bot_texts(run.chat_id))
        pressed = time.monotonic()
        await self.control.client_press(run.chat_id, message_id, label)
        if expect_reply:
            await self._until(
                "the bot's answer to a button",
                lambda: len(self.view.bot_texts(run.chat_id)) > before,
                fine=True,
            )
            self.press_s.append(time.monotonic() - pressed)

    async def _buttons(self, run: ClientRun) -> None:
        await self._say(run, "Hello", line=ASSISTANT_LINE)
        await self._press(run, "Delivery")
        await self._give_data(run, ASSISTANT_LINE, confirm=True)
        await self._press(run, CONFIRM_YES, expect_reply=False)
        await self._vote_when_asked(run, "like")

    async def _editor(self, run: ClientRun) -> None:
        await self._say(run, "Hi, I would like to order something", line=ASSISTANT_LINE)
        await self._say(run, client_name(run.index), line=ASSISTANT_LINE)
        await self._say(run, f"client{run.index}@exmaple.com", line=ASSISTANT_LINE)
        typo = self.view.last_client_message(run.chat_id)
        phone = f"+1 555 02{run.index % 100:02d} {1000 + run.index}"
        await self._say(run, phone, line=ASSISTANT_LINE, expect_reply=False)
        await self._until(
            "the confirmation",
            lambda: self.view.button_message(run.chat_id, CONFIRM_YES) is not None,
        )
        # reading it back, the client sees the typo and corrects the message it wrote
        await self.control.client_edit(run.chat_id, typo, f"client{run.index}@example.com")
        await self._press(run, CONFIRM_YES, expect_reply=False)
        await self._vote_when_asked(run, "like")

    async def _assisted(self, run: ClientRun) -> None:
        await self._say(run, "Do you deliver to Spain?", line=ASSISTANT_LINE)
        await self._give_data(run, ASSISTANT_LINE, confirm=True)
        await self._press(run, CONFIRM_YES, expect_reply=False)
        await self._vote_when_asked(run, "dislike" if run.index % 2 else "like")

    # --- operators ---------------------------------------------------------------------------

    async def operators(self, stop: asyncio.Event, line: int = SUPPORT_LINE) -> None:
        """Take every queued dialog (one task each) until `stop` is set."""
        taken: set[int] = set()
        tasks: set[asyncio.Task[None]] = set()
        staff = self.view.operators(line)
        turn = 0
        while not stop.is_set():
            for chat_id in self.view.queued_chats():
                if chat_id not in taken:
                    taken.add(chat_id)
                    task = asyncio.create_task(self._operate(chat_id, staff[turn % len(staff)]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    turn += 1
            await asyncio.sleep(self.poll_s)
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _operate(self, chat_id: int, operator_id: int) -> None:
        try:
            await asyncio.sleep(self.rng.uniform(0.2, 0.8))  # reading the queue
            await self.control.operator_answer(chat_id, operator_id)
            await self.control.operator_message(chat_id, operator_id, "Hello! How can I help?")
            await asyncio.sleep(self.rng.uniform(0.2, 0.6))
            await self.control.operator_message(chat_id, operator_id, "Done. Anything else?")
            await self.control.operator_finish(chat_id, operator_id)
        except ControlError as exc:
            log.warning("demo_operator_failed", chat_id=chat_id, error=str(exc))

    # --- the portal's clock ------------------------------------------------------------------

    async def clock(self, stop: asyncio.Event, every_s: float = 1.0) -> None:
        """Move the portal past the vote wait when a quiet client's dialog waits for a vote."""
        while not stop.is_set():
            waiting = [
                c
                for c in list(self.quiet)
                if (s := self._session(c)) is not None and s.wait_vote and not s.closed
            ]
            if waiting:
                await self.control.advance_time(VOTE_WAIT_S + 1)
            self.quiet -= {
                c for c in self.quiet if (s := self._session(c)) is not None and s.closed
            }
            await asyncio.sleep(every_s)


_SCRIPTS: dict[Persona, Callable[[Actors, ClientRun], Awaitable[None]]] = {
    Persona.DATA: Actors._data,
    Persona.OPERATOR: Actors._operator,
    Persona.FAQ: Actors._faq,
    Persona.SILENT: Actors._silent,
    Persona.AFTER_HOURS: Actors._after_hours,
    Persona.BUTTONS: Actors._buttons,
    Persona.EDITOR: Actors._editor,
    Persona.ASSISTED: Actors._assisted,
}

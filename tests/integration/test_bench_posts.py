"""The benches' duplicate-message count: copies on the portal past the SendMessage effects our
dialogs committed. A FAQ question as the client's first message makes the machine ask the first
field's prompt, answer, and ask the prompt again, all before the client writes again: a repeat
the dialog means, which the old "same bot text twice between two messages of people" heuristic
counted as a duplicate (`orchestrator bench e2e` reported 1 so, with no fault anywhere)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from harness.bench.posts import double_posts, intended_messages, shown_messages
from orchestrator.dialog.effects import SendMessage, effect_payload, with_ids
from orchestrator.dialog.inputs import BotJoined, ClientMessage
from orchestrator.dialog.machine import DialogState, transition
from orchestrator.pipeline.keys import Keys
from orchestrator.pipeline.records import EffectRecord
from orchestrator.redis.client import aw
from tests.emulator._domain import BOT, call, make_portal
from tests.unit.machine_fixtures import scenario

MEMBER = "member-1"
FAQ_FIRST = "What is the price of delivery?"


class Chat:
    """One client's chat on an in-process emulated portal, our machine answering it and every
    effect committed to Redis the way the pipeline commits them."""

    def __init__(self, portal: Any, redis: aioredis.Redis, prefix: str, index: int) -> None:
        self.portal, self.redis = portal, redis
        opened = portal.client_message(1, FAQ_FIRST, name=f"Client {index}")
        self.chat_id, self.session_id = int(opened["chat_id"]), int(opened["session_id"])
        self.effects_key = Keys(prefix).dialog(MEMBER, str(self.chat_id)).effects
        self.state: DialogState | None = None
        self.seq = 0
        self.sent: list[SendMessage] = []  # every message the machine said, in order
        ids: dict[str, Any] = {
            "member_id": MEMBER,
            "chat_id": self.chat_id,
            "session_id": self.session_id,
            "line_id": 1,
        }
        self.first = ClientMessage(text=FAQ_FIRST, message_id=1, at=0.0, **ids)
        self.join = BotJoined(bot_id=BOT, at=0.0, **ids)

    async def step(self, inp: Any) -> list[SendMessage]:
        """Apply an input, commit its effects; its messages, for the caller to post."""
        result = transition(self.state, inp, scenario(), 0.0)
        self.state, self.seq = result.state, self.seq + 1
        effects = with_ids(list(result.effects), MEMBER, self.chat_id, self.session_id, self.seq)
        for e in effects:
            record = EffectRecord(str(e.effect_id), e.kind, effect_payload(e))
            await aw(self.redis.hset(self.effects_key, record.effect_id, record.to_json()))
        said = [e for e in effects if isinstance(e, SendMessage)]
        self.sent += said
        return said

    def post(self, effect: SendMessage) -> None:
        """What the effect runner calls for a SendMessage, against the portal."""
        if effect.via == "session":
            params = {"CHAT_ID": effect.chat_id, "MESSAGE": effect.text, "NAME": "DEFAULT"}
            call(self.portal, "imopenlines.bot.session.message.send", params)
            return
        params = {"DIALOG_ID": f"chat{effect.chat_id}", "MESSAGE": effect.text}
        if effect.via == "note":
            params["SKIP_CONNECTOR"] = "Y"
        call(self.portal, "imbot.message.add", params)


async def test_a_re_ask_the_dialog_meant_is_no_duplicate_a_second_post_is(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    """Chat A: the FAQ-first dialog posted once per effect -> no duplicate, though the prompt
    shows twice after the client's one message. Chat B: the same dialog, with the FAQ answer
    posted twice (a write whose outcome was unknown, repeated) -> exactly that copy counts."""
    portal, _ = make_portal()
    a, b = Chat(portal, redis, key_prefix, 1), Chat(portal, redis, key_prefix, 2)
    for chat in (a, b):
        for inp in (chat.join, chat.first):
            for message in await chat.step(inp):
                chat.post(message)
    said_a = [m.text for m in portal.messages.values() if m.chat_id == a.chat_id]
    prompt = scenario().collect.fields[0].prompt
    assert said_a.count(prompt) == 2  # the re-ask the scenario means

    answer = next(m for m in b.sent if "prices" in m.text)
    b.post(answer)  # the double post

    intended = await intended_messages(redis, key_prefix, MEMBER, [a.chat_id, b.chat_id])
    check = double_posts(shown_messages(portal), intended)
    assert check.duplicates == 1
    assert check.doubles == [
        {"chat_id": b.chat_id, "voice": "bot", "text": answer.text, "shown": 2, "intended": 1}
    ]
    # greeting (as the line), prompt, answer, prompt, per chat; all matched on the portal
    assert check.intended == check.shown == 8


async def test_a_repeated_line_message_counts_and_people_never_do(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    """The greeting posted as the line (a system message) twice is a duplicate; the client
    writing a text the bot also says is not."""
    portal, _ = make_portal()
    chat = Chat(portal, redis, key_prefix, 1)
    sent = await chat.step(chat.join) + await chat.step(chat.first)
    for message in sent:
        chat.post(message)
    greeting = next(m for m in sent if m.via == "session")
    chat.post(greeting)
    portal.client_message(1, sent[-1].text, user_code=portal.chats[chat.chat_id].entity_id)

    intended = await intended_messages(redis, key_prefix, MEMBER, [chat.chat_id])
    check = double_posts(shown_messages(portal), intended)
    assert [(d["voice"], d["text"]) for d in check.doubles] == [("system", greeting.text)]

"""Double posts: bot messages the portal shows more often than our dialogs meant to post them.

The dialog machine may say one text twice in answer to one client message on purpose: a FAQ
question as the client's very first message gets the first field's prompt (the greeting's), the
answer, and the prompt again. Counting repeats in the chat alone therefore counts intended
messages. What the dialogs meant is on record: every committed SendMessage effect stays in the
dialog's effects hash (see effect_runner's resend check, which relies on the same). So per chat,
voice and text

    intended  the SendMessage effects committed for the chat
    shown     the chat's messages of that text in that voice in the emulated portal
    double    shown - intended, where positive: a copy no transition asked for

Only texts some effect intended are compared: a portal notice or a message of a person is never
ours. A message the portal did not show (a session message after the session closed) only
lowers `shown`, so it can hide a double post of the same text in the same chat, never make one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from harness.bench.play import PortalPlay
from orchestrator.handler.resend import stored_sends
from orchestrator.pipeline.keys import Keys

__all__ = [
    "PostCheck",
    "Said",
    "double_posts",
    "intended_messages",
    "play_posts",
    "shown_messages",
]

Said = tuple[int, str, str]  # chat id, voice ("system" | "bot"), text


async def intended_messages(
    redis: Redis, key_prefix: str, member_id: str, chat_ids: list[int]
) -> Counter[Said]:
    """Every SendMessage effect committed for these chats (one pipelined read)."""
    keys = Keys(key_prefix)
    async with redis.pipeline(transaction=False) as pipe:
        for chat_id in chat_ids:
            pipe.hvals(keys.dialog(member_id, str(chat_id)).effects)
        found: list[list[bytes]] = await pipe.execute()
    said: Counter[Said] = Counter()
    for raws in found:
        for effect in stored_sends(raws):
            said[(effect.chat_id, effect.voice, effect.text.strip())] += 1
    return said


def shown_messages(portal: Any) -> Counter[Said]:
    """The emulated portal's messages in a voice of ours: the bot user's, and the line's own
    (author 0, system) that `imopenlines.bot.session.message.send` posts."""
    shown: Counter[Said] = Counter()
    for message in portal.messages.values():
        if message.author_id in portal.bots and not message.system:
            voice = "bot"
        elif message.author_id == 0 and message.system:
            voice = "system"
        else:
            continue
        shown[(message.chat_id, voice, str(message.text).strip())] += 1
    return shown


@dataclass
class PostCheck:
    """Our messages on the portal against our effects."""

    intended: int  # SendMessage effects committed
    shown: int  # of those, how many the portal shows (at most the intended count per text)
    doubles: list[dict[str, Any]]  # each text shown more often than meant, with both counts

    @property
    def duplicates(self) -> int:
        """Copies past the intended ones, in all."""
        return sum(d["shown"] - d["intended"] for d in self.doubles)


def double_posts(shown: Counter[Said], intended: Counter[Said]) -> PostCheck:
    """Compare what the portal shows with what our dialogs meant to post."""
    doubles = [
        {"chat_id": chat, "voice": voice, "text": text, "shown": shown[key], "intended": n}
        for key, n in sorted(intended.items())
        if shown[key] > n
        for chat, voice, text in [key]
    ]
    matched = sum(min(shown[key], n) for key, n in intended.items())
    return PostCheck(sum(intended.values()), matched, doubles)


async def play_posts(redis: Redis, key_prefix: str, play: PortalPlay) -> PostCheck:
    """The double posts of one played portal: its chats' messages against their dialogs."""
    chats = [run.chat_id for run in play.runs if run.chat_id]
    intended = await intended_messages(redis, key_prefix, play.member_id, chats)
    return double_posts(shown_messages(play.runtime.portal), intended)

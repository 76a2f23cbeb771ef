"""What the portal and the people saw: the truth every proof (demo, bench e2e, chaos) judges by.

Everything here is read from the emulated portal's own records — its append-only journal of
state changes (`GET /_emulator/journal`) and its state — and from the simulated clients; never
from our Redis. The counts:

    acknowledged        events the portal posted that our ingress answered 200 (`event_posted`),
                        and events it queued for our fetch-mode bot that the bot confirmed
                        (`event_queued` whose id an `event_confirmed` names: the portal deleted
                        it because our offset said we had it), and offline rows our consumer
                        cleared (`offline_queued` whose row an `offline_cleared` names)
    handled             acknowledged events whose effect the portal shows: the dialog they
                        belong to ended as it must (below), and an event that calls for the bot
                        to answer (its joining the chat, a client writing while the bot holds
                        the session) is followed by a message of ours, a handoff or a close
    lost                acknowledged - handled
    stuck               a session a client opened that the portal has not closed, or closed
                        without its rating (a head vote) or without a lead of ours
    duplicate leads     leads of one session beyond the first (ours by ORIGIN_ID, or the line's)
    duplicate messages  a message of ours shown again in the same chat within one turn
    contact data missing  an e-mail or phone a client wrote in a session that none of the
                        session's leads carries, as the lead stands after every
                        `crm.lead.update` (the journal's `lead_updated`); a message the
                        client edited counts with its last text, one it deleted not at all

How intent is known without our books: a turn is the span between two things people do in the
chat (a client or an operator writing, a client editing or deleting a message, a new session;
a client pressing a button of a v2 bot is an event that calls for an answer, as a message is).
In one turn the bot answers each event that calls for an answer (its joining the chat, a
client's message while it holds the session) and never says the same text twice in a row; a
re-ask of the scenario follows an answer in between ("How may I call you?", an FAQ answer,
"How may I call you?" when the client's first message was a question: the join and that
message both called for an answer). So a text of ours counts as posted twice when the turn
shows it more often than the events in that turn called for an answer (an event not answered
before the next thing people do still calls in the turn after), or twice with no other message
of ours between the copies. Blind spots: a repeat that lands after the client's next message
falls in the next turn; a repeat of a text whose copy was due anyway in a turn with two such
events, separated by another message of ours.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

__all__ = [
    "OUR_METHODS",
    "ChatTruth",
    "PortalTruth",
    "necessary_calls",
    "read_truth",
]

# The REST methods through which our bot speaks (the journal's `via` of its messages).
# (lower-case: the portal's method names are case-insensitive, and the journal keeps them so)
OUR_METHODS = frozenset(
    {"imbot.message.add", "imbot.v2.chat.message.send", "imopenlines.bot.session.message.send"}
)
# Session changes our calls cause (the journal's `reason`): a handoff to the queue, a transfer,
# the bot closing the session.
OUR_SESSION_REASONS = frozenset({"queue", "transfer", "bot_finish"})
# Events after which the bot must say or do something the portal shows.
# (A press of a v2 bot's button is its command event: it calls for an answer like a message.)
CLIENT_WRITES = frozenset({"ONIMBOTMESSAGEADD", "ONIMBOTV2MESSAGEADD", "ONIMBOTV2COMMANDADD"})
CALLS_FOR_AN_ANSWER = CLIENT_WRITES | {"ONIMBOTJOINCHAT", "ONIMBOTV2JOINCHAT"}
# A client changing what it wrote is a thing people do in the chat, as writing is.
CLIENT_CHANGES = frozenset({"message_updated", "message_deleted"})
# How an event reached us: pushed (and answered), or queued for our bot to fetch.
DELIVERED = frozenset({"event_posted", "event_queued"})
# Posts that carry no event, only "look at your queues" (the queues keep what it was about).
HINTS = frozenset({"ONOFFLINEEVENT"})
CLOSED = 60  # a session's status once it is really closed (docs/bitrix24.md §4.4)
# A client message that is one e-mail address, or one phone number (7+ digits, with the usual
# + ( ) - . and spaces): contact data the session's lead must carry. Deliberately not the bot's
# own parsing: the judge reads what people wrote, as people would.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?[\d\s().-]{7,}")


def _via(entry: dict[str, Any]) -> str:
    """The REST method a journal entry was made by, lower-case ("" for people and timers)."""
    return str(entry.get("via") or "").lower()


@dataclass
class ChatTruth:
    """One chat as the portal recorded it."""

    chat_id: int
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sessions(self) -> dict[int, dict[str, Any]]:
        """session id -> its last `session` entry."""
        found: dict[int, dict[str, Any]] = {}
        for e in self.entries:
            if e["kind"] == "session":
                found[int(e["session_id"])] = e
        return found

    def ours(self) -> list[dict[str, Any]]:
        """The messages our bot posted to the client, in order."""
        return [
            e
            for e in self.entries
            if e["kind"] == "message" and _via(e) in OUR_METHODS and e.get("to_client", True)
        ]

    def duplicates(self) -> list[tuple[str, int]]:
        """(text, extra copies) of our messages posted twice within a turn (module docstring)."""
        found: list[tuple[str, int]] = []
        said: list[str] = []  # our texts in this turn, in order
        calls = 0  # events in this turn that called for an answer

        def close_turn() -> None:
            nonlocal calls
            repeats = Counter(a for a, b in pairwise(said) if a == b)
            for text, copies in Counter(said).items():
                extra = max(copies - max(calls, 1), repeats[text])
                if extra > 0:
                    found.append((text, extra))
            # answers still owed carry into the next turn: a join the portal queued for our bot
            # just before the client's first message is answered after it
            calls = 0 if said else calls
            said.clear()

        for e in self.entries:
            person = (e["kind"] == "message" and e.get("author") in ("client", "operator")) or (
                e["kind"] in CLIENT_CHANGES and _via(e) == "client"
            )
            new_session = e["kind"] == "session" and e.get("reason") == "start"
            if person or new_session:
                close_turn()
            elif e["kind"] in DELIVERED and e.get("name") in CALLS_FOR_AN_ANSWER:
                calls += 1
            elif e["kind"] == "message" and _via(e) in OUR_METHODS and e.get("to_client", True):
                said.append(str(e.get("text", "")).strip())
        close_turn()
        return found

    def session_at(self, seq: int) -> dict[str, Any] | None:
        """The chat's session as it stood at journal entry `seq` (its last change before it)."""
        found = None
        for e in self.entries:
            if e["seq"] > seq:
                break
            if e["kind"] == "session":
                found = e
        return found

    def answered_after(self, seq: int) -> bool:
        """Whether a message of ours, or a handoff, transfer or close by the bot, came after `seq`
        (the portal closing the session on its own answers nothing)."""
        return any(
            e["seq"] > seq
            and (
                (e["kind"] == "message" and _via(e) in OUR_METHODS)
                or (e["kind"] == "session" and e.get("reason") in OUR_SESSION_REASONS)
            )
            for e in self.entries
        )


@dataclass
class PortalTruth:
    """One portal's journal, split by chat, and what it says about our run."""

    member_id: str
    journal: list[dict[str, Any]]
    chats: dict[int, ChatTruth] = field(default_factory=dict)
    # lead ids by the ORIGIN_ID they carry and by the (chat, session) they were made or bound
    # for: read once, so judging a run stays linear in its journal
    _by_origin: defaultdict[str, set[int]] = field(init=False, repr=False)
    _by_session: defaultdict[tuple[int, int], set[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_chat: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
        self._by_origin, self._by_session = defaultdict(set), defaultdict(set)
        self._lead_fields: dict[int, dict[str, Any]] = {}
        for e in self.journal:
            if e.get("chat_id"):
                by_chat[int(e["chat_id"])].append(e)
            if e["kind"] in ("lead_created", "lead_updated"):
                lead = self._lead_fields.setdefault(int(e["lead_id"]), {})
                lead.update(e.get("fields") or {})
            if e["kind"] == "lead_created":
                origin = str((e.get("fields") or {}).get("ORIGIN_ID", ""))
                self._by_origin[origin].add(int(e["lead_id"]))
                self._by_session[_chat_session(e)].add(int(e["lead_id"]))
            elif e["kind"] == "crm_binding":
                self._by_session[_chat_session(e)].add(int(e["entity_id"]))
        self.chats = {c: ChatTruth(c, es) for c, es in by_chat.items()}

    def acknowledged(self) -> list[dict[str, Any]]:
        """The events our ingress answered 200, the bot's log rows our fetcher confirmed, and the
        offline rows our consumer took off the portal's queue (a retention purge took nothing)."""
        confirmed = {int(e["event_id"]) for e in self.journal if e["kind"] == "event_confirmed"}
        taken = {
            int(row)
            for e in self.journal
            if e["kind"] == "offline_cleared" and e.get("reason") != "purge"
            for row in e.get("row_ids") or ()
        }
        return [
            e
            for e in self.journal
            if (e["kind"] == "event_posted" and e.get("ok") and e.get("name") not in HINTS)
            or (e["kind"] == "event_queued" and int(e["event_id"]) in confirmed)
            or (e["kind"] == "offline_queued" and int(e["row_id"]) in taken)
        ]

    def refused(self) -> int:
        """Deliveries our ingress did not acknowledge (lost by the portal's rules: no retry); a
        refused hint loses nothing (what it was about waits in the portal's queues)."""
        return sum(
            1
            for e in self.journal
            if e["kind"] == "event_posted" and not e.get("ok") and e.get("name") not in HINTS
        )

    def stuck(self, chat_ids: Iterable[int]) -> list[str]:
        """Why each of these chats' last session did not end as it must."""
        problems = []
        for chat_id in chat_ids:
            chat = self.chats.get(chat_id)
            if chat is None or not chat.sessions:
                problems.append(f"chat {chat_id}: the portal has no session")
                continue
            problems += self.ended_well(chat, max(chat.sessions))
        return problems

    def leads(self, chat_id: int, session_id: int) -> set[int]:
        """Leads of a session: ours (ORIGIN_ID names it, wherever it was created) and the lead
        bound to the chat for it (the line's own, or ours through the Open Lines method)."""
        origin = f"{self.member_id}:{chat_id}:{session_id}"
        return self._by_origin.get(origin, set()) | self._by_session.get(
            (chat_id, session_id), set()
        )

    def ended_well(self, chat: ChatTruth, session_id: int) -> list[str]:
        """Why the session did not end as it must (closed, rated, a lead); none when it did."""
        problems = []
        session = chat.sessions.get(session_id)
        if session is None or not (session.get("closed") or session.get("status") == CLOSED):
            problems.append(f"chat {chat.chat_id}: session {session_id} not closed on the portal")
        votes = [
            e for e in chat.entries if e["kind"] == "head_vote" and e["session_id"] == session_id
        ]
        if not votes or not 1 <= int(votes[-1].get("rating") or 0) <= 5:
            problems.append(f"chat {chat.chat_id}: session {session_id} has no rating")
        if not self.leads(chat.chat_id, session_id):
            problems.append(f"chat {chat.chat_id}: session {session_id} has no lead")
        return problems

    def contact_data_missing(self, chat_ids: Iterable[int]) -> list[str]:
        """Each e-mail or phone a client of these chats wrote that its session's leads lack."""
        problems = []
        for chat_id in chat_ids:
            chat = self.chats.get(chat_id)
            if chat is None:
                continue
            for e in _as_finally_written(chat.entries):
                text = str(e.get("text", "")).strip()
                kind = "EMAIL" if _EMAIL.fullmatch(text) else "PHONE" if _is_phone(text) else ""
                if not kind:
                    continue
                at = chat.session_at(e["seq"]) or {}
                session = int(e.get("session_id") or at.get("session_id") or 0)
                if _contact(kind, text) not in self._contacts(chat_id, session, kind):
                    problems.append(f"chat {chat_id}: session {session}'s lead lacks {text!r}")
        return problems

    def _contacts(self, chat_id: int, session_id: int, kind: str) -> set[str]:
        """The e-mails or phones (as compared) the session's leads carry now."""
        return {
            _contact(kind, value.get("VALUE"))
            for lead in self.leads(chat_id, session_id)
            for value in self._lead_fields.get(lead, {}).get(kind) or []
            if isinstance(value, dict)
        }

    def bots(self) -> set[int]:
        """User ids of the bots registered on the portal (ours among them)."""
        return {int(e["bot_id"]) for e in self.journal if e["kind"] == "bot_registered"}

    def lost(self) -> list[dict[str, Any]]:
        """Acknowledged events whose effect the portal does not show (module docstring)."""
        bots, lost = self.bots(), []
        for event in self.acknowledged():
            chat = self.chats.get(int(event.get("chat_id") or 0))
            if chat is None:
                continue  # portal-level (install, bot delete): no dialog has to show anything
            session = chat.session_at(int(event["seq"])) or {}
            # a client writing while an operator holds the session asks nothing of the bot
            asks = event.get("name") in CALLS_FOR_AN_ANSWER and (
                event.get("name") not in CLIENT_WRITES or session.get("operator_id") in bots
            )
            if (
                not session
                or self.ended_well(chat, int(session["session_id"]))
                or (asks and not chat.answered_after(int(event["seq"])))
            ):
                lost.append(event)
        return lost

    def duplicate_messages(self) -> list[str]:
        """Each repeat of ours within a turn, as `chat: text (xN)`."""
        return [
            f"chat {chat.chat_id}: {text[:60]!r} (+{n})"
            for chat in self.chats.values()
            for text, n in chat.duplicates()
        ]

    def duplicate_leads(self) -> int:
        """Leads beyond the first, per session."""
        return sum(
            max(0, len(self.leads(chat.chat_id, s)) - 1)
            for chat in self.chats.values()
            for s in chat.sessions
        )


def _is_phone(text: str) -> bool:
    return bool(_PHONE.fullmatch(text)) and sum(c.isdigit() for c in text) >= 7


def _as_finally_written(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The client's messages as the chat shows them at the end: an edit's text in place of the
    first (`message_updated`), a deleted one left out (`message_deleted`)."""
    messages: dict[int, dict[str, Any]] = {}
    for n, e in enumerate(entries):
        if e["kind"] not in ("message", *CLIENT_CHANGES):
            continue  # (offline rows, say, have a message id of their own kind)
        mid = int(e.get("message_id") or -1 - n)  # (an entry without an id stands alone)
        if e["kind"] == "message" and e.get("author") == "client":
            messages[mid] = dict(e)
        elif e["kind"] == "message_updated" and mid in messages:
            messages[mid]["text"] = e.get("text", "")
        elif e["kind"] == "message_deleted":
            messages.pop(mid, None)
    return list(messages.values())


def _contact(kind: str, value: object) -> str:
    """An e-mail or phone as compared: e-mails ignore case, phones keep + and digits."""
    text = str(value or "").strip()
    return (
        text.casefold() if kind == "EMAIL" else "".join(c for c in text if c.isdigit() or c == "+")
    )


def _chat_session(entry: dict[str, Any]) -> tuple[int, int]:
    """The (chat, session) a journal entry names; 0 for what it leaves out."""
    return int(entry.get("chat_id") or 0), int(entry.get("session_id") or 0)


def necessary_calls(truth: PortalTruth) -> dict[str, int]:
    """The REST calls the dialogs needed at the least, from what the portal shows: one per
    message of ours the client saw, per handoff, transfer and close by the bot, per rating and
    per lead; and one read per closed session, of its history (the client's vote on a session
    the bot closed is found nowhere else: the portal sends no event for it)."""
    counts: Counter[str] = Counter()
    for e in truth.journal:
        kind = e["kind"]
        if kind == "message" and _via(e) in OUR_METHODS and e.get("to_client", True):
            counts["messages"] += 1
        elif kind == "session" and e.get("reason") in OUR_SESSION_REASONS:
            counts[f"session_{e['reason']}"] += 1
        elif kind == "head_vote":
            counts["ratings"] += 1
        elif kind == "lead_created" and e.get("via") != "line":
            counts["leads"] += 1
    closed = sum(
        1 for chat in truth.chats.values() for s in chat.sessions.values() if s.get("closed")
    )
    counts["read: imopenlines.session.history.get (the client's vote)"] = closed
    return dict(counts)


async def read_truth(control: Any) -> PortalTruth:
    """The journal of the portal `control` (an EmulatorControl) talks to."""
    entries: list[dict[str, Any]] = []
    since = 0
    while True:
        page = await control.journal(since)
        entries += page["entries"]
        if not page["entries"] or page["next"] <= since:
            break
        since = page["next"]
    state = await control.state()
    return PortalTruth(str(state["member_id"]), entries)

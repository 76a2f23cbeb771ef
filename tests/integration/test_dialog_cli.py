"""`orchestrator dialogs ...` against the emulated portal over its inbound webhook (the admin).

Each test parses a real argv with the CLI's parser and runs the command in-process; the
portal's own state is the proof, and each refused call prints its error code and exits 1.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from orchestrator.cli import build_parser, main
from orchestrator.cli.dialogs import run_dialogs
from orchestrator.settings import Settings


@pytest.fixture
def cli_settings(settings: Settings, emulator: Any) -> Settings:
    """Settings whose default portal is the emulator's webhook portal."""
    return settings.model_copy(update={"b24_webhook_url": emulator.credentials["webhook_url"]})


class Cli:
    """Runs `orchestrator dialogs ...` in-process and captures what it printed."""

    def __init__(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        self.settings = settings
        self.capsys = capsys

    async def __call__(self, *argv: str) -> tuple[int, Any, str]:
        """Exit code, the parsed JSON on stdout (None when empty) and stderr."""
        self.capsys.readouterr()
        code = await run_dialogs(build_parser().parse_args(["dialogs", *argv]), self.settings)
        out, err = self.capsys.readouterr()
        return code, json.loads(out) if out.strip() else None, err


@pytest.fixture
def cli(cli_settings: Settings, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(cli_settings, capsys)


@pytest.fixture
def portal(emulator: Any) -> Any:
    return emulator.portals[0].portal


@pytest.fixture
def chat(portal: Any) -> dict[str, Any]:
    """A client's dialog on line 1 (the welcome bot holds it)."""
    result: dict[str, Any] = portal.client_message(1, "Hello, I need help", name="Ann")
    return result


def _admin(portal: Any) -> int:
    return int(portal.admin_user_id)


def _operator(portal: Any) -> int:
    return int(next(iter(portal.lines[1].queue)))


def _session(portal: Any, chat_id: int) -> Any:
    return portal.latest_session(portal.get_chat(chat_id))


def _refused(result: tuple[int, Any, str], code: str) -> None:
    exit_code, out, err = result
    assert exit_code == 1
    assert out is None
    assert err.startswith(f"error: {code} (")
    assert len(err.strip().splitlines()) == 1


async def test_open_returns_the_chat_of_a_user_code(cli: Cli, chat: dict[str, Any]) -> None:
    """`dialogs open USER_CODE` prints the LINES chat id of that client."""
    code, out, _ = await cli("open", chat["user_code"])
    assert code == 0
    assert out["chat_id"] == chat["chat_id"]
    _refused(await cli("open", "livechat|1|999|999"), "ACCESS_DENIED")


async def test_get_finds_the_chat_by_each_handle(
    cli: Cli, chat: dict[str, Any], portal: Any
) -> None:
    """`dialogs get` by chat id, dialog id, session id and user code names the same chat."""
    chat_id = chat["chat_id"]
    for flag, value in (
        ("--chat-id", str(chat_id)),
        ("--dialog-id", f"chat{chat_id}"),
        ("--session-id", str(chat["session_id"])),
        ("--user-code", chat["user_code"]),
    ):
        code, out, _ = await cli("get", flag, value)
        assert (code, out["id"]) == (0, chat_id), flag
        assert out["entity_type"] == "LINES"
    _refused(await cli("get", "--chat-id", "999999"), "ACCESS_ERROR")


async def test_history_prints_the_transcript_as_json_or_a_table(
    cli: Cli, chat: dict[str, Any]
) -> None:
    """`dialogs history` gives the session's messages; --table renders them for a person."""
    code, out, _ = await cli("history", "--session-id", str(chat["session_id"]))
    assert code == 0
    assert out["session_id"] == chat["session_id"]
    assert "Hello, I need help" in [m["text"] for m in out["message"].values()]
    cli.capsys.readouterr()
    args = build_parser().parse_args(
        ["dialogs", "history", "--chat-id", str(chat["chat_id"]), "--table"]
    )
    assert await run_dialogs(args, cli.settings) == 0
    assert "Hello, I need help" in cli.capsys.readouterr().out
    _refused(await cli("history", "--chat-id", "999999"), "INVALID_SESSION_ID")


async def test_start_joins_the_open_session(cli: Cli, chat: dict[str, Any], portal: Any) -> None:
    """`dialogs start` on a chat with an open session makes the caller a member of it."""
    code, out, _ = await cli("start", str(chat["chat_id"]))
    assert (code, out) == (0, True)
    assert _admin(portal) in portal.get_chat(chat["chat_id"]).members
    _refused(await cli("start", "0"), "CHAT_ID")


async def test_restart_from_closes_the_session_and_opens_one_from_the_message(
    cli: Cli, chat: dict[str, Any], portal: Any
) -> None:
    """`dialogs restart-from CHAT MESSAGE` closes the session and starts a child of it."""
    code, out, _ = await cli("restart-from", str(chat["chat_id"]), str(chat["message_id"]))
    assert (code, out) == (0, True)
    assert portal.sessions[chat["session_id"]].closed
    new = _session(portal, chat["chat_id"])
    assert new.id != chat["session_id"]
    assert new.parent_id == chat["session_id"]
    assert new.operator_id == _admin(portal)
    _refused(await cli("restart-from", "0", "1"), "CHAT_ID")


async def test_join_adds_the_caller_to_the_chat(
    cli: Cli, chat: dict[str, Any], portal: Any
) -> None:
    """`dialogs join` makes the caller a member; the operator stays who it was."""
    before = _session(portal, chat["chat_id"]).operator_id
    code, out, _ = await cli("join", str(chat["chat_id"]))
    assert (code, out) == (0, True)
    assert _admin(portal) in portal.get_chat(chat["chat_id"]).members
    assert _session(portal, chat["chat_id"]).operator_id == before
    _refused(await cli("join", "0"), "CHAT_ID")


async def test_intercept_takes_the_dialog_from_its_operator(
    cli: Cli, chat: dict[str, Any], portal: Any
) -> None:
    """`dialogs intercept` makes the caller the session's operator."""
    portal.operator_answer(chat["chat_id"], _operator(portal))
    code, out, _ = await cli("intercept", str(chat["chat_id"]))
    assert (code, out) == (0, True)
    assert _session(portal, chat["chat_id"]).operator_id == _admin(portal)
    _refused(await cli("intercept", "0"), "CHAT_ID_EMPTY")


async def _admin_operates(cli: Cli, chat: dict[str, Any], portal: Any) -> None:
    portal.operator_answer(chat["chat_id"], _operator(portal))
    assert (await cli("intercept", str(chat["chat_id"])))[0] == 0


async def test_pin_and_unpin_the_dialog(cli: Cli, chat: dict[str, Any], portal: Any) -> None:
    """`dialogs pin` pins the caller's dialog, `--off` unpins it; another operator's dialog
    is refused with the portal's empty error code."""
    await _admin_operates(cli, chat, portal)
    chat_id = str(chat["chat_id"])
    assert (await cli("pin", chat_id))[:2] == (0, True)
    assert _session(portal, chat["chat_id"]).pause
    assert (await cli("pin", chat_id, "--off"))[:2] == (0, True)
    assert not _session(portal, chat["chat_id"]).pause
    other = portal.client_message(1, "Another question", name="Bob")
    portal.operator_answer(other["chat_id"], _operator(portal))
    _refused(await cli("pin", str(other["chat_id"])), "<empty code>")


async def test_pin_all_and_unpin_all_list_the_sessions_changed(
    cli: Cli, chat: dict[str, Any], portal: Any
) -> None:
    """`dialogs pin-all` / `unpin-all` print the ids of the caller's sessions they changed."""
    await _admin_operates(cli, chat, portal)
    assert (await cli("pin-all"))[:2] == (0, [chat["session_id"]])
    assert _session(portal, chat["chat_id"]).pause
    assert (await cli("pin-all"))[:2] == (0, [])
    assert (await cli("unpin-all"))[:2] == (0, [chat["session_id"]])
    assert not _session(portal, chat["chat_id"]).pause


async def test_silent_turns_whisper_mode_on_and_off(
    cli: Cli, chat: dict[str, Any], portal: Any
) -> None:
    """`dialogs silent --on/--off` sets the chat's whisper flag (ENTITY_DATA_3)."""
    chat_id = str(chat["chat_id"])
    assert (await cli("silent", chat_id, "--on"))[:2] == (0, True)
    assert portal.get_chat(chat["chat_id"]).entity_data_3 == "Y"
    assert (await cli("silent", chat_id, "--off"))[:2] == (0, True)
    assert portal.get_chat(chat["chat_id"]).entity_data_3 == ""
    _refused(await cli("silent", "0", "--on"), "CHAT_ID")


async def test_vote_saves_rating_and_comment_together(
    cli: Cli, chat: dict[str, Any], portal: Any
) -> None:
    """`dialogs vote` stores the head rating and the comment; a later vote keeps both current."""
    session_id = str(chat["session_id"])
    assert (await cli("vote", session_id, "--rating", "4", "--comment", "Good"))[:2] == (0, True)
    session = portal.sessions[chat["session_id"]]
    assert (session.vote_head, session.comment_head) == (4, "Good")
    assert (await cli("vote", session_id, "--rating", "2", "--comment", "Slow"))[0] == 0
    assert (session.vote_head, session.comment_head) == (2, "Slow")
    _refused(await cli("vote", "999999", "--rating", "5", "--comment", "x"), "ACCESS_DENIED")


def test_vote_requires_both_rating_and_comment() -> None:
    """A rating alone would wipe the stored comment, so the parser refuses it."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dialogs", "vote", "1", "--rating", "5"])


async def test_lead_creates_a_crm_lead_from_the_chat(
    cli: Cli, chat: dict[str, Any], portal: Any
) -> None:
    """`dialogs lead` by the session's operator creates one lead bound to the chat; by anyone
    else it is ERROR_USER_NOT_OPERATOR."""
    _refused(await cli("lead", str(chat["chat_id"])), "ERROR_USER_NOT_OPERATOR")
    await _admin_operates(cli, chat, portal)
    assert (await cli("lead", str(chat["chat_id"])))[:2] == (0, True)
    bound = portal.get_chat(chat["chat_id"])
    assert bound.crm_entity_type == "LEAD"
    assert bound.crm_entity_id in portal.leads


async def test_member_id_selects_the_portal(cli: Cli, chat: dict[str, Any]) -> None:
    """`--member-id` before or after the action picks the portal; an unknown one is refused."""
    code, out, _ = await cli("--member-id", "webhook", "get", "--chat-id", str(chat["chat_id"]))
    assert (code, out["id"]) == (0, chat["chat_id"])
    code, out, err = await cli("get", "--chat-id", str(chat["chat_id"]), "--member-id", "nope")
    assert code != 0
    assert out is None
    assert "nope" in err


async def test_main_runs_the_command_from_the_environment(
    emulator: Any,
    chat: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`orchestrator dialogs get` through `main(argv)`: settings from the environment and an
    embedded Redis of its own when REDIS_URL is unset."""
    monkeypatch.setenv("B24_WEBHOOK_URL", emulator.credentials["webhook_url"])
    monkeypatch.setenv("B24_MEMBER_ID", emulator.credentials["member_id"])
    monkeypatch.delenv("REDIS_URL", raising=False)
    # main() runs its own event loop: a thread keeps this test's loop serving the emulator
    code = await asyncio.to_thread(main, ["dialogs", "get", "--chat-id", str(chat["chat_id"])])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["id"] == chat["chat_id"]


@pytest.mark.parametrize(("vote", "value"), [("like", "5"), ("dislike", "1")])
async def test_history_shows_the_clients_vote_in_the_close_message(
    cli: Cli, chat: dict[str, Any], portal: Any, vote: str, value: str
) -> None:
    """The client's like/dislike is visible over REST only as the close message's params
    (IMOL_VOTE_SID, IMOL_VOTE_USER), which is where the evaluation reads it."""
    portal.operator_answer(chat["chat_id"], _operator(portal))
    portal.operator_finish(chat["chat_id"], _operator(portal))
    portal.client_vote(chat["chat_id"], vote)
    assert portal.sessions[chat["session_id"]].closed
    code, out, _ = await cli("history", "--session-id", str(chat["session_id"]))
    assert code == 0
    last = max(out["message"].values(), key=lambda m: m["id"])
    assert last["params"]["IMOL_VOTE_SID"] == chat["session_id"]
    assert str(last["params"]["IMOL_VOTE_USER"]) == value
    assert "vote" not in {k.lower() for k in out}  # no VOTE field of its own

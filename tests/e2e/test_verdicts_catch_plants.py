"""The verdicts are not self-graded: a duplicate the portal's records show fails the run.

After a small, otherwise clean run has drained, a second copy of one of our bot's messages is
planted into a chat through the emulator's control API (`POST /_emulator/journal/plant`), as if
the portal had shown it twice. `orchestrator chaos` and `orchestrator bench e2e`, run as their
commands run (`run_cli`: the table, the JSON, the exit code), must then exit non-zero, and their
reports must name that invariant, and only it, as the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.bench.e2e import E2EOptions
from harness.bench.e2e import run_cli as bench_e2e
from harness.bench.play import PortalPlay
from harness.chaos.run import ChaosOptions
from harness.chaos.run import run_cli as chaos
from harness.truth import ChatTruth, read_truth

PLANTED_REASON = "duplicate_messages = 1: messages of ours the portal shows twice"


@pytest.fixture(autouse=True)
def _keep_the_suites_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run_cli` sets up logging as the command does (WARNING, loggers cached on first use);
    in-process that would stay for the rest of the suite and hide the records later tests
    capture, so the commands keep the suite's logging here."""
    monkeypatch.setattr("harness.chaos.run.configure_logging", lambda *_: None)
    monkeypatch.setattr("harness.bench.e2e.configure_logging", lambda *_: None)


def _said_last(chat: ChatTruth) -> dict[str, Any] | None:
    """The chat's last message of ours when nobody spoke and no session began after it: a copy
    planted now lands in the same turn, right after it (harness/truth.py's turn rule)."""
    turn_began = max(
        (
            e["seq"]
            for e in chat.entries
            if (e["kind"] == "message" and e.get("author") in ("client", "operator"))
            or (e["kind"] == "session" and e.get("reason") == "start")
        ),
        default=0,
    )
    ours = [e for e in chat.ours() if e["seq"] > turn_began]
    return ours[-1] if ours else None


async def plant_a_duplicate(plays: Sequence[PortalPlay]) -> None:
    """Show a message our bot sent a second time, as if a retry had posted it again."""
    play = plays[0]
    truth = await read_truth(play.control)
    chats = [truth.chats[r.chat_id] for r in play.runs if r.chat_id in truth.chats]
    chat, last = next((c, m) for c in chats if (m := _said_last(c)) is not None)
    await play.control.plant(
        {
            "kind": "message",
            "chat_id": chat.chat_id,
            "text": last["text"],
            "author": last["author"],
            "author_id": last["author_id"],
            "via": last["via"],
            "to_client": True,
        }
    )


def test_chaos_exits_non_zero_naming_a_planted_duplicate_message(tmp_path: Path) -> None:
    """A short chaos run (Redis and an ingress still SIGKILLed once; no REST faults, so the
    only thing wrong is what we plant) fails with the planted duplicate as its one reason."""
    output = tmp_path / "chaos.json"
    opts = ChaosOptions(
        dialogs=8,
        portals=1,
        workers=1,
        kill_every_s=600.0,  # no worker kills: this run proves the verdict, not the recovery
        faults=False,
        arrivals_per_s=4.0,
        drain_s=30.0,
        timeout_s=75.0,
        output=str(output),
        tamper=plant_a_duplicate,
    )
    assert chaos(opts) == 1
    report = json.loads(output.read_text())
    assert (report["verdict"], report["reasons"]) == ("fail", [PLANTED_REASON])
    assert report["duplicate_messages"] == 1
    assert report["problem_examples"]["duplicate_messages"]


def test_bench_e2e_exits_non_zero_naming_a_planted_duplicate_message(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same plant after a small `bench e2e` run: exit 1, `bench-e2e.json` says why."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    output = tmp_path / "bench-e2e.json"
    opts = E2EOptions(
        dialogs=8,
        workers=1,
        arrivals_per_s=8.0,
        timeout_s=60.0,
        output=str(output),
        chart=str(tmp_path / "bench-e2e.png"),
        tamper=plant_a_duplicate,
        idle_s=1.0,
    )
    assert bench_e2e(opts) == 1
    report = json.loads(output.read_text())
    assert (report["verdict"], report["reasons"]) == ("fail", [PLANTED_REASON])
    assert report["duplicate_messages"] == 1

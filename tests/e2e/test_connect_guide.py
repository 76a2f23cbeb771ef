"""docs/connect.md, followed literally: its walk-throughs against the emulator, run as written.

Each shell block of the guide that belongs to a walk-through carries an HTML comment just above
it, invisible on the rendered page:

    <!-- walk: webhook oauth | source -->   definitions every later block of the walk starts with
    <!-- walk: webhook | start -->          a long-running command (a terminal of its own)
    <!-- walk: webhook | run | replied -->  a command that must succeed; then wait, as the reader
                                            would, until the condition shows on the portal

Conditions, read off the emulated portal's own journal (never our Redis): `replied` (a new
message of the bot in the client's chat), `queued` (the bot handed the session to the line's
queue), `vote-asked`, `closed` and `lead` (the session's lead carries the e-mail and phone the
client wrote, and the session has its rating).

What the test changes, and only that: the guide's ports 8090 (the emulator) and 8080 (the
ingress) become free ones, and REDIS_URL/KEY_PREFIX point at the test's Redis — so a walk runs
beside anything else on the machine. Every process a walk starts is stopped at its end.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "connect.md"
WALKS = ("webhook", "oauth")
_MARK = re.compile(
    r"<!-- walk: ([\w ]+?) \| (source|start|run)(?: \| ([\w-]+))? -->\s*```sh\n(.*?)```", re.S
)
CONDITION_BOUND_S = 60.0  # a liveness bound for each wait, not a speed check
EMAIL = re.compile(r"[^@\s\"]+@[^@\s\"]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"\+?[\d\s()-]{7,20}")


@dataclass(frozen=True)
class Step:
    walks: tuple[str, ...]
    kind: str
    until: str | None
    script: str


def guide_steps(text: str) -> list[Step]:
    """The marked blocks of the guide, in order."""
    return [
        Step(tuple(m.group(1).split()), m.group(2), m.group(3), m.group(4))
        for m in _MARK.finditer(text)
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Walk:
    """One walk-through: its shell blocks run in order, its background processes kept."""

    def __init__(self, name: str, cwd: Path, redis_url: str, key_prefix: str) -> None:
        self.name, self.cwd = name, cwd
        self.ports = {"8090": str(_free_port()), "8080": str(_free_port())}
        self.emulator = f"http://127.0.0.1:{self.ports['8090']}"
        self.prelude: list[str] = []
        # the test's Redis, keys and queue, after the guide's own settings (sourced first): a
        # walk's workers must never take another test's jobs from a shared queue
        self.queue = f"{key_prefix}:queue"
        self.overrides = (
            f"export REDIS_URL={shlex.quote(redis_url)} KEY_PREFIX={key_prefix} "
            f"QUEUE_NAME={self.queue}\n"
        )
        self.started: list[subprocess.Popen[bytes]] = []
        self.env = {k: v for k, v in os.environ.items() if not _ours(k)}
        self.env["PATH"] = f"{Path(sys.executable).parent}:{self.env.get('PATH', '')}"

    def local(self, script: str) -> str:
        for guide_port, ours in self.ports.items():
            script = re.sub(rf"\b{guide_port}\b", ours, script)
        return script

    def _script(self, block: str) -> str:
        return "set -e\n" + "".join(self.prelude) + self.overrides + self.local(block)

    def source(self, block: str) -> None:
        self.run(block)  # a definition that fails is a broken step too
        self.prelude.append(self.local(block) + "\n")

    def start(self, block: str, index: int) -> None:
        with open(self.cwd / f"{self.name}-{index}.log", "wb") as log:  # the child keeps its copy
            proc = subprocess.Popen(
                ["bash", "-c", self._script(block)],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(proc)

    def run(self, block: str) -> str:
        result = subprocess.run(
            ["bash", "-c", self._script(block)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert result.returncode == 0, f"step failed:\n{block}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def stop(self) -> None:
        """SIGTERM every process group the walk started, and wait until each is gone (the shell
        goes at once; `serve` and its workers take their shutdown grace), SIGKILL past a bound."""
        for proc in self.started:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.started:
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(5)

    # --- the portal's side ------------------------------------------------------------------

    def journal(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.emulator}/_emulator/journal", timeout=5) as answer:
            entries: list[dict[str, Any]] = json.load(answer)["entries"]
        return entries

    def wait_until_up(self) -> None:
        self.wait_for(lambda: _answers(f"{self.emulator}/_emulator/counters"), "the emulator")

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + CONDITION_BOUND_S
        while not check():
            assert time.monotonic() < deadline, f"{self.name}: {what} not seen"
            for proc in self.started:
                assert proc.poll() is None, f"{self.name}: a started process ended: {proc.args}"
            time.sleep(0.2)

    def holds(self, until: str, bot_before: int) -> bool:
        if until == "listening":
            return _answers(f"http://127.0.0.1:{self.ports['8080']}/readyz")
        journal = self.journal()
        if until == "installed":
            return any(
                e["kind"] == "event_posted" and e.get("name") == "ONAPPINSTALL" and e.get("ok")
                for e in journal
            )
        return _holds(until, journal, bot_before)


def _drop_queue(redis_url: str, queue: str) -> None:
    """arq's job records live outside our key prefix: delete those of the walk's queue."""
    client = redis.Redis.from_url(redis_url)
    try:
        job_ids = client.zrange(queue, 0, -1)
        if job_ids:
            client.delete(*(b"arq:job:" + j for j in job_ids))
        client.delete(queue)
    finally:
        client.close()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _ours(name: str) -> bool:
    return name.startswith(("B24_", "REDIS_", "INGRESS_", "WORKER_", "SCENARIO_", "EMULATOR_")) or (
        name in ("KEY_PREFIX", "QUEUE_NAME", "SPOOL_DIR", "RECONCILE_INTERVAL_S")
    )


def _bot_messages(journal: list[dict[str, Any]]) -> int:
    return sum(1 for e in journal if e["kind"] == "message" and e.get("author") == "bot")


def _last_session(journal: list[dict[str, Any]]) -> dict[str, Any]:
    return next((e for e in reversed(journal) if e["kind"] == "session"), {})


def _lead_contacts(journal: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each lead's fields as the portal holds them after every update."""
    leads: dict[int, dict[str, Any]] = {}
    for e in journal:
        if e["kind"] in ("lead_created", "lead_updated"):
            leads.setdefault(int(e["lead_id"]), {}).update(e.get("fields") or {})
    return leads


def _holds(until: str, journal: list[dict[str, Any]], bot_before: int) -> bool:
    session = _last_session(journal)
    if until == "replied":
        return _bot_messages(journal) > bot_before
    if until == "queued":
        return session.get("reason") == "queue"
    if until == "vote-asked":
        return session.get("status") == 50
    if until == "closed":
        return bool(session.get("closed"))
    if until == "lead":
        rated = any(e["kind"] == "head_vote" for e in journal)
        return rated and any(
            _carries_client_data(f, journal) for f in _lead_contacts(journal).values()
        )
    raise AssertionError(f"the guide names an unknown condition {until!r}")


def _client_wrote(journal: list[dict[str, Any]]) -> list[str]:
    return [
        str(e["text"]) for e in journal if e["kind"] == "message" and e.get("author") == "client"
    ]


def _carries_client_data(fields: dict[str, Any], journal: list[dict[str, Any]]) -> bool:
    """The lead holds the e-mail and the phone the client wrote (as written)."""
    wrote = _client_wrote(journal)
    email = next(t for t in wrote if EMAIL.fullmatch(t))
    phone = next(t for t in wrote if PHONE.fullmatch(t))
    emails = {v["VALUE"].casefold() for v in fields.get("EMAIL") or []}
    phones = {re.sub(r"[^\d+]", "", v["VALUE"]) for v in fields.get("PHONE") or []}
    return email.casefold() in emails and re.sub(r"[^\d+]", "", phone) in phones


def test_the_guide_marks_both_walks_from_start_to_lead() -> None:
    """Each walk starts the emulator and `serve`, registers the bot, and waits for a lead."""
    steps = guide_steps(GUIDE.read_text())
    for walk in WALKS:
        mine = [s for s in steps if walk in s.walks]
        scripts = "\n".join(s.script for s in mine)
        for command in ("orchestrator emulator", "orchestrator serve", "orchestrator register-bot"):
            assert command in scripts, (walk, command)
        assert any(s.until == "lead" for s in mine), walk


@pytest.mark.timeout(240)
@pytest.mark.parametrize("walk_name", WALKS)
def test_following_the_guide_reaches_a_lead_with_the_clients_data(
    walk_name: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """Every marked command of the walk, in order, as written; the portal's journal shows the
    lead of the session carrying the name, e-mail and phone the client gave."""
    walk = Walk(walk_name, tmp_path, redis_url, key_prefix)
    try:
        for index, step in enumerate(
            s for s in guide_steps(GUIDE.read_text()) if walk_name in s.walks
        ):
            if step.kind == "source":
                walk.source(step.script)
                continue
            if step.kind == "start":
                walk.start(step.script, index)
                if "orchestrator emulator" in step.script:
                    walk.wait_until_up()
                before = 0
            else:
                before = _bot_messages(walk.journal())
                walk.run(step.script)
            if step.until:
                walk.wait_for(
                    functools.partial(walk.holds, step.until, before),
                    f"{step.until!r} after {step.script}",
                )
        journal = walk.journal()
        [lead] = [f for f in _lead_contacts(journal).values() if _carries_client_data(f, journal)]
        assert lead["NAME"] == next(t for t in _client_wrote(journal) if t == "Boris Petrov")
    finally:
        walk.stop()
        _drop_queue(redis_url, walk.queue)

"""Every misconfiguration an operator is likely to make is one line and a non-zero exit code,
never a traceback; the same kind of failure has the same code whatever the command
(orchestrator/cli/failures.py: 2 usage, 66 not found, 69 unavailable, 78 configuration).

Each case runs the real command line as an operator would (`python -m orchestrator.cli ...`) in
an environment cleaned of our settings, against a real Redis where the case needs one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = "https://b24-test.bitrix24.com/rest/1/s3cr3tc0de/"
CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@dataclass(frozen=True)
class Case:
    """A command line, the environment it runs in, and what it must say and exit with."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    code: int = 78
    says: str = ""
    redis: bool = True  # REDIS_URL points at the test's Redis unless the case sets it


CASES = [
    Case("redis url unset for ingress", ["ingress"], {"REDIS_URL": ""}, 78, "REDIS_URL is not set"),
    Case("redis url unset for worker", ["worker"], {"REDIS_URL": ""}, 78, "--embedded-redis"),
    Case("redis url unset for serve", ["serve"], {"REDIS_URL": ""}, 78, "REDIS_URL is not set"),
    Case("redis url not a url", ["ingress"], {"REDIS_URL": "localhost:6379"}, 78, "REDIS_URL:"),
    Case("redis url of another scheme", ["worker"], {"REDIS_URL": "http://r:6379"}, 78, "redis://"),
    Case("redis url with a bad port", ["serve"], {"REDIS_URL": "redis://r:63x9/0"}, 78, "port"),
    Case(
        "redis url at a closed port",
        ["ingress"],
        {"REDIS_URL": CLOSED, "REDIS_START_WAIT_S": "0"},
        69,
        "redis://127.0.0.1:1 did not answer",
    ),
    Case(
        "redis down for an admin command",
        ["dlq", "list"],
        {"REDIS_URL": CLOSED},
        69,
        "Redis does not answer",
    ),
    Case(
        "webhook without member id",
        ["ingress"],
        {"B24_WEBHOOK_URL": WEBHOOK},
        78,
        "B24_WEBHOOK_URL is set without B24_MEMBER_ID",
    ),
    Case(
        "webhook url that is not a webhook",
        ["serve"],
        {"B24_WEBHOOK_URL": "https://b24-test.bitrix24.com/", "B24_MEMBER_ID": "m"},
        78,
        "B24_WEBHOOK_URL: https://b24-test.bitrix24.com/... is not an inbound webhook",
    ),
    Case(
        "oauth app without secret",
        ["serve"],
        {"B24_CLIENT_ID": "local.abc"},
        78,
        "B24_CLIENT_ID is set without B24_CLIENT_SECRET",
    ),
    Case("no portal at all", ["ingress"], {}, 78, "no portal to serve"),
    Case("no portal at all, serve", ["serve"], {}, 78, "orchestrator portals add"),
    Case("a number that is not", ["ingress"], {"INGRESS_PORT": "80a"}, 78, "INGRESS_PORT:"),
    Case("dlq replay of a malformed id", ["dlq", "replay", "nonsense"], {}, 2, "'nonsense' is not"),
    Case("dlq show of a malformed id", ["dlq", "show", "x-1"], {}, 2, "not a dead letter id"),
    Case("dlq replay of a missing id", ["dlq", "replay", "1-0"], {}, 66, "no dead letter 1-0"),
    Case("dlq purge of a missing id", ["dlq", "purge", "1-0"], {}, 66, "no dead letter 1-0"),
    Case("dlq purge of nothing", ["dlq", "purge"], {}, 2, "name entry ids, or pass --all"),
    Case("sessions show of a missing dialog", ["sessions", "show", "m", "1"], {}, 66, "no dialog"),
    Case("portals remove of a missing one", ["portals", "remove", "nope"], {}, 66, "no portal"),
]


@pytest.fixture
def port_in_use() -> Iterator[int]:
    """A port someone else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not _ours(k)}
    clean |= {"PYTHONPATH": str(ROOT), "SPOOL_DIR": str(cwd / "spool"), **env}
    if "KEY_PREFIX" in clean:  # a worker that starts must not take another test's jobs
        clean["QUEUE_NAME"] = f"{clean['KEY_PREFIX']}:queue"
    clean = {k: v for k, v in clean.items() if v != ""}  # "" in a case: unset it
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *argv],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _ours(name: str) -> bool:
    return name.startswith(("B24_", "REDIS_", "INGRESS_", "WORKER_", "SCENARIO_")) or name in (
        "KEY_PREFIX",
        "QUEUE_NAME",
        "SPOOL_DIR",
    )


def _said(result: subprocess.CompletedProcess[str], command: str) -> list[str]:
    """What the command said as a person reads it: stderr lines that are not JSON log records."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith("{") and line.startswith(f"orchestrator {command}")
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_misconfiguration_is_one_line_and_its_kinds_exit_code(
    case: Case, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    env = {"KEY_PREFIX": key_prefix, **({"REDIS_URL": redis_url} if case.redis else {})}
    result = _run(case.argv, env | case.env, tmp_path)
    said = _said(result, case.argv[0])
    assert result.returncode == case.code, result.stderr
    assert len(said) == 1, result.stderr
    assert case.says in said[0]
    assert "s3cr3tc0de" not in result.stderr + result.stdout  # a webhook's secret is never shown


@pytest.mark.parametrize("command", ["ingress", "serve"])
def test_a_port_in_use_is_one_line_and_69(
    command: str, port_in_use: int, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    env = {
        "REDIS_URL": redis_url,
        "KEY_PREFIX": key_prefix,
        "INGRESS_HOST": "127.0.0.1",
        "B24_WEBHOOK_URL": WEBHOOK,
        "B24_MEMBER_ID": "m-port",
    }
    result = _run([command, "--port", str(port_in_use)], env, tmp_path)
    [line] = _said(result, command)
    assert result.returncode == 69, result.stderr
    assert "address already in use" in line.lower()
    assert str(port_in_use) in line


def test_a_scenario_error_names_the_file_the_key_and_the_likely_one(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("default:\n  greetng: Hello!\n")
    env = {"REDIS_URL": redis_url, "KEY_PREFIX": key_prefix, "SCENARIO_PATH": str(scenario)}
    result = _run(["worker"], env, tmp_path)
    [line] = _said(result, "worker")
    assert result.returncode == 78, result.stderr
    assert f"{scenario}: default.greetng:" in line
    assert "did you mean 'greeting'?" in line


def test_argument_prefixes_are_not_taken_for_flags(tmp_path: Path) -> None:
    """`serve --worker 3` is refused, not run as `--workers 3` (argparse's own code 2)."""
    result = _run(["serve", "--worker", "3"], {"REDIS_URL": CLOSED}, tmp_path)
    assert result.returncode == 2
    assert "unrecognized arguments: --worker 3" in result.stderr


@pytest.mark.parametrize(
    ("answerer", "says"),
    [
        ("{kind: http, http: {url: 'http://127.0.0.1:9/answer'}}", "ANSWERER_SECRET"),
        (
            "{kind: llm, llm: {base_url: 'http://127.0.0.1:9/v1', model: m, api_key_env: K_X}}",
            "K_X",
        ),
        ("{kind: http}", "needs an 'http' section"),
    ],
)
def test_an_answerer_without_its_secret_stops_the_worker_at_start(
    answerer: str, says: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """The secret's variable unset: the worker does not start (a client's first question would
    be the first to know otherwise)."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(f"default:\n  greeting: {{text: Hello!}}\n  answerer: {answerer}\n")
    env = {
        "REDIS_URL": redis_url,
        "KEY_PREFIX": key_prefix,
        "SCENARIO_PATH": str(scenario),
        "B24_WEBHOOK_URL": WEBHOOK,
        "B24_MEMBER_ID": "m-answerer",
        "ANSWERER_SECRET": "",
    }
    result = _run(["worker"], env, tmp_path)
    [line] = _said(result, "worker")
    assert result.returncode == 78, result.stderr
    assert says in line

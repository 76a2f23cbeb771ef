"""Expected failures of a command: one line on stderr and an exit code, never a traceback.

A wrong setting, a Redis that does not answer, a port someone else holds, an id that names
nothing: these are an operator's everyday mistakes, not our bugs, so they are said in one line
that names what to fix, and each kind has its own exit code, the same across commands (the codes
of sysexits.h where one fits, so a supervisor or a script can tell them apart):

    0   done
    1   the command ran and answers "no" (a failed verdict, an unacknowledged loss)
    2   bad arguments, or an id that cannot be one (argparse's own code)
    66  a named thing does not exist (a dead letter, a dialog, a portal)   EX_NOINPUT
    69  a service we need is not there: Redis does not answer, the port is taken   EX_UNAVAILABLE
    78  settings or a scenario that cannot work   EX_CONFIG
    130 stopped by Ctrl-C

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import sys
from enum import IntEnum

from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.cli.lazy import Runner
from orchestrator.errors import ConfigurationError, OrchestratorError, ScenarioError
from orchestrator.settings import explain_settings_error

__all__ = ["CommandFailed", "Exit", "run_guarded"]


class Exit(IntEnum):
    """The exit codes of every command (module docstring)."""

    OK = 0
    NO = 1
    USAGE = 2
    NOT_FOUND = 66
    UNAVAILABLE = 69
    CONFIG = 78
    INTERRUPTED = 130


class CommandFailed(OrchestratorError):
    """An expected failure a command names itself, with its kind's exit code."""

    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.code = code


def explain(exc: BaseException) -> tuple[str, Exit] | None:
    """What to print and the exit code for an expected failure; None for a bug."""
    if isinstance(exc, CommandFailed):
        return str(exc), exc.code
    if isinstance(exc, ConfigurationError | ScenarioError):
        return str(exc), Exit.CONFIG
    if isinstance(exc, ValidationError):
        return explain_settings_error(exc), Exit.CONFIG
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return (
            f"Redis does not answer ({exc}); check REDIS_URL and that Redis runs",
            Exit.UNAVAILABLE,
        )
    if isinstance(exc, OSError) and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
        return f"cannot listen: {exc.strerror} ({exc}); free the port or choose another", (
            Exit.UNAVAILABLE
        )
    if isinstance(exc, KeyboardInterrupt):
        return "stopped", Exit.INTERRUPTED
    return None


def run_guarded(func: Runner, args: argparse.Namespace) -> int:
    """Run one command; an expected failure becomes one line and its exit code."""
    try:
        return func(args)
    except BaseException as exc:
        said = explain(exc)
        if said is None:
            raise
        message, code = said
        print(f"orchestrator {args.command}: {message}", file=sys.stderr)
        return int(code)

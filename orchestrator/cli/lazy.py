"""Commands are imported only when they run; the tools (emulator, demo, bench, chaos) are found
by name, so the product imports none of them and runs without them (a wheel carries no harness).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

__all__ = ["Runner", "Sub", "lazy", "tool"]

# a command: the parsed arguments in, the exit code out
Runner = Callable[[argparse.Namespace], int]

if TYPE_CHECKING:
    Sub: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Sub = argparse._SubParsersAction

# what `orchestrator <tool>` says when its module is not installed (the wheel has no harness)
MISSING_TOOL = (
    "orchestrator: `{command}` is a tool of the source tree ({module} is not importable here); "
    "in a checkout: pip install -e '.[dev,bench]' (or make run / make test)"
)


def lazy(target: str) -> Runner:
    """`module:function`, imported when the command runs."""
    module_name, func_name = target.split(":")

    def run(args: argparse.Namespace) -> int:
        func: Runner = getattr(importlib.import_module(module_name), func_name)
        return func(args)

    return run


def tool(sub: Sub, command: str, help_text: str, arguments: str, target: str) -> None:
    """Add `command`, its flags from `arguments` (`module:add_arguments`) and its runner
    `target`; when the tool is not importable, the command is there and says why it cannot run."""
    module_name, attr = arguments.split(":")
    try:
        add_arguments: Callable[[argparse.ArgumentParser], None] = getattr(
            importlib.import_module(module_name), attr
        )
    except ImportError:
        # takes whatever flags were given (none is an option here), and says why it cannot run
        missing = sub.add_parser(command, help=help_text, prefix_chars="\0", add_help=False)
        missing.add_argument("given", nargs="*", help=argparse.SUPPRESS)
        missing.set_defaults(func=_missing(f"orchestrator {command}", module_name))
        return
    parser = sub.add_parser(command, help=help_text)
    add_arguments(parser)
    parser.set_defaults(func=lazy(target))


def _missing(command: str, module: str) -> Runner:
    def run(_: argparse.Namespace) -> int:
        print(MISSING_TOOL.format(command=command, module=module), file=sys.stderr)
        return 2

    return run

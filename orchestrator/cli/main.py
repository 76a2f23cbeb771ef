"""The `orchestrator` command: the composition root, one subcommand per job.

Product commands (ingress, worker, serve, dlq, sessions, portals, redis, dialogs, register-bot)
come from this package and import their work only when they run. The tools (the emulator, and
the harness's demo, benches and chaos) are found by module name (cli/lazy.py), so the product
never imports them: a wheel without the harness still runs, and says so when a tool is asked for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.cli.dialogs import add_dialogs
from orchestrator.cli.failures import run_guarded
from orchestrator.cli.help import finish_help
from orchestrator.cli.lazy import Sub, tool
from orchestrator.cli.pipeline import PIPELINE_BUILDERS
from orchestrator.cli.register_bot import add_register_bot

__all__ = ["build_parser", "main"]


def _add_emulator(sub: Sub) -> None:
    tool(
        sub,
        "emulator",
        "run the Bitrix24 portal emulator standalone",
        "emulator.cli:add_arguments",
        "emulator.server:cli_main",
    )


def _add_demo(sub: Sub) -> None:
    tool(
        sub,
        "demo",
        "the whole product against the emulated portal, with simulated clients and operators "
        "(make run)",
        "harness.demo:add_arguments",
        "harness.demo.main:cli_main",
    )


def _add_bench(sub: Sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: measured side by side, JSON report")
    bench = p.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    tool(
        bench,
        "ingress",
        "ingress events/s vs bare and durable baselines",
        "harness.bench:add_ingress_arguments",
        "harness.bench.ingress:cli_main",
    )
    tool(
        bench,
        "client",
        "the REST client against the emulated portal's ceiling, side by side with fast_bitrix24",
        "harness.bench:add_client_arguments",
        "harness.bench.client:cli_main",
    )
    tool(
        bench,
        "e2e",
        "whole dialogs through the product against the emulated portal's limits: dialogs/s "
        "against the ceiling, steps' p50/p99, chart (bench-e2e.json, bench-e2e.png)",
        "harness.bench.e2e_args:add_arguments",
        "harness.bench.e2e:cli_main",
    )


def _add_chaos(sub: Sub) -> None:
    tool(
        sub,
        "chaos",
        "dialogs while workers are SIGKILLed, Redis restarts and the portal fails; accounts "
        "for every acknowledged event (chaos.json)",
        "harness.chaos:add_arguments",
        "harness.chaos.run:cli_main",
    )


# Each builder adds one subcommand (or group); keep them in the order of `orchestrator --help`.
BUILDERS: list[Callable[[Sub], None]] = [
    *PIPELINE_BUILDERS,
    add_dialogs,
    add_register_bot,
    _add_emulator,
    _add_demo,
    _add_bench,
    _add_chaos,
]


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching: `serve --worker 3` is an error, not `--workers 3`
    (a flag added later would silently change what an old command line means). Subcommands
    are made of this class too (add_subparsers takes the parser's own class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser: argparse.ArgumentParser = Parser(
        prog="orchestrator",
        description="Open Lines dialog orchestrator: ingress, workers, tools, emulator, benches.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for build in BUILDERS:
        build(sub)
    finish_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code."""
    args = build_parser().parse_args(argv)
    return run_guarded(args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

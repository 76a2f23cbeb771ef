"""The `orchestrator` command: one subcommand per job; each is imported only when it runs.

The CLI is the composition root: the core modules never import worker/ or emulator/, but the
commands that start them (emulator, demo, bench, chaos) do, lazily.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# subcommand -> (module, function taking the parsed args and returning an exit code)
Runner = Callable[[argparse.Namespace], int]


def _lazy(target: str) -> Runner:
    module_name, func_name = target.split(":")

    def run(args: argparse.Namespace) -> int:
        func: Runner = getattr(importlib.import_module(module_name), func_name)
        return func(args)

    return run


def _add_emulator(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from emulator.cli import add_arguments  # argparse only: cheap to import

    p = sub.add_parser("emulator", help="run the Bitrix24 portal emulator standalone")
    add_arguments(p)
    p.set_defaults(func=_lazy("emulator.server:cli_main"))


def _add_pipeline(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.pipeline_cli import PIPELINE_BUILDERS  # argparse only: cheap to import

    for build in PIPELINE_BUILDERS:
        build(sub)


def _bench_ingress(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.pipeline_cli import add_bench_ingress

    add_bench_ingress(bench)


def _bench_client(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.bench import add_client_arguments  # argparse only: cheap to import

    p = bench.add_parser(
        "client",
        help="the REST client against the emulated portal's ceiling, "
        "side by side with fast_bitrix24",
    )
    add_client_arguments(p)
    p.set_defaults(func=_lazy("orchestrator.bench.client:cli_main"))


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.demo import add_arguments  # argparse only: cheap to import

    p = sub.add_parser(
        "demo",
        help="the whole product against the emulated portal, with "
        "simulated clients and operators (make run)",
    )
    add_arguments(p)
    p.set_defaults(func=_lazy("orchestrator.demo.main:cli_main"))


def _add_portal_tools(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.bot_cli import add_register_bot  # argparse only until a command runs
    from orchestrator.dialog_cli import add_dialogs

    add_dialogs(sub)
    add_register_bot(sub)


def _bench_e2e(bench: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.bench.e2e_args import add_arguments  # argparse only: cheap to import

    p = bench.add_parser(
        "e2e",
        help="whole dialogs through the product against the emulated portal's limits: "
        "dialogs/s against the ceiling, steps' p50/p99, chart (bench-e2e.json, bench-e2e.png)",
    )
    add_arguments(p)
    p.set_defaults(func=_lazy("orchestrator.bench.e2e:cli_main"))


# Each adds one benchmark to the `bench` group (`orchestrator bench <name>`).
BENCH_BUILDERS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _bench_ingress,
    _bench_client,
    _bench_e2e,
]


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="benchmarks: measured side by side, JSON report")
    bench = p.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    for build in BENCH_BUILDERS:
        build(bench)


def _add_chaos(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from orchestrator.chaos import add_arguments  # argparse only: cheap to import

    p = sub.add_parser(
        "chaos",
        help="dialogs while workers are SIGKILLed, Redis restarts and the portal fails; "
        "accounts for every acknowledged event (chaos.json)",
    )
    add_arguments(p)
    p.set_defaults(func=_lazy("orchestrator.chaos.run:cli_main"))


# Each builder adds one subcommand (or group); keep them in the order of `orchestrator --help`.
BUILDERS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_pipeline,
    _add_portal_tools,
    _add_emulator,
    _add_demo,
    _add_bench,
    _add_chaos,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Open Lines dialog orchestrator: ingress, workers, tools, emulator, benches.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for build in BUILDERS:
        build(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""`orchestrator --help` and every subcommand's: a description, examples that still parse, and
defaults shown as values (orchestrator/cli/help.py)."""

from __future__ import annotations

import argparse
import shlex

import pytest

from orchestrator.cli.help import EXAMPLES, subparsers_of
from orchestrator.cli.main import build_parser


def _tree(
    parser: argparse.ArgumentParser, words: str = ""
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(words, parser)]
    for name, _, sub in subparsers_of(parser):
        found += _tree(sub, f"{words} {name}".strip())
    return found


TREE = _tree(build_parser())


def _argv(example: str) -> list[str]:
    """An example as argv: without leading VAR=value assignments, the comment and the program."""
    words = shlex.split(example.split("  #")[0])
    while "=" in words[0]:
        words.pop(0)
    assert words[0] == "orchestrator", example
    return words[1:]


@pytest.mark.parametrize(("words", "parser"), TREE, ids=[w or "orchestrator" for w, _ in TREE])
def test_every_command_has_a_description_and_examples(
    words: str, parser: argparse.ArgumentParser
) -> None:
    assert parser.description, f"`orchestrator {words}` has no description"
    assert EXAMPLES.get(words), f"`orchestrator {words}` has no examples"
    assert "examples:" in parser.format_help()


def test_every_example_names_a_command_and_parses() -> None:
    commands = {words for words, _ in TREE}
    assert set(EXAMPLES) <= commands, set(EXAMPLES) - commands
    for words, examples in EXAMPLES.items():
        for example in examples:
            argv = _argv(example)
            if argv[-1] == "--help":
                continue
            # the example of `dialogs get` runs `dialogs get` (global flags may come first)
            positional = [w for w in argv if not w.startswith("-")]
            assert positional[: len(words.split())] == words.split() or not words, example
            # a SystemExit (a failed test) if it no longer parses
            args = build_parser().parse_args(argv)
            assert args.command == argv[0], example


def test_defaults_are_shown_as_values() -> None:
    helps = {words: parser.format_help() for words, parser in TREE}
    assert "(default: 2)" in helps["serve"]  # a plain default
    assert "(default: INGRESS_PORT, else 8080)" in helps["ingress"]  # a setting's, with its value
    assert "(default: 50)" in helps["dlq list"]


@pytest.mark.parametrize(
    "argv",
    [
        ["dlq", "list", "--json"],
        ["dlq", "show", "1-0", "--json"],
        ["sessions", "list", "--json"],
        ["sessions", "show", "m", "1", "--json"],
        ["portals", "list", "--json"],
        ["redis", "status", "--json"],
    ],
)
def test_read_commands_take_json(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).json is True

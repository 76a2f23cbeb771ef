"""`--help` people like: every command says what it does, shows examples, and shows defaults as
the values they are.

The parsers are built where their commands live; `finish_help` then walks the whole tree once:
a subcommand without a description gets its one-line summary as one, every parser gets its
examples (EXAMPLES, keyed by the command's words) as an epilog, and the formatter shows each
option's default. A flag whose default comes from a setting says both, from the Settings class
itself (`from_setting`), so the help never drifts from the code.
"""

from __future__ import annotations

import argparse

from orchestrator.settings import Settings

__all__ = ["EXAMPLES", "HelpFormatter", "finish_help", "from_setting", "subparsers_of"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples keep their lines; an option with a default worth saying shows it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        # None (a setting decides: the help says which), False (a plain switch) and a help
        # that names its default already say nothing more
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def from_setting(field: str, what: str) -> str:
    """Help for a flag that overrides a setting: its value when neither is given."""
    default = Settings.model_fields[field].default
    return f"{what} (default: {field.upper()}, else {default})"


# Examples of every command, by its words after `orchestrator`. A test parses each one, so an
# example that no longer runs fails the build.
EXAMPLES: dict[str, list[str]] = {
    "": ["orchestrator serve --workers 2", "orchestrator demo", "orchestrator ingress --help"],
    "ingress": ["REDIS_URL=redis://redis:6379/0 orchestrator ingress --port 8080"],
    "worker": ["REDIS_URL=redis://redis:6379/0 orchestrator worker --concurrency 100"],
    "serve": [
        "REDIS_URL=redis://127.0.0.1:6379/0 orchestrator serve --workers 4",
        "orchestrator serve --embedded-redis --workers 1   # development only",
    ],
    "dlq": ["orchestrator dlq list", "orchestrator dlq replay --all"],
    "dlq list": ["orchestrator dlq list --limit 20", "orchestrator dlq list --json"],
    "dlq show": ["orchestrator dlq show 1767225600000-0 --json"],
    "dlq replay": ["orchestrator dlq replay 1767225600000-0", "orchestrator dlq replay --all"],
    "dlq purge": ["orchestrator dlq purge 1767225600000-0", "orchestrator dlq purge --all"],
    "sessions": ["orchestrator sessions list", "orchestrator sessions show b24-portal 1234"],
    "sessions list": [
        "orchestrator sessions list --member-id b24-portal",
        "orchestrator sessions list --json",
    ],
    "sessions show": [
        "orchestrator sessions show b24-portal 1234",
        "orchestrator sessions show b24-portal 1234 --history 50 --json",
    ],
    "portals": ["orchestrator portals list"],
    "portals list": ["orchestrator portals list", "orchestrator portals list --json"],
    "portals add": [
        "orchestrator portals add b24-portal your-portal.bitrix24.com --token APPLICATION_TOKEN"
    ],
    "portals remove": ["orchestrator portals remove b24-portal"],
    "redis": ["orchestrator redis status"],
    "redis status": ["orchestrator redis status", "orchestrator redis status --json"],
    "redis ack-loss": ["orchestrator redis ack-loss"],
    "dialogs": [
        "orchestrator dialogs get --chat-id 1234",
        "orchestrator dialogs --member-id b24-portal history --session-id 567 --table",
    ],
    "dialogs open": ["orchestrator dialogs open 'livechat|1|77|88'"],
    "dialogs get": [
        "orchestrator dialogs get --chat-id 1234",
        "orchestrator dialogs get --session-id 567",
    ],
    "dialogs history": ["orchestrator dialogs history --session-id 567 --table"],
    "dialogs start": ["orchestrator dialogs start 1234"],
    "dialogs restart-from": ["orchestrator dialogs restart-from 1234 98765"],
    "dialogs join": ["orchestrator dialogs join 1234"],
    "dialogs intercept": ["orchestrator dialogs intercept 1234"],
    "dialogs pin": ["orchestrator dialogs pin 1234", "orchestrator dialogs pin 1234 --off"],
    "dialogs pin-all": ["orchestrator dialogs pin-all"],
    "dialogs unpin-all": ["orchestrator dialogs unpin-all"],
    "dialogs silent": ["orchestrator dialogs silent 1234 --on"],
    "dialogs vote": ["orchestrator dialogs vote 567 --rating 5 --comment 'Solved at once'"],
    "dialogs lead": ["orchestrator dialogs lead 1234"],
    "register-bot": [
        "orchestrator register-bot --line 1",
        "orchestrator register-bot --member-id b24-portal "
        "--ingress-url https://bot.example.com/b24/events --line 1 --line 3",
        "orchestrator register-bot --api v1 --ingress-url https://bot.example.com/b24/events",
    ],
    "emulator": [
        "orchestrator emulator --port 8090",
        "orchestrator emulator --port 8090 --member-id b24-demo-portal "
        "--webhook-code demo-webhook-code",
    ],
    "demo": ["orchestrator demo", "orchestrator demo --dialogs 50 --bot v1"],
    "bench": ["orchestrator bench e2e", "orchestrator bench client"],
    "bench ingress": ["orchestrator bench ingress"],
    "bench client": ["orchestrator bench client"],
    "bench e2e": ["orchestrator bench e2e", "orchestrator bench e2e --dialogs 500 --bot v1"],
    "chaos": ["orchestrator chaos", "orchestrator chaos --outage 60"],
}


Subcommand = tuple[str, str, argparse.ArgumentParser]


def subparsers_of(parser: argparse.ArgumentParser) -> list[Subcommand]:
    """(name, one-line help, parser) of each direct subcommand."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            found += [(name, helps.get(name, ""), p) for name, p in action.choices.items()]
    return found


def finish_help(parser: argparse.ArgumentParser, words: str = "") -> None:
    """Descriptions, examples and defaults for `parser` and every subcommand below it."""
    parser.formatter_class = HelpFormatter
    examples = EXAMPLES.get(words)
    if examples:
        parser.epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    for name, summary, sub in subparsers_of(parser):
        if not sub.description:
            sub.description = summary
        finish_help(sub, f"{words} {name}".strip())

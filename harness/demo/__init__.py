"""`orchestrator demo`: the whole product against the emulated portal, with simulated people.

Only the argument parser lives here (cheap to import for `orchestrator --help`); the demo itself
is in `harness.demo.main`.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `demo` subcommand's options."""
    p.add_argument("--dialogs", type=int, default=200, help="dialogs to play (default 200)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="give up after this many seconds; the demo always ends (default 600)",
    )
    p.add_argument("--arrivals", type=float, default=8.0, help="new clients per second (default 8)")
    p.add_argument("--output", default="demo.json", help="the JSON report (default demo.json)")
    p.add_argument(
        "--bot",
        choices=("v2", "v1"),
        default="v2",
        help="v2: a fresh portal, our bot registered through imbot.v2 in fetch mode (default); "
        "v1: the portal's existing v1 bot, its events pushed",
    )

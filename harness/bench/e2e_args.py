"""The `bench e2e` flags (argparse only: cheap to import for `orchestrator --help`)."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `bench e2e` options."""
    p.add_argument("--dialogs", type=int, default=2000, help="dialogs in all (default 2000)")
    p.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    p.add_argument(
        "--portals", type=int, default=1, help="portals at once; >1 adds the fairness run"
    )
    p.add_argument("--burst", type=int, default=10, help="the bursting portal's multiple")
    p.add_argument(
        "--arrivals",
        type=float,
        default=9.0,
        help="new clients per second (default 9: above a standard portal's ceiling)",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="bound of each run, s")
    p.add_argument("--log-dir", default=None, help="keep the ingress and worker logs here")
    p.add_argument(
        "--light",
        type=int,
        default=10,
        help="then this many dialogs one at a time on a fresh stack, paced so the portal's "
        "budget is never short: the reply latency at light load (default 10; 0 skips)",
    )
    p.add_argument(
        "--idle",
        type=float,
        default=60.0,
        help="after the run, seconds the idle portals' polling cost is read over (default 60)",
    )
    p.add_argument(
        "--answerer",
        choices=("rules", "http"),
        default="rules",
        help="who answers what the rules do not settle: the scenario (default), or a contact "
        "center's service on loopback (harness/demo/answerer.py) for every line: its cost",
    )
    p.add_argument(
        "--bot",
        choices=("v2", "v1"),
        default="v2",
        help="v2: our bot registered through imbot.v2, fetch mode (default); v1: pushed events",
    )

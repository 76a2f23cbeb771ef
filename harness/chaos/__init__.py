"""`orchestrator chaos`: a long dialog run while workers are SIGKILLed, Redis restarts and the
portal fails; then every acknowledged event is accounted for.

Only the argument parser lives here (cheap to import for `orchestrator --help`); the run and
what chaos.json's recovery fields mean are in `harness.chaos.run`, the trouble it makes
and the recovery measure (resume and progress after a kill) in `agents`, the event accounting
in `ledger`, what stuck dialogs still hold in `stuck`.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `chaos` subcommand's options."""
    p.add_argument("--dialogs", type=int, default=2000, help="dialogs to play (default 2000)")
    p.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    p.add_argument(
        "--portals",
        type=int,
        default=8,
        help="emulated portals sharing the dialogs (each has its own REST budget; default 8)",
    )
    p.add_argument("--kill-every", type=float, default=5.0, help="SIGKILL a worker every N s")
    p.add_argument("--redis-down", type=float, default=3.0, help="seconds Redis stays down")
    p.add_argument(
        "--expire-every", type=float, default=10.0, help="expire the portals' tokens every N s"
    )
    p.add_argument("--no-faults", action="store_true", help="keep the portal healthy")
    p.add_argument(
        "--arrivals",
        type=float,
        default=2.0,
        help="new clients per second (default 2: what two cores carry with every process)",
    )
    p.add_argument("--drain", type=float, default=300.0, help="bound on the drain after chaos, s")
    p.add_argument("--timeout", type=float, default=2700.0, help="bound on the whole run, s")
    p.add_argument("--seed", type=int, default=7, help="seed of the kills and the faults")
    p.add_argument("--output", default="chaos.json", help="the JSON report")
    p.add_argument("--log-dir", default=None, help="keep the ingress and worker logs here")
    p.add_argument(
        "--outage",
        type=float,
        default=None,
        metavar="S",
        help="instead: take every ingress and worker down for S seconds while clients write, "
        "in fetch mode and in v1 webhook mode, and write outage.json (harness.chaos.outage)",
    )
    p.add_argument(
        "--outage-dialogs", type=int, default=120, help="with --outage: dialogs per mode"
    )

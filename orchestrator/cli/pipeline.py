"""Argument parsers of the event pipeline's commands (ingress, worker, serve, dlq, sessions,
portals, redis); the work itself is imported only when a command runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from orchestrator.cli.help import from_setting
from orchestrator.cli.lazy import Sub, lazy
from orchestrator.cli.startup import add_embedded_redis_flag

__all__ = ["PIPELINE_BUILDERS"]


def _add_ingress(sub: Sub) -> None:
    p = sub.add_parser("ingress", help="run the event ingress (POST /b24/events, health, metrics)")
    p.add_argument("--host", default=None, help=from_setting("ingress_host", "bind address"))
    p.add_argument("--port", type=int, default=None, help=from_setting("ingress_port", "port"))
    add_embedded_redis_flag(p)
    p.set_defaults(func=lazy("orchestrator.cli.ingress:cli_main"))


def _add_worker(sub: Sub) -> None:
    p = sub.add_parser("worker", help="run one arq worker that drains dialogs")
    p.add_argument(
        "--handler",
        default=None,
        help=from_setting(
            "worker_handler", "module:callable(settings, redis) building the DialogHandler"
        ),
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help=from_setting("worker_concurrency", "dialogs drained at once"),
    )
    add_embedded_redis_flag(p)
    p.set_defaults(func=lazy("worker.main:cli_main"))


def _add_serve(sub: Sub) -> None:
    p = sub.add_parser("serve", help="run the ingress and N worker processes together")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument(
        "--handler", default=None, help=from_setting("worker_handler", "passed to each worker")
    )
    p.add_argument(
        "--port", type=int, default=None, help=from_setting("ingress_port", "ingress port")
    )
    add_embedded_redis_flag(p)
    p.set_defaults(func=lazy("orchestrator.cli.serve:cli_main"))


def _add_dlq(sub: Sub) -> None:
    p = sub.add_parser("dlq", help="inspect and replay dead letters")
    dsub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    ls = dsub.add_parser("list", help="list dead letters, oldest first")
    ls.add_argument("--limit", type=int, default=50, help="at most this many")
    add_json_flag(ls)
    show = dsub.add_parser("show", help="show one dead letter in full")
    show.add_argument("entry_id", help="as `dlq list` shows it, e.g. 1767225600000-0")
    add_json_flag(show)
    replay = dsub.add_parser("replay", help="move dead letters back to their dialogs")
    replay.add_argument("entry_ids", nargs="*", help="entry ids (default: with --all, every one)")
    replay.add_argument("--all", action="store_true", help="replay every dead letter")
    purge = dsub.add_parser("purge", help="delete dead letters for good")
    purge.add_argument("entry_ids", nargs="*", help="entry ids (or --all)")
    purge.add_argument("--all", action="store_true", help="purge every dead letter")
    p.set_defaults(func=lazy("orchestrator.cli.admin:dlq_main"))


def _add_sessions(sub: Sub) -> None:
    p = sub.add_parser("sessions", help="inspect dialogs: state, history, pending effects")
    ssub = p.add_subparsers(dest="sessions_command", required=True, metavar="ACTION")
    ls = ssub.add_parser("list", help="list dialogs: status, session, age, queue depth")
    ls.add_argument("--member-id", default=None, help="only this portal (default: every one)")
    ls.add_argument("--limit", type=int, default=100, help="at most this many")
    add_json_flag(ls)
    show = ssub.add_parser("show", help="one dialog: state, transition history, effects")
    show.add_argument("member_id", help="the portal's member_id")
    show.add_argument("chat_id", help="the Open Lines chat id")
    show.add_argument("--history", type=int, default=20, help="transitions to show")
    add_json_flag(show)
    p.set_defaults(func=lazy("orchestrator.cli.admin:sessions_main"))


def _add_portals(sub: Sub) -> None:
    p = sub.add_parser("portals", help="the portal registry (tokens are stored hashed)")
    psub = p.add_subparsers(dest="portals_command", required=True, metavar="ACTION")
    add_json_flag(psub.add_parser("list", help="list registered portals"))
    add = psub.add_parser("add", help="register (or re-key) a portal")
    add.add_argument("member_id", help="the portal's member_id")
    add.add_argument("domain", help="e.g. your-portal.bitrix24.com")
    add.add_argument("--token", required=True, help="the application_token its events carry")
    add.add_argument("--client-endpoint", default="", help="its REST base, https://<portal>/rest/")
    rm = psub.add_parser("remove", help="forget a portal (its events get 403)")
    rm.add_argument("member_id", help="the portal's member_id")
    p.set_defaults(func=lazy("orchestrator.cli.admin:portals_main"))


def _add_redis(sub: Sub) -> None:
    p = sub.add_parser("redis", help="Redis's data epoch: status, and acknowledging a loss")
    rsub = p.add_subparsers(dest="redis_command", required=True, metavar="ACTION")
    add_json_flag(
        rsub.add_parser(
            "status",
            help="epoch, persistence and any unacknowledged loss of Redis's data (exit 1 if one)",
        )
    )
    rsub.add_parser(
        "ack-loss",
        help="acknowledge a noticed loss of Redis's data (clears it from /readyz and the alert)",
    )
    p.set_defaults(func=lazy("orchestrator.cli.admin:redis_main"))


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """`--json` on a read command: one JSON document instead of tables."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


PIPELINE_BUILDERS: list[Callable[[Sub], None]] = [  # the order of `orchestrator --help`
    _add_ingress,
    _add_worker,
    _add_serve,
    _add_dlq,
    _add_sessions,
    _add_portals,
    _add_redis,
]

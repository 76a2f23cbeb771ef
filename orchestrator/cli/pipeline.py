"""Argument parsers of the event pipeline's commands (ingress, worker, serve, dlq, sessions,
portals, redis); the work itself is imported only when a command runs."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.cli.lazy import Sub, lazy
from orchestrator.cli.startup import add_embedded_redis_flag

__all__ = ["PIPELINE_BUILDERS"]


def _add_ingress(sub: Sub) -> None:
    p = sub.add_parser("ingress", help="run the event ingress (POST /b24/events, health, metrics)")
    p.add_argument("--host", default=None, help="bind address (default INGRESS_HOST)")
    p.add_argument("--port", type=int, default=None, help="port (default INGRESS_PORT)")
    add_embedded_redis_flag(p)
    p.set_defaults(func=lazy("orchestrator.cli.ingress:cli_main"))


def _add_worker(sub: Sub) -> None:
    p = sub.add_parser("worker", help="run one arq worker that drains dialogs")
    p.add_argument(
        "--handler",
        default=None,
        help="module:callable(settings, redis) building the DialogHandler (default WORKER_HANDLER)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="dialogs drained at once (default WORKER_CONCURRENCY)",
    )
    add_embedded_redis_flag(p)
    p.set_defaults(func=lazy("worker.main:cli_main"))


def _add_serve(sub: Sub) -> None:
    p = sub.add_parser("serve", help="run the ingress and N worker processes together")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--handler", default=None, help="passed to each worker")
    p.add_argument("--port", type=int, default=None, help="ingress port (default INGRESS_PORT)")
    add_embedded_redis_flag(p)
    p.set_defaults(func=lazy("orchestrator.cli.serve:cli_main"))


def _add_dlq(sub: Sub) -> None:
    p = sub.add_parser("dlq", help="inspect and replay dead letters")
    dsub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    ls = dsub.add_parser("list", help="list dead letters, oldest first")
    ls.add_argument("--limit", type=int, default=50)
    show = dsub.add_parser("show", help="show one dead letter in full")
    show.add_argument("entry_id")
    replay = dsub.add_parser("replay", help="move dead letters back to their dialogs")
    replay.add_argument("entry_ids", nargs="*", help="entry ids (default: with --all, every one)")
    replay.add_argument("--all", action="store_true", help="replay every dead letter")
    purge = dsub.add_parser("purge", help="delete dead letters for good")
    purge.add_argument("entry_ids", nargs="*")
    purge.add_argument("--all", action="store_true", help="purge every dead letter")
    p.set_defaults(func=lazy("orchestrator.cli.admin:dlq_main"))


def _add_sessions(sub: Sub) -> None:
    p = sub.add_parser("sessions", help="inspect dialogs: state, history, pending effects")
    ssub = p.add_subparsers(dest="sessions_command", required=True, metavar="ACTION")
    ls = ssub.add_parser("list", help="list dialogs with their state version and queue depth")
    ls.add_argument("--member-id", default=None, help="only this portal")
    ls.add_argument("--limit", type=int, default=100)
    show = ssub.add_parser("show", help="one dialog: state, transition history, effects")
    show.add_argument("member_id")
    show.add_argument("chat_id")
    show.add_argument("--history", type=int, default=20, help="transitions to show")
    p.set_defaults(func=lazy("orchestrator.cli.admin:sessions_main"))


def _add_portals(sub: Sub) -> None:
    p = sub.add_parser("portals", help="the portal registry (tokens are stored hashed)")
    psub = p.add_subparsers(dest="portals_command", required=True, metavar="ACTION")
    psub.add_parser("list", help="list registered portals")
    add = psub.add_parser("add", help="register (or re-key) a portal")
    add.add_argument("member_id")
    add.add_argument("domain")
    add.add_argument("--token", required=True, help="the application_token its events carry")
    add.add_argument("--client-endpoint", default="")
    rm = psub.add_parser("remove", help="forget a portal (its events get 403)")
    rm.add_argument("member_id")
    p.set_defaults(func=lazy("orchestrator.cli.admin:portals_main"))


def _add_redis(sub: Sub) -> None:
    p = sub.add_parser("redis", help="Redis's data epoch: status, and acknowledging a loss")
    rsub = p.add_subparsers(dest="redis_command", required=True, metavar="ACTION")
    rsub.add_parser(
        "status",
        help="epoch, persistence and any unacknowledged loss of Redis's data (exit 1 if one)",
    )
    rsub.add_parser(
        "ack-loss",
        help="acknowledge a noticed loss of Redis's data (clears it from /readyz and the alert)",
    )
    p.set_defaults(func=lazy("orchestrator.cli.admin:redis_main"))


PIPELINE_BUILDERS: list[Callable[[Sub], None]] = [  # the order of `orchestrator --help`
    _add_ingress,
    _add_worker,
    _add_serve,
    _add_dlq,
    _add_sessions,
    _add_portals,
    _add_redis,
]
